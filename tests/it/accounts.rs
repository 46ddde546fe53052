//! Several logins (issue 33), over real HTTP with the fake CLI and two
//! accounts, each a configuration directory of its own (the fake keeps a
//! session's transcript there and resumes only from it, and a `fake-limit`
//! file there gives that login an allowance report): new sessions spread
//! by allowance and by live sessions, a session staying on its account
//! (also across a restart), a session moving with its transcript when its
//! account runs out, and every account refused.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::warm::*;
use crate::support::*;

struct Accounts {
    root: PathBuf,
    state: String,
    work: String,
    list: String,
}

impl Accounts {
    fn new(name: &str) -> Accounts {
        let root = temp_dir(name);
        for account in ["a", "b"] {
            std::fs::create_dir_all(root.join(account)).unwrap();
        }
        let list = format!(
            "a={},b={}",
            root.join("a").display(),
            root.join("b").display()
        );
        Accounts {
            state: root.join("state").display().to_string(),
            work: root.join("work").display().to_string(),
            list,
            root,
        }
    }

    fn start(&self, records: PathBuf) -> Warm {
        self.start_with(records, &[])
    }

    fn start_with(&self, records: PathBuf, extra: &[(&str, &str)]) -> Warm {
        let mut settings = vec![
            ("CLAUDE_ACCOUNTS", self.list.as_str()),
            ("STATE_DIR", self.state.as_str()),
            ("CLAUDE_WORK_DIR", self.work.as_str()),
        ];
        settings.extend_from_slice(extra);
        Warm::start_on(records, &settings, |_| {})
    }

    fn dir(&self, account: &str) -> PathBuf {
        self.root.join(account)
    }

    /// Account `name`'s login reports `status` from its next turn on.
    fn limit(&self, name: &str, status: &str, secs: u64) {
        std::fs::write(
            self.dir(name).join("fake-limit"),
            format!("{status} {secs}"),
        )
        .unwrap();
    }
}

