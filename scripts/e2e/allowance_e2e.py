"""The subscription allowance (issue 32) through the real `claude` CLI: a
server whose CLI logs in with an OAuth token (the only login the CLI reports
the allowance for) against a fake API of its own that counts an allowance
down (fake_allowance.py: each request spends 0.4 of a 5-hour window that
lasts 8 s here).

The OpenAI SDK sees the warning header, then the 429 `usage_limit_reached`
with a `Retry-After` counting down to the reset; a turn while refused never
reaches the API; `/v1/usage` moves with each turn; after the reset the
session goes on by itself; and Claude Code, as a client of the server's
Messages API (logged in to it with the server's key as its OAuth token),
reports the allowance it read from the server's answer.
"""

import json
import os
import subprocess
import tempfile
import time
import urllib.request

import openai

import fake_allowance
import fake_anthropic
from common import check

API_KEY = "sk-cca-e2e-0123456789abcdef"  # the server's own client key (run_e2e.py's)
OAUTH_TOKEN = "sk-ant-oat01-e2e-fake-token"
CLAUDE = {"X-Claude-Code": "true"}


def _usage(srv):
    rq = urllib.request.Request(srv.url("/v1/usage"),
                                headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(rq, timeout=30) as r:
        return json.load(r)["accounts"][0]


def _five_hour(srv):
    windows = {w["kind"]: w for w in _usage(srv)["windows"]}
    return windows.get("five_hour") or {}


def _refused(client, text, sid):
    """A turn of session `sid` that must be refused for the allowance: its
    Retry-After."""
    try:
        client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": text}],
            extra_headers=dict(CLAUDE, **{"X-Claude-Session-ID": sid}))
    except openai.RateLimitError as e:
        check(e.code == "usage_limit_reached", f"code {e.code!r}")
        return int(e.response.headers.get("retry-after", "0"))
    raise AssertionError(f"{text!r}: a spent allowance was not refused")


def test_allowance_counts_down_refuses_and_comes_back(ctx):
    Server = type(ctx.main)  # run_e2e's, which runs this
    allowance = fake_allowance.Allowance(per_request=0.4, warn_at=0.75, window_secs=8)
    fake = fake_anthropic.start(quiet=True, allowance=allowance)
    srv = Server(ctx, "allowance", anthropic_key=None,
                 extra_env={"CLAUDE_CODE_OAUTH_TOKEN": OAUTH_TOKEN,
                            "ANTHROPIC_BASE_URL": fake.url}).start()
    try:
        client = srv.client()
        sid = None
        seen = []
        for n in range(1, 4):
            headers = dict(CLAUDE, **({"X-Claude-Session-ID": sid} if sid else {}))
            raw = client.chat.completions.with_raw_response.create(
                model="sonnet", messages=[{"role": "user", "content": f"spend {n}"}],
                extra_headers=headers)
            sid = raw.headers.get("x-claude-session-id")
            seen.append((raw.headers.get("x-claude-usage-warning"),
                         _five_hour(srv).get("utilization")))
        check(seen[0] == (None, 0.4), f"turn 1: {seen[0]}")
        check(seen[1][0] and seen[1][0].startswith("five_hour 0.80 resets "), f"turn 2: {seen}")
        check([u for _, u in seen] == [0.4, 0.8, 1.0], f"utilization per turn: {seen}")

        before = len(fake.messages_records())
        wait = _refused(client, "spend 4", sid)
        check(1 <= wait <= 11, f"Retry-After {wait}")
        refused_at = time.monotonic()
        check(_five_hour(srv).get("status") == "rejected", _usage(srv))
        asked = len(fake.messages_records())
        _refused(client, "spend 5", sid)
        check(len(fake.messages_records()) == asked,
              "a turn refused at once still reached the API")
        print(f"      the refused turn asked the API {asked - before} time(s); "
              f"Retry-After {wait} s", flush=True)

        time.sleep(max(0.0, wait - (time.monotonic() - refused_at)) + 0.2)
        raw = client.chat.completions.with_raw_response.create(
            model="sonnet", messages=[{"role": "user", "content": "after the reset"}],
            extra_headers=dict(CLAUDE, **{"X-Claude-Session-ID": sid}))
        c = raw.parse()
        check("turns=4" in c.choices[0].message.content, c.choices[0].message.content)
        check(raw.headers.get("x-claude-warm") == "true", dict(raw.headers))
        check(_five_hour(srv).get("status") == "allowed", _usage(srv))

        # Claude Code, logged in to the server with its key as an OAuth
        # token, reads the allowance from the server's Messages answer.
        home, work = tempfile.mkdtemp(dir=ctx.tmp), tempfile.mkdtemp(dir=ctx.tmp)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
               "ANTHROPIC_BASE_URL": srv.url(), "CLAUDE_CODE_OAUTH_TOKEN": API_KEY,
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        p = subprocess.run([ctx.cli, "-p", "--output-format", "stream-json", "--verbose",
                            "Say hello"], env=env, cwd=work, capture_output=True, text=True,
                           timeout=120)
        events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        reported = [e["rate_limit_info"] for e in events if e.get("type") == "rate_limit_event"]
        check(p.returncode == 0, f"claude -p exited {p.returncode}: {p.stderr[-500:]}")
        check(reported and "five_hour" in reported[-1].get("unifiedWindows", {}),
              f"Claude Code reported no allowance: {reported}")
    finally:
        check(srv.stop() == 0, "server did not exit 0")
        fake.close()


