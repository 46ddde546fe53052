#!/usr/bin/env python3
"""Checks the fake upstreams on their own, without the server: the fake
Anthropic API against the real `claude` CLI (new session, resumes, system
prompt, aliases, OAuth token, bad key) and against plain HTTP; the fake
OpenAI API against the official `openai` SDK. Prints what the CLI sent
(paths, header names, model names for the aliases) and `N passed, M failed`.

Run with the e2e venv's python: .cache/e2e/venv/bin/python scripts/e2e/check_fake_with_cli.py
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_anthropic  # noqa: E402
import fake_openai  # noqa: E402
from common import Suite, check, cli_path  # noqa: E402

MARKER = fake_anthropic.DEFAULT_MARKER


class Cli:
    """Runs the real CLI the way the server will: a clean environment, its
    own HOME, a fixed working directory (sessions are stored per cwd)."""

    def __init__(self, path, base_url, tmp):
        self.path = path
        self.base_url = base_url
        self.home = os.path.join(tmp, "home")
        self.cwd = os.path.join(tmp, "work")
        os.makedirs(self.home)
        os.makedirs(self.cwd)

    def run(self, prompt, *args, creds=None, extra_env=None, timeout=60):
        env = {
            "HOME": self.home,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANTHROPIC_BASE_URL": self.base_url,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        env.update(creds if creds is not None else {"ANTHROPIC_API_KEY": "sk-ant-test"})
        env.update(extra_env or {})
        argv = [self.path, "-p", prompt, "--output-format", "stream-json", "--verbose",
                "--include-partial-messages", "--tools", "", *args]
        started = time.monotonic()
        proc = subprocess.run(argv, env=env, cwd=self.cwd, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        events = []
        for line in proc.stdout.decode(errors="replace").splitlines():
            line = line.strip()
            if line:
                events.append(json.loads(line))
        return CliResult(proc.returncode, events, proc.stderr.decode(errors="replace"),
                         time.monotonic() - started)


class CliResult:
    def __init__(self, code, events, stderr, took):
        self.code = code
        self.events = events
        self.stderr = stderr
        self.took = took
        results = [e for e in events if e.get("type") == "result"]
        self.result = results[-1] if results else {}
        self.text = self.result.get("result") or ""
        self.streamed = "".join(
            e["event"]["delta"].get("text", "") for e in events
            if e.get("type") == "stream_event"
            and e["event"].get("type") == "content_block_delta")

    def describe(self):
        return f"exit={self.code} result={self.text!r} stderr={self.stderr[-300:]!r}"


def new_sid():
    return str(uuid.uuid4())


def main():
    suite = Suite(only=sys.argv[1:] or None)
    tmp = tempfile.mkdtemp(prefix="e2e-cli-")
    anth = fake_anthropic.start(quiet=not os.environ.get("E2E_VERBOSE"))
    oai = fake_openai.start(quiet=not os.environ.get("E2E_VERBOSE"))
    seen_models = {}
    try:
        cli = Cli(cli_path(), anth.url, tmp)
        out = subprocess.run([cli.path, "--version"], capture_output=True, text=True,
                             timeout=30)
        print(f"claude CLI: {cli.path} ({out.stdout.strip()})")

        sid = new_sid()
        history = []  # (role, text) of the session's messages, for the echo's hist=

        def new_session_streams():
            r = cli.run("hello", "--model", "sonnet", "--session-id", sid)
            check(r.code == 0, r.describe())
            history.extend([("user", "hello"), ("assistant", r.text)])
            check("turns=1 " in r.text and "system=no" in r.text and "auth=x-api-key" in r.text,
                  r.describe())
            check(r.streamed == r.text, f"deltas {r.streamed!r} != result {r.text!r}")
            check(r.result.get("session_id") == sid, "result names another session")
            rec = anth.messages_records()[-1]
            check(rec["stream"] and rec["session_header"] == sid,
                  f"expected a streaming request naming the session: {rec}")

        def resume_counts_turns():
            # The resumed CLI sends the history as separate messages, and the
            # echo's msgs/roles/hist say so.
            for turn in (2, 3):
                r = cli.run(f"turn {turn}", "--model", "sonnet", "--resume", sid)
                check(r.code == 0 and f"turns={turn} " in r.text, r.describe())
                if history:
                    history.append(("user", f"turn {turn}"))
                    echo = fake_anthropic.history_echo(history)
                    check(r.text.endswith(echo), f"expected {echo!r}: {r.describe()}")
                    history.append(("assistant", r.text))

        def resume_unknown_session():
            r = cli.run("x", "--model", "sonnet", "--resume", new_sid())
            check(r.code != 0 and "No conversation found" in r.stderr, r.describe())

        def system_prompt_marker():
            for flag in ("--system-prompt", "--append-system-prompt"):
                r = cli.run("x", "--model", "sonnet", "--session-id", new_sid(),
                            flag, f"{MARKER} be brief")
                check(r.code == 0 and "system=yes" in r.text, f"{flag}: {r.describe()}")

        def system_prompt_is_frozen_on_resume():
            # What the CLI really does: a resumed session keeps the system prompt
            # it was created with; flags given on resume are ignored.
            s = new_sid()
            r = cli.run("x", "--model", "sonnet", "--session-id", s)
            check("system=no" in r.text, r.describe())
            r = cli.run("y", "--model", "sonnet", "--resume", s,
                        "--append-system-prompt", MARKER)
            check("turns=2 " in r.text and "system=no" in r.text,
                  f"expected the CLI to drop a system prompt given on resume: {r.describe()}")
            s = new_sid()
            cli.run("x", "--model", "sonnet", "--session-id", s, "--system-prompt", MARKER)
            r = cli.run("y", "--model", "sonnet", "--resume", s)
            check("turns=2 " in r.text and "system=yes" in r.text,
                  f"expected the creation's system prompt to stay: {r.describe()}")

        def aliases_reach_upstream_as_models():
            for alias in ("sonnet", "haiku", "opus", "claude-sonnet-4-6"):
                r = cli.run("x", "--model", alias)
                check(r.code == 0, r.describe())
                model = anth.messages_records()[-1]["model"]
                seen_models[alias] = model
                check(f"model={model}" in r.text, r.describe())
            check(seen_models["sonnet"].startswith("claude-sonnet"), str(seen_models))
            check(seen_models["haiku"].startswith("claude-haiku"), str(seen_models))
            check(seen_models["opus"].startswith("claude-opus"), str(seen_models))

        def oauth_token_is_a_bearer():
            r = cli.run("x", "--model", "sonnet",
                        creds={"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-e2e-fake-token"})
            check(r.code == 0 and "auth=bearer" in r.text, r.describe())
            rec = anth.messages_records()[-1]
            check("authorization" in rec["header_names"] and "x-api-key" not in
                  rec["header_names"], str(rec["header_names"]))
            check("oauth-2025-04-20" in (rec["anthropic_beta"] or ""), rec["anthropic_beta"])

        def bad_key_fails_fast_with_401():
            r = cli.run("x", "--model", "sonnet",
                        creds={"ANTHROPIC_API_KEY": "sk-ant-bad-e2e"},
                        extra_env={"CLAUDE_CODE_MAX_RETRIES": "1"})
            check(r.code == 1 and r.result.get("is_error") is True
                  and r.result.get("api_error_status") == 401, r.describe())
            retries = [e for e in r.events if e.get("subtype") == "api_retry"]
            check(retries and retries[0].get("error_status") == 401,
                  f"expected an api_retry event with error_status 401: {r.describe()}")
            check(r.took < 15, f"took {r.took:.1f}s")

        def no_credentials_sends_nothing():
            before = len(anth.messages_records())
            r = cli.run("x", "--model", "sonnet", creds={})
            check(r.code == 1 and r.result.get("is_error") is True, r.describe())
            check(len(anth.messages_records()) == before, "a request reached the fake")

        def sigterm_stops_a_slow_stream():
            env = {"HOME": cli.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "ANTHROPIC_BASE_URL": anth.url, "ANTHROPIC_API_KEY": "sk-ant-test",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
            argv = [cli.path, "-p", "SLOW-STREAM please", "--output-format", "stream-json",
                    "--verbose", "--include-partial-messages", "--tools", "", "--model",
                    "sonnet"]
            proc = subprocess.Popen(argv, env=env, cwd=cli.cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                    process_group=0)
            try:
                for line in proc.stdout:
                    if b'"text_delta"' in line:
                        break
                else:
                    raise AssertionError("the stream ended before its first delta")
                started = time.monotonic()
                os.killpg(proc.pid, signal.SIGTERM)
                code = proc.wait(timeout=10)
                took = time.monotonic() - started
                check(took < 5, f"the CLI took {took:.1f}s to stop after SIGTERM")
                print(f"     CLI exit status after SIGTERM mid-stream: {code} "
                      f"after {took:.2f}s")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()

        def fake_answers_plain_http():
            def post(path, body, headers):
                rq = urllib.request.Request(anth.url + path, data=json.dumps(body).encode(),
                                            headers={"content-type": "application/json",
                                                     **headers})
                try:
                    with urllib.request.urlopen(rq, timeout=10) as resp:
                        return resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.headers, e.read()

            body = {"model": "m", "max_tokens": 10, "system": f"a {MARKER}",
                    "messages": [{"role": "user", "content": "hi"}]}
            status, _, data = post("/v1/messages", body, {"x-api-key": "sk-ant-ok"})
            msg = json.loads(data)
            check(status == 200 and msg["content"][0]["text"]
                  == "turns=1 system=yes model=m auth=x-api-key "
                  + fake_anthropic.history_echo([("user", "hi")]), data)
            status, _, data = post("/v1/messages", body, {"authorization": "Bearer sk-ant-bad1"})
            check(status == 401 and json.loads(data) == {"type": "error", "error": {
                "type": "authentication_error", "message": "invalid x-api-key"}}, data)
            status, headers, data = post("/v1/messages?beta=true", {**body, "stream": True},
                                         {"authorization": "Bearer tok"})
            check(status == 200 and headers["content-type"].startswith("text/event-stream"),
                  headers)
            names = [ln[7:] for ln in data.decode().splitlines() if ln.startswith("event: ")]
            check(names[0] == "message_start" and names[-1] == "message_stop"
                  and "message_delta" in names, names)
            status, _, data = post("/v1/messages/count_tokens", body, {"x-api-key": "k"})
            check(status == 200 and "input_tokens" in json.loads(data), data)

        def fake_openai_with_sdk():
            import openai
            client = openai.OpenAI(base_url=oai.url, api_key="sk-e2e-good", max_retries=0)
            c = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            check(c.choices[0].message.content == "passthrough model=gpt-4o-mini messages=1 "
                  "auth=bearer", c)
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                stream=True, stream_options={"include_usage": True})
            parts, finish, usage = [], None, None
            for chunk in stream:
                if chunk.usage:
                    usage = chunk.usage
                for ch in chunk.choices:
                    parts.append(ch.delta.content or "")
                    finish = ch.finish_reason or finish
            check("".join(parts).strip() == "passthrough model=gpt-4o-mini messages=1 "
                  "auth=bearer" and finish == "stop" and usage, parts)
            bad = openai.OpenAI(base_url=oai.url, api_key="sk-bad-key", max_retries=0)
            try:
                bad.chat.completions.create(model="m", messages=[{"role": "user",
                                                                  "content": "x"}])
            except openai.AuthenticationError as e:
                check(e.code == "invalid_api_key", e)
            else:
                raise AssertionError("no AuthenticationError")

        suite.run("cli_new_session_streams", new_session_streams)
        suite.run("cli_resume_counts_turns", resume_counts_turns)
        suite.run("cli_resume_unknown_session", resume_unknown_session)
        suite.run("cli_system_prompt_marker", system_prompt_marker)
        suite.run("cli_system_prompt_frozen_on_resume", system_prompt_is_frozen_on_resume)
        suite.run("cli_aliases_reach_upstream", aliases_reach_upstream_as_models)
        suite.run("cli_oauth_token_is_bearer", oauth_token_is_a_bearer)
        suite.run("cli_bad_key_fails_fast", bad_key_fails_fast_with_401)
        suite.run("cli_no_credentials", no_credentials_sends_nothing)
        suite.run("cli_sigterm_mid_stream", sigterm_stops_a_slow_stream)
        # Only the CLI has talked to the fake so far.
        paths = sorted({r["path"] for r in anth.records})
        names = sorted({n for r in anth.messages_records() for n in r["header_names"]})
        suite.run("fake_anthropic_plain_http", fake_answers_plain_http)
        suite.run("fake_openai_with_sdk", fake_openai_with_sdk)

        print(f"paths the CLI used: {paths}")
        print(f"header names it sent: {names}")
        print(f"models for aliases: {seen_models}")
    finally:
        anth.close()
        oai.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return suite.summary()


if __name__ == "__main__":
    sys.exit(main())
