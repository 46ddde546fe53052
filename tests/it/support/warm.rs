//! The harness of the warm-session tests (issue 17: tests/it/warm.rs,
//! tests/it/history.rs, tests/it/spares.rs): a server whose `claude` is
//! the fake CLI (fixtures/fake-claude), which takes several turns per
//! process as the real CLI does, and what the tests read back. What a
//! user would notice is asserted: the answer is right (`turns=N` in the
//! fake's echo counts the turns the conversation has had, so a turn that
//! reached another conversation, or lost one, shows), the `X-Claude-Warm`
//! and `X-Claude-Session-ID` headers, and, from the fake's record files
//! (`PID.json` for a process's first turn, `PID-K.json` for its K-th),
//! which process answered. Every test ends by stopping its server and
//! checking that no CLI process is left.
//!
//! The fake's figures: turn T of a session costs T × 0.0001
//! (`total_cost_usd` is the session's running total), reports
//! `duration_ms` 10 + T and usage of 6 + T input tokens, 2 cache read and
//! 1 cache creation (prompt_tokens 9 + T), and the echo answer has 4 words.

use std::path::PathBuf;
use std::time::Duration;

use claude_cli_api::Config;
use serde_json::{json, Value};

use super::*;

/// A server whose `claude` is the fake CLI, with warm sessions on.
pub struct Warm {
    pub server: Option<TestServer>,
    /// Where the fake records each turn (FAKE_CLAUDE_RECORD_DIR).
    pub records: PathBuf,
    /// The sessions' working directories (`CLAUDE_WORK_DIR`).
    pub work: PathBuf,
}

/// One turn as the fake CLI recorded it.
#[derive(Debug, Clone)]
pub struct Run {
    pub pid: i32,
    /// The turn's place in its process: 1 for the first.
    pub nth: u32,
    pub value: Value,
}

impl Run {
    pub fn argv(&self) -> Vec<String> {
        self.value["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    pub fn flag(&self, flag: &str) -> Option<String> {
        let args = self.argv();
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    }
}

/// A 200 answer from a Claude turn, with what the tests look at.
pub struct Answer {
    pub response: HttpResponse,
    pub sent: String,
    pub sid: String,
    pub content: String,
}

impl Answer {
    pub fn warm(&self) -> bool {
        match self.response.header("X-Claude-Warm") {
            Some("true") => true,
            Some("false") => false,
            other => panic!(
                "X-Claude-Warm is {other:?}\nsent: {}\ngot: {:?}",
                self.sent, self.response
            ),
        }
    }

    pub fn created(&self) -> bool {
        self.response.header("X-Claude-Session-Created") == Some("true")
    }

    /// `turns=N` of the fake's echo: the turns its conversation has had.
    pub fn turns(&self) -> u32 {
        turns_in(&self.content).unwrap_or_else(|| {
            panic!(
                "no turns= in {:?}\nsent: {}\ngot: {}",
                self.content,
                self.sent,
                self.response.text()
            )
        })
    }

    pub fn header_f64(&self, name: &str) -> f64 {
        let value = self
            .response
            .header(name)
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.response.headers));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {value:?}"))
    }
}