def test_two_accounts_a_conversation_moves(ctx):
    """Two logins (CLAUDE_ACCOUNTS), each a CLI configuration directory whose
    settings.json gives the CLI its own OAuth token; the fake API keeps an
    allowance per token. New sessions spread; the first account runs out in
    the middle of a conversation, which goes on on the second, cold, with
    its history."""
    Server = type(ctx.main)
    tokens = {"a": "sk-ant-oat01-e2e-account-a", "b": "sk-ant-oat01-e2e-account-b"}
    allowances = {tokens["a"]: fake_allowance.Allowance(per_request=0.3, window_secs=600),
                  tokens["b"]: fake_allowance.Allowance(per_request=0.05, window_secs=600)}
    fake = fake_anthropic.start(quiet=True, allowance=allowances)
    root = tempfile.mkdtemp(dir=ctx.tmp)
    dirs = {}
    for name, token in tokens.items():
        dirs[name] = os.path.join(root, name)
        os.makedirs(dirs[name])
        with open(os.path.join(dirs[name], "settings.json"), "w") as f:
            json.dump({"env": {"CLAUDE_CODE_OAUTH_TOKEN": token}}, f)
    accounts = f"a={dirs['a']},b={dirs['b']}"
    srv = Server(ctx, "accounts", anthropic_key=None,
                 extra_env={"CLAUDE_ACCOUNTS": accounts, "ANTHROPIC_BASE_URL": fake.url,
                            "RATE_LIMIT_PER_SESSION": "0"}).start()
    try:
        client = srv.client()

        def ask(text, sid=None):
            headers = dict(CLAUDE, **({"X-Claude-Session-ID": sid} if sid else {}))
            raw = client.chat.completions.with_raw_response.create(
                model="sonnet", messages=[{"role": "user", "content": text}],
                extra_headers=headers)
            login = fake.messages_records()[-1]["credential"]
            return raw.headers, raw.parse().choices[0].message.content, login

        h1, _, login1 = ask("conversation one, turn 1")
        h2, _, login2 = ask("conversation two, turn 1")
        sid = h1.get("x-claude-session-id")
        check((login1, login2) == (tokens["a"][-6:], tokens["b"][-6:]),
              f"new sessions went to {login1} and {login2}")
        for n in (2, 3, 4):
            _, _, login = ask(f"conversation one, turn {n}", sid)
            check(login == tokens["a"][-6:], f"turn {n} left its account: {login}")
        try:
            ask("conversation one, turn 5", sid)
            raise AssertionError("a spent account answered")
        except openai.RateLimitError as e:
            check(e.code == "usage_limit_reached", f"code {e.code!r}")
            check(e.response.headers.get("retry-after") == "1", dict(e.response.headers))
        headers, text, login = ask("conversation one, turn 5 again", sid)
        check(login == tokens["b"][-6:], f"the moved turn asked with {login}")
        check(headers.get("x-claude-session-id") == sid, dict(headers))
        check(headers.get("x-claude-warm") == "false", dict(headers))
        check("turns=" in text and int(text.split("turns=")[1].split()[0]) >= 5,
              f"the history did not come along: {text}")
        accounts_now = {a["name"]: a for a in _usage_all(srv)}
        check(accounts_now["a"]["status"] == "rejected", accounts_now)
        print(f"      moved: {text[:60]}", flush=True)
    finally:
        check(srv.stop() == 0, "server did not exit 0")
        fake.close()


def _usage_all(srv):
    rq = urllib.request.Request(srv.url("/v1/usage"),
                                headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(rq, timeout=30) as r:
        return json.load(r)["accounts"]


CLIENT_TESTS = [test_allowance_counts_down_refuses_and_comes_back,
                test_two_accounts_a_conversation_moves]