/// The account the run of `prompt` was started on (its CLAUDE_CONFIG_DIR).
fn ran_on(w: &Warm, prompt: &str, accounts: &Accounts) -> String {
    let run = w.run_of(prompt);
    let dir = run.value["env"]["CLAUDE_CONFIG_DIR"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ["a", "b"]
        .into_iter()
        .find(|a| Path::new(&dir) == accounts.dir(a))
        .unwrap_or_else(|| panic!("run of {prompt:?} on {dir:?}"))
        .to_string()
}

fn session_account(w: &Warm, sid: &str) -> Value {
    get(w.addr(), &format!("/v1/sessions/{sid}")).json()["account"].clone()
}

fn turn(w: &Warm, sid: Option<&str>, text: &str) -> HttpResponse {
    let mut headers = vec![CLAUDE];
    if let Some(sid) = sid {
        headers.push(("X-Claude-Session-ID", sid));
    }
    let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": text}]});
    chat(w.addr(), &headers, &body.to_string())
}

#[test]
fn sessions_spread_over_accounts_and_stay_on_theirs() {
    let accounts = Accounts::new("accounts-spread");
    let records = temp_dir("accounts-spread-records");
    let w = accounts.start(records.clone());
    // Nothing reported yet: the fewest live sessions decide.
    let one = w.say(None, "sonnet", "spread 1").sid;
    let two = w.say(None, "sonnet", "spread 2").sid;
    assert_eq!(ran_on(&w, "spread 1", &accounts), "a");
    assert_eq!(ran_on(&w, "spread 2", &accounts), "b");
    assert_eq!(session_account(&w, &one), "a");
    assert_eq!(session_account(&w, &two), "b");

    // The allowance decides before the count: a is nearly spent.
    accounts.limit("a", "allowed_warning", 3600);
    w.say(Some(&one), "sonnet", "spread 3");
    assert_eq!(ran_on(&w, "spread 3", &accounts), "a", "a session stays");
    let three = w.say(None, "sonnet", "spread 4").sid;
    assert_eq!(ran_on(&w, "spread 4", &accounts), "b");
    let usage = get(w.addr(), "/v1/usage").json();
    let names: Vec<&str> = usage["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(usage["accounts"][0]["status"], "allowed_warning");
    // Turns counted by account (the turn is counted once its answer is out).
    let counted = |scrape: &str| {
        ["a", "b"].map(|a| {
            let series = format!("claude_cli_api_account_turns_total{{account=\"{a}\"}} 2");
            scrape.contains(&series)
        })
    };
    assert!(
        wait_until(std::time::Duration::from_secs(5), || counted(
            &get(w.addr(), "/metrics").text()
        ) == [true, true]),
        "{}",
        get(w.addr(), "/metrics").text()
    );
    w.finish();

    // A restart: each session still runs on its own account.
    let w = accounts.start(records);
    w.say(Some(&three), "sonnet", "spread 5");
    assert_eq!(ran_on(&w, "spread 5", &accounts), "b");
    w.say(Some(&one), "sonnet", "spread 6");
    assert_eq!(ran_on(&w, "spread 6", &accounts), "a");
    w.finish();
}

#[test]
fn a_session_moves_with_its_transcript_when_its_account_runs_out() {
    let accounts = Accounts::new("accounts-move");
    let w = accounts.start(temp_dir("accounts-move-records"));
    let sid = w.say(None, "sonnet", "move 1").sid;
    assert_eq!(ran_on(&w, "move 1", &accounts), "a");
    w.say(Some(&sid), "sonnet", "move 2");

    // a's login is spent: the turn that finds out is refused, but says
    // to send it again, as another account has allowance left.
    accounts.limit("a", "rejected", 600);
    let r = turn(&w, Some(&sid), "move 3");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "usage_limit_reached");
    assert_eq!(r.header("Retry-After"), Some("1"));

    // Sent again: on b, cold, the conversation intact.
    let again = w.ask(
        &[CLAUDE, ("X-Claude-Session-ID", &sid)],
        json!({"model": "sonnet", "messages": [{"role": "user", "content": "move 4"}]}).to_string(),
    );
    assert!(!again.warm(), "the old login's process answered");
    assert_eq!(again.sid, sid);
    assert!(again.content.contains("turns=4"), "{}", again.content);
    assert_eq!(ran_on(&w, "move 4", &accounts), "b");
    assert_eq!(session_account(&w, &sid), "b");
    let scrape = get(w.addr(), "/metrics").text();
    assert!(
        scrape.contains("claude_cli_api_sessions_moved_total{from=\"a\",to=\"b\"} 1"),
        "{scrape}"
    );
    // New sessions go to b too while a is refused.
    w.say(None, "sonnet", "move 5");
    assert_eq!(ran_on(&w, "move 5", &accounts), "b");

    // b runs out as well: every account refused, until the earliest reset.
    accounts.limit("b", "rejected", 300);
    let r = turn(&w, Some(&sid), "move 6");
    assert_eq!(r.status, 429, "{}", r.text());
    let r = turn(&w, None, "move 7");
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!(
        (250..=305).contains(&wait),
        "Retry-After {wait}: the earliest reset is b's"
    );
    w.finish();
}

#[test]
fn a_key_limited_to_an_account_stays_there() {
    const ALICE: &str = "sk-cca-alice-1234567890";
    const BOB: &str = "sk-cca-bob-0987654321";
    let accounts = Accounts::new("accounts-keys");
    let keys = format!("{ALICE}=b,{BOB}");
    let w = accounts.start_with(
        temp_dir("accounts-keys-records"),
        &[("API_KEYS", keys.as_str())],
    );
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let ask = |auth: &str, text: &str| {
        let headers = [CLAUDE, ("Authorization", auth)];
        let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": text}]});
        chat(w.addr(), &headers, &body.to_string())
    };
    for n in 1..=2 {
        let text = format!("alice {n}");
        assert_eq!(ask(&alice, &text).status, 200);
        assert_eq!(ran_on(&w, &text, &accounts), "b", "alice's session {n}");
    }
    // Bob goes where the fewest sessions are.
    assert_eq!(ask(&bob, "bob 1").status, 200);
    assert_eq!(ran_on(&w, "bob 1", &accounts), "a");
    // b spent: Alice is refused, though a has room; Bob is not.
    accounts.limit("b", "rejected", 600);
    assert_eq!(ask(&alice, "alice 3").status, 429);
    let r = ask(&alice, "alice 4");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("Retry-After").unwrap().parse::<u64>().unwrap() > 500);
    assert_eq!(ask(&bob, "bob 2").status, 200);
    assert_eq!(ran_on(&w, "bob 2", &accounts), "a");
    w.finish();
}