pub fn turns_in(text: &str) -> Option<u32> {
    let rest = &text[text.find("turns=")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

pub fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": text})
}

pub fn body(model: &str, messages: &[Value]) -> String {
    json!({"model": model, "messages": messages}).to_string()
}

/// Settings every test shares: warm sessions on, nothing closed for idling
/// or for memory during a test (the test host may have little free
/// memory), no spares, history matching on.
pub fn warm_defaults(config: &mut Config) {
    config.warm_sessions = 4;
    config.warm_idle = Duration::from_secs(120);
    config.warm_min_free_mb = 0;
    config.warm_spares = 0;
    config.claude_match_history = true;
}

impl Warm {
    pub fn start(extra: &[(&str, &str)]) -> Warm {
        Warm::start_with(extra, |_| {})
    }

    /// `extra` are environment-style settings; `tweak` changes the parsed
    /// config last.
    pub fn start_with(extra: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> Warm {
        Warm::start_on(temp_dir("warm-records"), extra, tweak)
    }

    /// [`Warm::start_with`] with the fake recording into `records` (a
    /// server started again on the directories of an earlier one can
    /// share its records).
    pub fn start_on(
        records: PathBuf,
        extra: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> Warm {
        let mut config = fake_cli_config(&records, extra);
        warm_defaults(&mut config);
        tweak(&mut config);
        let work = config.claude_work_dir.clone();
        Warm {
            server: Some(server_with(config)),
            records,
            work,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().addr
    }

    /// Sends a turn and insists on a 200 with an answer.
    pub fn ask(&self, headers: &[(&str, &str)], sent: String) -> Answer {
        ask_at(self.addr(), headers, sent)
    }

    /// A turn of session `sid` (a new session when None) carrying only its
    /// new user message, as a client that keeps the session id does.
    pub fn say(&self, sid: Option<&str>, model: &str, text: &str) -> Answer {
        self.say_as(sid, model, text, &[])
    }

    pub fn say_as(
        &self,
        sid: Option<&str>,
        model: &str,
        text: &str,
        more: &[(&str, &str)],
    ) -> Answer {
        let mut headers = vec![CLAUDE];
        if let Some(sid) = sid {
            headers.push(("X-Claude-Session-ID", sid));
        }
        headers.extend_from_slice(more);
        self.ask(&headers, body(model, &[user(text)]))
    }

    /// Every turn the fake recorded.
    pub fn runs(&self) -> Vec<Run> {
        runs_in(&self.records)
    }

    /// The one recorded turn whose prompt was `prompt`.
    pub fn run_of(&self, prompt: &str) -> Run {
        let runs = self.runs();
        let found: Vec<&Run> = runs
            .iter()
            .filter(|r| r.value["prompt"] == prompt)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "runs with prompt {prompt:?}; prompts seen: {:?}",
            runs.iter().map(|r| &r.value["prompt"]).collect::<Vec<_>>()
        );
        found[0].clone()
    }

    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.records)
    }

    pub fn health_warm(&self) -> Value {
        get(self.addr(), "/health").json()["checks"]["warm"].clone()
    }

    pub fn marker_exists(&self, name: &str) -> bool {
        self.records.join(name).exists()
    }

    /// The fake CLIs of this server alive now, recorded or not (a spare
    /// leaves no record before its first turn).
    pub fn live_fakes(&self) -> Vec<Fake> {
        live_fakes(&self.records)
    }

    /// The spares alive now: live fakes that have not had a turn.
    pub fn spares(&self) -> Vec<Fake> {
        let recorded = self.pids();
        self.live_fakes()
            .into_iter()
            .filter(|f| !recorded.contains(&f.pid))
            .collect()
    }

    /// Waits until `/health` reports `n` spares and as many spare
    /// processes are alive; gives them.
    pub fn wait_spares(&self, n: usize) -> Vec<Fake> {
        let mut seen = Vec::new();
        let ready = wait_until(Duration::from_secs(10), || {
            seen = self.spares();
            seen.len() == n && self.health_warm()["spares"] == n
        });
        assert!(
            ready,
            "waiting for {n} spare(s): /health says {}, spare processes {:?}",
            self.health_warm(),
            self.spares()
        );
        seen
    }

    /// The names of the directories in the work root.
    pub fn work_dirs(&self) -> Vec<String> {
        dirs_in(&self.work)
    }

    /// Stops the server and checks that every CLI it started is gone.
    pub fn finish(mut self) {
        drop(self.server.take());
        assert_all_gone(&self.pids());
        assert!(
            wait_until(Duration::from_secs(10), || self.live_fakes().is_empty()),
            "CLI processes left: {:?}",
            self.live_fakes()
        );
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        drop(self.server.take());
        // A test that failed halfway must not leave its CLIs running;
        // `finish` has already asserted this for the tests that passed.
        let mut pids = self.pids();
        pids.extend(self.live_fakes().iter().map(|f| f.pid));
        reap_leftovers(&pids);
    }
}

/// A live fake CLI, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fake {
    pub pid: i32,
    pub argv: Vec<String>,
}

impl Fake {
    pub fn flag(&self, flag: &str) -> Option<String> {
        self.argv
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.argv.get(i + 1).cloned())
    }
}

/// Every live process whose environment names `records` (unique to one
/// test), with its argv: the fake CLIs of a test and what they started,
/// and the test's server when it runs as a process of its own.
pub fn processes_recording_into(records: &std::path::Path) -> Vec<(i32, Vec<String>)> {
    let mut needle = b"FAKE_CLAUDE_RECORD_DIR=".to_vec();
    needle.extend_from_slice(records.as_os_str().as_encoded_bytes());
    needle.push(0);
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ
            .windows(needle.len())
            .any(|w| w == needle.as_slice())
            || !process_alive(pid)
        {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.last().is_some_and(String::is_empty) {
            argv.pop();
        }
        found.push((pid, argv));
    }
    found.sort_by_key(|(pid, _)| *pid);
    found
}

/// The live fake CLIs that record into `records`, so other tests'
/// processes are never counted, nor signalled.
pub fn live_fakes(records: &std::path::Path) -> Vec<Fake> {
    processes_recording_into(records)
        .into_iter()
        .filter_map(|(pid, mut argv)| {
            // Only the interpreter running the fake counts: on its way there
            // (`#!/usr/bin/env python3`, then maybe a version manager's
            // shims) the process execs several times, and a read of its
            // environment across an exec comes back empty. Seen once it is
            // Python, a fake stays seen until it exits.
            let interpreter = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
            let is_fake = interpreter.is_some_and(|name| name.starts_with("python"))
                && argv.get(1).is_some_and(|a| a.ends_with("fake-claude"));
            // The fake's own arguments, after the interpreter and its path.
            is_fake.then(|| Fake {
                pid,
                argv: argv.split_off(2),
            })
        })
        .collect()
}

/// Sends a turn to the server at `addr` (from any thread) and insists on
/// a 200 with an answer.
pub fn ask_at(addr: std::net::SocketAddr, headers: &[(&str, &str)], sent: String) -> Answer {
    let response = chat(addr, headers, &sent);
    assert_eq!(
        response.status,
        200,
        "sent {headers:?} {sent}\ngot: {}",
        response.text()
    );
    let sid = response
        .header("X-Claude-Session-ID")
        .unwrap_or_else(|| panic!("no session id: {:?}", response.headers))
        .to_string();
    let content = response.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {}", response.text()))
        .to_string();
    Answer {
        response,
        sent,
        sid,
        content,
    }
}

/// The names of the directories in `root`, sorted.
pub fn dirs_in(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn runs_in(records: &std::path::Path) -> Vec<Run> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(records).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let (pid, nth) = match stem.split_once('-') {
            Some((pid, nth)) => (pid.parse(), nth.parse()),
            None => (stem.parse(), Ok(1)),
        };
        let (Ok(pid), Ok(nth)) = (pid, nth) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if let Ok(value) = serde_json::from_str(&text) {
            runs.push(Run { pid, nth, value });
        }
    }
    runs
}

pub fn pids_in(records: &std::path::Path) -> Vec<i32> {
    let mut pids: Vec<i32> = runs_in(records).iter().map(|r| r.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

pub fn assert_all_gone(pids: &[i32]) {
    assert!(!pids.is_empty(), "the fake CLI never ran");
    assert!(
        wait_until(Duration::from_secs(10), || pids
            .iter()
            .all(|p| !process_alive(*p))),
        "CLI processes left: {:?}",
        pids.iter()
            .filter(|p| process_alive(**p))
            .collect::<Vec<_>>()
    );
}

/// SIGKILL for recorded pids still alive that are still the fake CLI (a
/// pid the kernel has given to another process is left alone).
pub fn reap_leftovers(pids: &[i32]) {
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if process_alive(*pid) && String::from_utf8_lossy(&cmdline).contains("fake-claude") {
            // SAFETY: signalling a CLI process this test's server started.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
}

pub fn approx(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-9
}
