#!/usr/bin/env python3
"""End-to-end suite: the real server binary, the real `claude` CLI (no
wrapper), the official OpenAI SDKs (Python here, Node for one test),
Anthropic's Python SDK, LangChain's `ChatOpenAI` (four tests, one with
`bind_tools`), the OpenAI Agents SDK (a tool run on Chat Completions, and
with its defaults on the Responses API in both modes), and two local fakes
for the upstreams (fake_anthropic.py behind the CLI, fake_openai.py behind
the passthrough).
Tool calls, images and structured output in Claude Code mode are steered by
words the fake API reacts to (see its docstring): "weather in <City>",
"time in <Zone>". The relay tests (relay_*) call the other OpenAI routes
(Responses, embeddings, models, files, audio, DELETEs) through the
passthrough against fake_openai.py; claude_base_url_* use the /claude/v1
base URL without the X-Claude-Code header; responses_* are the Responses
API in Claude Code mode (create, the stream helper, previous_response_id
chains, function tools, structured output); anthropic_sdk_* are the
Anthropic Messages API (/v1/messages) with Anthropic's official Python SDK
(create and a resumed session, the stream helper and the raw events, a
tool_use/tool_result loop, images, errors as the SDK's exception classes).

    SERVER_BIN=target/x86_64-unknown-linux-gnu/release/claude-cli-api \\
        .cache/e2e/venv/bin/python scripts/e2e/run_e2e.py [name-filter ...]

It builds nothing (scripts/e2e.sh does). Ends with one line
`N passed, M failed` and exits 1 when anything failed. E2E_VERBOSE=1 prints
tracebacks and the fakes' request log; E2E_KEEP=1 keeps the temp directory
(server logs, state, HOME) for a look afterwards; E2E_DUMP_DIR=<dir> has the
fake Anthropic API write each request body it gets there.
"""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_anthropic  # noqa: E402
import fake_openai  # noqa: E402
from common import (ROOT, NODE_DIR, Suite, alive, assistant_turn, check,  # noqa: E402
                    children_of, cli_path, free_port, members_of_group, metric_samples,
                    proc_exe, proc_stat, all_pids, wait_until)

try:
    import openai  # the official SDK, from the e2e venv
except ImportError:
    sys.exit("the openai package is missing: run scripts/e2e/setup.sh and use "
             ".cache/e2e/venv/bin/python")
try:
    from langchain_openai import ChatOpenAI
except ImportError:
    sys.exit("the langchain-openai package is missing: run scripts/e2e/setup.sh and use "
             ".cache/e2e/venv/bin/python")
try:
    import anthropic  # Anthropic's official SDK, for the Messages API tests
except ImportError:
    sys.exit("the anthropic package is missing: run scripts/e2e/setup.sh and use "
             ".cache/e2e/venv/bin/python")

API_KEY = "sk-cca-e2e-0123456789abcdef"  # the server's own client key
ANTHROPIC_KEY = "sk-ant-e2e-good-key"
ANTHROPIC_BAD_KEY = "sk-ant-bad-e2e-key"  # the fake answers 401 to sk-ant-bad*
OAUTH_TOKEN = "sk-ant-oat01-e2e-fake-token"
OPENAI_KEY = "sk-e2e-openai-good"
MARKER = fake_anthropic.DEFAULT_MARKER
CLAUDE = {"X-Claude-Code": "true"}
USER_HI = [{"role": "user", "content": "hi"}]




def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Server:
    """One run of the server binary. `dirs` (state, home) may be shared by
    several runs to test a restart."""

    instances = []  # every one ever started, for the final cleanup

    def __init__(self, ctx, name, dirs=None, anthropic_key=ANTHROPIC_KEY, extra_env=None):
        self.ctx = ctx
        self.name = name
        self.dirs = dirs or ctx.new_dirs(name)
        self.anthropic_key = anthropic_key
        self.extra_env = extra_env or {}
        self.proc = None
        self.port = None
        self.log_path = None
        self.logs = []  # one per start
        self.runs = 0

    def env(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": self.dirs["home"],
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_FORMAT": "json",
            "API_KEY": API_KEY,
            "STATE_DIR": self.dirs["state"],
            "CLAUDE_PATH": self.ctx.cli,
            "ANTHROPIC_BASE_URL": self.ctx.anthropic.url,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "OPENAI_BASE_URL": self.ctx.openai.url,
            "OPENAI_API_KEY": OPENAI_KEY,
        }
        if self.anthropic_key:
            env["ANTHROPIC_API_KEY"] = self.anthropic_key
        env.update(self.extra_env)
        return env

    def start(self):
        self.port = free_port()
        self.runs += 1
        self.log_path = os.path.join(self.ctx.tmp, f"server-{self.name}-{self.runs}.log")
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([self.ctx.server_bin], env=self.env(),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.dirs["home"])
        finally:
            log.close()
        if self not in Server.instances:
            Server.instances.append(self)
        self.logs.append(self.log_path)

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"server {self.name} exited with {self.proc.returncode}"
                                     f" at start:\n{self.log_tail()}")
            try:
                return http_get(self.url("/health"), timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(healthy, 15, what=f"server {self.name} /health 200")
        return self

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def client(self, **kw):
        kw.setdefault("api_key", API_KEY)
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60)
        return openai.OpenAI(base_url=self.url("/v1"), **kw)

    def health(self):
        status, body = http_get(self.url("/health"))
        return status, json.loads(body)

    def stop(self, timeout=20):
        """SIGTERM, wait; returns the exit status (SIGKILL after the timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server {self.name} ignored SIGTERM for {timeout}s")

    def log_tail(self, lines=15, path=None):
        try:
            with open(path or self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Ctx:
    def __init__(self, tmp, cli, server_bin, anthropic, openai_fake):
        self.tmp = tmp
        self.cli = cli
        self.server_bin = server_bin
        self.anthropic = anthropic
        self.openai = openai_fake
        self.main = None
        self.relay = None  # the relay tests' server, started by the first of them
        self.messages_srv = None  # likewise for the Messages API tests

    def new_server(self, name, **env):
        """A server of its own for a test (warm processes kept on any host,
        no rate limits unless `env` says otherwise), started; stopped by the
        final cleanup at the latest."""
        env.setdefault("WARM_MIN_FREE_MB", "0")
        env.setdefault("RATE_LIMIT_PER_IP", "0")
        return Server(self, name, extra_env=env).start()

    def new_dirs(self, name):
        dirs = {k: tempfile.mkdtemp(prefix=f"{name}-{k}-", dir=self.tmp)
                for k in ("state", "home")}
        return dirs


# --- helpers for the tests ---------------------------------------------


def text_of(completion):
    return completion.choices[0].message.content or ""


def read_stream(stream):
    """Joins a chat stream: (text, finish reasons, usage, roles seen)."""
    parts, finishes, roles, usage = [], [], [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            parts.append(choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return "".join(parts), finishes, usage, roles


def is_uuid4(value):
    try:
        return uuid.UUID(value).version == 4
    except (TypeError, ValueError):
        return False


def claude_turn(client, messages, session=None, **kw):
    headers = dict(CLAUDE)
    if session:
        headers["X-Claude-Session-ID"] = session
    raw = client.chat.completions.with_raw_response.create(
        model=kw.pop("model", "sonnet"), messages=messages, extra_headers=headers, **kw)
    return raw.headers.get("x-claude-session-id"), raw.parse(), raw.headers


# --- the tests ---------------------------------------------------------


def test_passthrough_non_stream(ctx):
    raw = ctx.main.client().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER_HI)
    c = raw.parse()
    check(text_of(c) == "passthrough model=gpt-4o-mini messages=1 auth=bearer", text_of(c))
    check(raw.headers.get("x-backend-mode") == "openai-passthrough", dict(raw.headers))
    check(c.choices[0].finish_reason == "stop" and c.usage.total_tokens > 0, c)
    rec = ctx.openai.chat_records()[-1]
    check(rec["key_ok"] and "x-claude-code" not in rec["header_names"], rec)


def test_passthrough_stream(ctx):
    stream = ctx.main.client().chat.completions.create(
        model="gpt-4o-mini", messages=USER_HI, stream=True,
        stream_options={"include_usage": True})
    text, finishes, usage, roles = read_stream(stream)
    check(text.strip() == "passthrough model=gpt-4o-mini messages=1 auth=bearer", text)
    check(finishes == ["stop"] and roles == ["assistant"] and usage, (finishes, roles, usage))


def test_passthrough_upstream_401(ctx):
    try:
        ctx.main.client().chat.completions.create(
            model="gpt-4o-mini", messages=USER_HI,
            extra_headers={"X-OpenAI-API-Key": "sk-bad-client-key"})
    except openai.AuthenticationError as e:
        check(e.code == "invalid_api_key", f"code {e.code!r}: {e}")
    else:
        raise AssertionError("expected openai.AuthenticationError")


def test_claude_non_stream(ctx):
    sid, c, headers = claude_turn(ctx.main.client(), USER_HI)
    text = text_of(c)
    check(text.startswith("turns=1 system=no model=claude-sonnet") and "auth=x-api-key" in text,
          text)
    check(headers.get("x-backend-mode") == "claude-code", dict(headers))
    check(is_uuid4(sid) and headers.get("x-claude-session-created") == "true", dict(headers))
    check(c.choices[0].finish_reason == "stop" and c.usage and c.usage.completion_tokens > 0, c)
    check(c.model == "sonnet", f"response model {c.model!r}, expected the requested name")
    check(ctx.anthropic.messages_records()[-1]["session_header"] == sid,
          "the CLI ran under another session id than the header says")


def test_claude_stream(ctx):
    stream = ctx.main.client().chat.completions.create(
        model="sonnet", messages=USER_HI, stream=True, extra_headers=CLAUDE,
        stream_options={"include_usage": True})
    text, finishes, usage, roles = read_stream(stream)
    check(text.startswith("turns=1 system=no model=claude-sonnet"), text)
    check(finishes == ["stop"], f"finish reasons {finishes}")
    check(roles == ["assistant"], f"roles {roles}")
    check(usage is not None and usage.completion_tokens > 0, f"usage {usage}")


def test_cache_counts_in_every_api(ctx):
    """A prompt the API read from its cache: each SDK finds the cached count
    where its API puts it, streamed and whole, and the totals agree."""
    prompt = [{"role": "user", "content": "CACHE-HIT hello"}]
    _, c, _ = claude_turn(ctx.main.client(), prompt)
    u = c.usage
    cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
    check(cached > 0 and u.prompt_tokens >= cached + 10, f"chat usage {u}")
    stream = ctx.main.client().chat.completions.create(
        model="sonnet", messages=prompt, stream=True, extra_headers=CLAUDE,
        stream_options={"include_usage": True})
    _, _, su, _ = read_stream(stream)
    check(su is not None and su.prompt_tokens_details is not None
          and su.prompt_tokens_details.cached_tokens > 0, f"streamed chat usage {su}")
    r = ctx.main.client().responses.create(model="gpt-5", input="CACHE-HIT hello",
                                           extra_headers=CLAUDE)
    check(r.usage.input_tokens_details.cached_tokens > 0
          and r.usage.input_tokens >= r.usage.input_tokens_details.cached_tokens + 10,
          f"responses usage {r.usage}")
    m = anthropic_client(ctx.main.url()).messages.create(
        model="claude-sonnet-4-6", max_tokens=1024, messages=prompt)
    mu = m.usage
    check(mu.cache_read_input_tokens and mu.cache_read_input_tokens > 0
          and mu.cache_creation_input_tokens and mu.cache_creation_input_tokens > 0
          and mu.input_tokens < mu.cache_read_input_tokens, f"messages usage {mu}")
    with anthropic_client(ctx.main.url()).messages.stream(
            model="claude-sonnet-4-6", max_tokens=1024, messages=prompt) as s:
        final = s.get_final_message()
    fu = final.usage
    check(fu.cache_read_input_tokens == mu.cache_read_input_tokens
          and fu.input_tokens == mu.input_tokens, f"streamed messages usage {fu}, whole {mu}")


def test_three_turn_session(ctx):
    client = ctx.main.client()
    messages = [{"role": "user", "content": "my name is E2E"}]
    sid, c, _ = claude_turn(client, messages)
    check(is_uuid4(sid) and text_of(c).startswith("turns=1 "), text_of(c))
    for turn in (2, 3):
        messages += [{"role": "assistant", "content": text_of(c)},
                     {"role": "user", "content": f"turn {turn}"}]
        got, c, headers = claude_turn(client, messages, session=sid)
        check(got == sid, f"turn {turn} answered for session {got}")
        check(headers.get("x-claude-session-created") != "true", dict(headers))
        check(text_of(c).startswith(f"turns={turn} "), f"turn {turn}: {text_of(c)}")


def test_system_prompt(ctx):
    _, c, _ = claude_turn(ctx.main.client(), [
        {"role": "system", "content": f"{MARKER}: answer tersely."},
        {"role": "user", "content": "hi"}])
    check("system=yes" in text_of(c), text_of(c))


def test_model_alias(ctx):
    _, c, _ = claude_turn(ctx.main.client(), USER_HI, model="gpt-4o")
    seen = ctx.anthropic.messages_records()[-1]["model"]
    check(seen.startswith("claude-sonnet") or seen == "sonnet", f"upstream saw {seen!r}")
    check(f"model={seen}" in text_of(c), text_of(c))
    check(c.model == "gpt-4o", f"response model {c.model!r}")


def test_unknown_session_404(ctx):
    try:
        claude_turn(ctx.main.client(), USER_HI, session=str(uuid.uuid4()))
    except openai.NotFoundError as e:
        check(e.code == "session_not_found", f"code {e.code!r}")
    else:
        raise AssertionError("expected openai.NotFoundError")


def test_session_gone_from_disk_404(ctx):
    # The registry knows the session but the CLI's own file is gone: the
    # CLI's "No conversation found" must come back as a 404 too. The session's
    # process is still warm (and would answer from memory, writing a new file
    # that holds only the new turn), so the turn brings a system prompt: that
    # closes the warm process and runs cold with --resume.
    client = ctx.main.client()
    sid, c, _ = claude_turn(client, USER_HI)
    projects = os.path.join(ctx.main.dirs["home"], ".claude", "projects")
    files = [os.path.join(d, f) for d, _, fs in os.walk(projects) for f in fs
             if f == f"{sid}.jsonl"]
    check(len(files) == 1, f"expected one session file for {sid}, found {files}")
    os.remove(files[0])
    try:
        claude_turn(client, [{"role": "system", "content": "Be brief."}] + USER_HI,
                    session=sid)
    except openai.NotFoundError as e:
        check(e.code == "session_not_found", f"code {e.code!r}")
    else:
        raise AssertionError("expected openai.NotFoundError")


def test_busy_session_then_disconnect(ctx):
    """A second turn while one streams is refused as busy; a client that goes
    away mid-stream gets its turn interrupted (the main server keeps processes
    warm), and the session's next turn runs on the same process, warm."""
    client = ctx.main.client()
    before = set(cli_children(ctx, ctx.main))
    sid, _, _ = claude_turn(client, USER_HI)
    stream = client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "SLOW-STREAM"}], stream=True,
        extra_headers={**CLAUDE, "X-Claude-Session-ID": sid})
    try:
        for chunk in stream:
            if any(ch.delta.content for ch in chunk.choices):
                break
        # Earlier tests' sessions may still have warm processes: this
        # session's is the one that was not there before its first turn.
        kids = [p for p in cli_children(ctx, ctx.main) if p not in before]
        check(len(kids) == 1, f"expected one new claude child, found {kids} "
              f"(before: {sorted(before)})")
        try:
            claude_turn(client, USER_HI, session=sid)
        except openai.RateLimitError as e:
            check(e.code == "session_busy", f"code {e.code!r}")
        else:
            raise AssertionError("expected openai.RateLimitError while the session is busy")
    finally:
        stream.close()
    # The client went away: the server must notice and interrupt the turn,
    # and the session must take requests again soon after, on the process
    # that stayed warm.

    def next_turn():
        try:
            return claude_turn(client, USER_HI, session=sid)
        except openai.RateLimitError as e:
            if e.code != "session_busy":
                raise
            return None

    _, c, headers = wait_until(next_turn, 10, interval=0.1, what="the session to be free again")
    check(text_of(c).startswith("turns="), text_of(c))
    check(headers.get("x-claude-warm") == "true" and alive(kids[0]),
          f"the turn after the interrupted one: X-Claude-Warm {headers.get('x-claude-warm')!r}, "
          f"its process {kids[0]} {'alive' if alive(kids[0]) else 'gone'}")


def test_upstream_overloaded_502(ctx):
    started = time.monotonic()
    try:
        claude_turn(ctx.main.client(), [{"role": "user", "content": "FAIL-529"}])
    except openai.APIStatusError as e:
        check(e.status_code == 502 and e.code == "backend_error",
              f"{e.status_code} {e.code!r}: {e}")
        check("127.0.0.1" not in str(e) and str(ctx.anthropic.port) not in str(e),
              f"the message names the upstream's address: {e}")
    else:
        raise AssertionError("expected a 502")
    check(time.monotonic() - started < 30, "took too long")


def test_upstream_401_fails_fast(ctx):
    srv = Server(ctx, "badkey", anthropic_key=ANTHROPIC_BAD_KEY).start()
    try:
        started = time.monotonic()
        try:
            claude_turn(srv.client(), USER_HI)
        except openai.AuthenticationError as e:
            took = time.monotonic() - started
            check(e.code == "backend_auth_failed", f"code {e.code!r}: {e}")
            check(took < 10, f"took {took:.1f}s")
            check("sk-ant" not in str(e), "the error message shows a key")
        else:
            raise AssertionError("expected openai.AuthenticationError")
        # The same holds for a stream: the error comes before any content.
        started = time.monotonic()
        try:
            stream = srv.client().chat.completions.create(
                model="sonnet", messages=USER_HI, stream=True, extra_headers=CLAUDE)
            read_stream(stream)
        except openai.APIError as e:
            check(time.monotonic() - started < 10, "stream error was slow")
            check(getattr(e, "code", None) == "backend_auth_failed" or
                  "backend_auth_failed" in str(e), f"{type(e).__name__}: {e}")
        else:
            raise AssertionError("expected an error from the stream")
    finally:
        check(srv.stop() == 0, "server did not exit 0")


def test_oauth_token_only(ctx):
    srv = Server(ctx, "oauth", anthropic_key=None,
                 extra_env={"CLAUDE_CODE_OAUTH_TOKEN": OAUTH_TOKEN}).start()
    try:
        status, body = srv.health()
        check(status == 200 and body["checks"]["anthropic_key"] == "missing", body)
        _, c, _ = claude_turn(srv.client(), USER_HI)
        check("auth=bearer" in text_of(c), text_of(c))
        rec = ctx.anthropic.messages_records()[-1]
        check(rec["auth"] == "bearer" and "x-api-key" not in rec["header_names"], rec)
    finally:
        check(srv.stop() == 0, "server did not exit 0")


def test_restart_between_turns(ctx):
    srv = Server(ctx, "restart").start()
    try:
        sid, c, _ = claude_turn(srv.client(), USER_HI)
        check(text_of(c).startswith("turns=1 "), text_of(c))
        check(srv.stop() == 0, "first run did not exit 0")
        srv.start()  # same STATE_DIR and HOME, new port
        got, c, _ = claude_turn(srv.client(), USER_HI + [
            {"role": "assistant", "content": text_of(c)},
            {"role": "user", "content": "after the restart"}], session=sid)
        check(got == sid and text_of(c).startswith("turns=2 "), text_of(c))
    finally:
        srv.stop()


# --- warm sessions --------------------------------------------------------

# A server that keeps processes warm whatever the host's free memory, and
# takes a conversation's quick turns without its per-session rate limit.
WARM_ENV = {"WARM_SESSIONS": "4", "WARM_MIN_FREE_MB": "0", "RATE_LIMIT_PER_SESSION": "0"}


def warm_server(ctx, name, **env):
    """A server with WARM_ENV and its own CLAUDE_WORK_DIR, kept across restarts."""
    srv = Server(ctx, name, extra_env={**WARM_ENV, **env})
    srv.dirs["work"] = tempfile.mkdtemp(prefix=f"{name}-work-", dir=ctx.tmp)
    srv.extra_env["CLAUDE_WORK_DIR"] = srv.dirs["work"]
    return srv


def cli_children(ctx, srv):
    """The live claude processes the server has started (warm, spare or running)."""
    return sorted(p for p in children_of(srv.proc.pid) if proc_exe(p) == ctx.cli and alive(p))


def expect_history(text, history, what):
    """The fake API's echo ends with `msgs=N roles=uaua.. hist=..` of what the
    CLI sent it: `history` ((role, text), the last user message included) as
    separate messages, in order and unchanged."""
    want = fake_anthropic.history_echo(history)
    check(text.endswith(" " + want),
          f"{what}: expected the CLI to send {len(history)} messages ({want}), the fake "
          f"API answered: {text!r}")


def access_modes(srv):
    """(path, mode, line) of every request in the server's access logs (all
    its runs), read after it stopped."""
    out = []
    for path in srv.logs:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("event") == "request":
                    out.append((obj.get("path"), obj.get("mode"), obj))
    return out


def access_lines(srv, path="/v1/chat/completions"):
    """(session_id, warm) of every request to `path` in the server's access
    logs, read after it stopped."""
    return [(obj.get("session_id"), obj.get("warm"))
            for p, _, obj in access_modes(srv) if p == path]


def test_warm_sdk_conversation(ctx):
    """Six turns with the session header: the history reaches the API as
    separate messages every turn, turns 2-6 run on the first turn's process
    (warm), each answer reports its own turn's cost. After a restart (same
    STATE_DIR, CLAUDE_WORK_DIR and HOME) turn 7 runs cold, with the history."""
    srv = warm_server(ctx, "warm-sdk").start()
    try:
        client = srv.client()
        messages, history, sid, pid, costs = [], [], None, None, []
        for turn in range(1, 7):
            prompt = f"warm turn {turn}: the number is {turn * 7}"
            messages.append({"role": "user", "content": prompt})
            history.append(("user", prompt))
            if turn in (3, 5):  # streamed turns take the warm path too
                headers = dict(CLAUDE)
                if sid:
                    headers["X-Claude-Session-ID"] = sid
                raw = client.chat.completions.with_raw_response.create(
                    model="sonnet", messages=messages, stream=True, extra_headers=headers)
                text, finishes, _, _ = read_stream(raw.parse())
                text = text.strip()
                got, headers = raw.headers.get("x-claude-session-id"), raw.headers
                check(finishes == ["stop"], f"turn {turn}: finish reasons {finishes}")
            else:
                got, c, headers = claude_turn(client, messages, session=sid)
                text = text_of(c)
                cost = headers.get("x-claude-cost-usd")
                check(cost is not None and headers.get("x-claude-duration-ms", "").isdigit(),
                      f"turn {turn}: no cost or duration header: {dict(headers)}")
                costs.append(float(cost))
            warm = headers.get("x-claude-warm")
            if turn == 1:
                check(is_uuid4(got) and headers.get("x-claude-session-created") == "true",
                      dict(headers))
                check(warm == "false", f"turn 1: X-Claude-Warm {warm!r}")
                sid = got
            else:
                check(got == sid, f"turn {turn} answered for session {got}, not {sid}")
                check(warm == "true", f"turn {turn}: X-Claude-Warm {warm!r}")
            check(text.startswith(f"turns={turn} "), f"turn {turn}: {text}")
            expect_history(text, history, f"turn {turn}")
            messages.append({"role": "assistant", "content": text})
            history.append(("assistant", text))
            # One process serves the whole conversation.
            kids = wait_until(lambda: cli_children(ctx, srv), 5, what="the warm claude process")
            check(len(kids) == 1, f"turn {turn}: claude processes {kids}")
            if pid is None:
                pid = kids[0]
            check(kids == [pid], f"turn {turn}: the warm process {pid} was replaced by {kids}")
        # Each answer's cost is its own turn's, not the CLI's running total.
        check(all(0 < c < 1.5 * costs[0] for c in costs), f"costs per turn {costs}")
        status, body = srv.health()
        warm = body.get("checks", {}).get("warm", {})
        check(status == 200 and warm.get("processes") == 1 and warm.get("max") == 4
              and warm.get("rss_bytes", 0) > 0, f"/health: {body}")

        check(srv.stop() == 0, "first run did not exit 0")
        left = claude_processes_under(srv.dirs["work"]) + claude_processes_under(
            srv.dirs["state"])
        check(not left and not alive(pid), f"claude processes left after the drain: {left}")
        srv.start()  # same STATE_DIR, CLAUDE_WORK_DIR and HOME, new port
        prompt = "turn 7, after the restart"
        messages.append({"role": "user", "content": prompt})
        history.append(("user", prompt))
        got, c, headers = claude_turn(srv.client(), messages, session=sid)
        text = text_of(c)
        check(got == sid and headers.get("x-claude-warm") == "false",
              f"turn 7: session {got}, X-Claude-Warm {headers.get('x-claude-warm')!r}")
        check(text.startswith("turns=7 "), f"turn 7: {text}")
        expect_history(text, history, "turn 7 (cold, after the restart)")
    finally:
        srv.stop()
    seen = access_lines(srv)
    check([w for _, w in seen] == [False] + [True] * 5 + [False]
          and {s for s, _ in seen} == {sid}, f"access log (session, warm): {seen}")


def test_warm_langchain_whole_histories(ctx):
    """LangChain's ChatOpenAI resends the whole conversation each turn and
    never sends X-Claude-Session-ID: the server must find the session from
    the history, so every turn lands on one session, turns 2.. warm, and the
    CLI sees the history as separate turns, not one transcript message."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    sent, answered = [], []  # request and response headers, seen by httpx
    http_client = openai.DefaultHttpxClient(event_hooks={
        "request": [lambda rq: sent.append({k.lower(): v for k, v in rq.headers.items()})],
        "response": [lambda rs: answered.append({k.lower(): v for k, v in rs.headers.items()})],
    })
    srv = warm_server(ctx, "warm-lc").start()
    try:
        chat = ChatOpenAI(base_url=srv.url("/v1"), api_key=API_KEY, model="sonnet",
                          max_retries=0, timeout=60, default_headers=CLAUDE,
                          http_client=http_client)
        system = f"{MARKER}: you are a terse assistant."
        messages, history, sid = [SystemMessage(system)], [], None
        for turn in range(1, 6):
            prompt = f"langchain turn {turn}"
            messages.append(HumanMessage(prompt))
            history.append(("user", prompt))
            reply = chat.invoke(messages)
            text = reply.content
            check(len(sent) == turn and len(answered) == turn,
                  f"turn {turn}: {len(sent)} requests, {len(answered)} answers seen")
            check("x-claude-session-id" not in sent[-1] and sent[-1].get("x-claude-code") == "true",
                  f"turn {turn}: request headers {sent[-1]}")
            headers = answered[-1]
            got, warm = headers.get("x-claude-session-id"), headers.get("x-claude-warm")
            if turn == 1:
                check(is_uuid4(got) and headers.get("x-claude-session-created") == "true"
                      and warm == "false", f"turn 1: {headers}")
                sid = got
            else:
                check(got == sid, f"turn {turn} landed on session {got}, not {sid}: {headers}")
                check("x-claude-session-created" not in headers, f"turn {turn}: {headers}")
                check(warm == "true", f"turn {turn}: X-Claude-Warm {warm!r}")
            check(text.startswith(f"turns={turn} system=yes "), f"turn {turn}: {text}")
            expect_history(text, history, f"turn {turn}")
            messages.append(AIMessage(text))
            history.append(("assistant", text))
        kids = cli_children(ctx, srv)
        check(len(kids) == 1, f"expected one warm claude process, found {kids}")
    finally:
        srv.stop()
        http_client.close()
    seen = access_lines(srv)
    check([w for _, w in seen] == [False] + [True] * 4 and {s for s, _ in seen} == {sid},
          f"access log (session, warm): {seen}")


def claude_processes_under(path):
    """Live processes whose working directory lies under `path`."""
    found = []
    for pid in all_pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(path) and alive(pid):
            found.append(pid)
    return found


def test_sigterm_during_stream(ctx):
    srv = Server(ctx, "sigterm", extra_env={"SHUTDOWN_TIMEOUT_MS": "1000",
                                             "CLAUDE_KILL_GRACE_MS": "2000"}).start()
    client = srv.client(timeout=30)
    stream = client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "SLOW-STREAM please"}],
        stream=True, extra_headers=CLAUDE)
    try:
        got_text = False
        it = iter(stream)
        for chunk in it:
            if any(ch.delta.content for ch in chunk.choices):
                got_text = True
                break
        check(got_text, "no content before the stream ended")
        kids = [p for p in children_of(srv.proc.pid) if proc_exe(p) == ctx.cli]
        check(kids, f"no claude child of the server (children: {children_of(srv.proc.pid)})")
        groups = {proc_stat(p)[2] for p in kids if proc_stat(p)}
        srv.proc.send_signal(signal.SIGTERM)
        ended_with = "end"
        try:
            for _ in it:
                pass
        except openai.APIError as e:
            ended_with = f"{type(e).__name__}"
        code = srv.proc.wait(timeout=20)
        check(code == 0, f"server exited {code}")
        left = [p for p in kids if alive(p)] + [m for g in groups for m in members_of_group(g)]
        left += claude_processes_under(srv.dirs["state"])
        check(not left, f"claude processes left: {sorted(set(left))}")
        if os.environ.get("E2E_VERBOSE"):
            print(f"     stream ended with: {ended_with}; children were {kids}")
    finally:
        stream.close()
        srv.stop()


def test_env_drop_in(ctx):
    # An unchanged program: the SDK takes its base URL and key from the
    # environment, and the key is the server's client key.
    code = ("from openai import OpenAI\n"
            "c = OpenAI(max_retries=0).chat.completions.create(model='gpt-4o-mini', "
            "messages=[{'role': 'user', 'content': 'hi'}])\n"
            "print(c.choices[0].message.content)\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": ctx.tmp,
           "OPENAI_BASE_URL": ctx.main.url("/v1"), "OPENAI_API_KEY": API_KEY}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    check(out.returncode == 0, f"python exited {out.returncode}: {out.stderr[-800:]}")
    check(out.stdout.strip() == "passthrough model=gpt-4o-mini messages=1 auth=bearer",
          out.stdout)
    rec = ctx.openai.chat_records()[-1]
    check(rec["key_ok"], "the upstream did not get the server's OpenAI key")


def langchain_chat(ctx, **kw):
    return ChatOpenAI(base_url=ctx.main.url("/v1"), api_key=API_KEY, max_retries=0,
                      timeout=60, **kw)


def test_langchain_passthrough(ctx):
    reply = langchain_chat(ctx, model="gpt-4o-mini").invoke("hi")
    check(reply.content == "passthrough model=gpt-4o-mini messages=1 auth=bearer",
          reply.content)


def test_langchain_claude_session(ctx):
    # include_response_headers puts the answer's headers in response_metadata;
    # the session id goes back in extra_headers.
    chat = langchain_chat(ctx, model="sonnet", default_headers=CLAUDE,
                          include_response_headers=True)
    first = chat.invoke("My name is Ada.")
    headers = first.response_metadata["headers"]
    sid = headers.get("x-claude-session-id")
    check(is_uuid4(sid) and headers.get("x-claude-session-created") == "true", headers)
    check("turns=1 " in first.content, first.content)
    second = chat.invoke("What is my name?", extra_headers={"X-Claude-Session-ID": sid})
    headers = second.response_metadata["headers"]
    check(headers.get("x-claude-session-id") == sid, f"answered for {headers}")
    check("x-claude-session-created" not in headers, headers)
    check("turns=2 " in second.content, second.content)


def test_oversize_bodies_get_their_413(ctx):
    """A body over the limit is refused without being read; the SDKs must
    still read the 413 (not a reset connection) while they are sending."""
    # The 1 MiB limit of earlier releases, so the sizes below are over it.
    srv = Server(ctx, "oversize",
                 extra_env={"RATE_LIMIT_PER_IP": "0", "MAX_BODY_BYTES": "1048576"}).start()
    try:
        oversize_bodies(ctx, srv)
    finally:
        srv.stop()


def oversize_bodies(ctx, srv):
    client = srv.client()
    for size, tries in ((1_200_000, 20), (20_000_000, 3)):
        for _ in range(tries):
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * size}])
            except openai.APIStatusError as e:
                check(e.status_code == 413 and e.code == "payload_too_large", f"{size}: {e}")
            else:
                raise AssertionError(f"{size}: expected a 413")
    result = run_node(ctx, "node_oversize.mjs", srv)
    check(result == {"1200000": {"413": 20}, "5000000": {"413": 5}}, result)


def run_node(ctx, script, srv):
    """Runs one of the Node scripts beside this file against `srv` and
    returns the JSON of its last line."""
    node = shutil.which("node")
    check(node, "node not on PATH")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": ctx.tmp,
           "E2E_BASE_URL": srv.url("/v1"), "E2E_API_KEY": API_KEY,
           "E2E_NODE_MODULES": os.path.join(NODE_DIR, "node_modules")}
    out = subprocess.run([node, script], env=env, capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, f"node exited {out.returncode}: {out.stderr[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_node_sdk_stream(ctx):
    result = run_node(ctx, "node_stream.mjs", ctx.main)
    check(result["text"].startswith("turns=1 system=no model=claude-sonnet"), result)
    check(result["finish"] == ["stop"] and is_uuid4(result["sessionId"]), result)


# --- the relay of every /v1/ route, and Claude Code mode by base URL --------
#
# The fake upstream (fake_openai.py) answers the Responses API, embeddings,
# models/{id}, files (multipart, counted as it arrives), audio speech (binary)
# and DELETEs, and records each request (method, path, query, header names,
# the key's fingerprint, never the key). The relay tests share one server
# without the per-IP limit (they make many quick requests).

CLAUDE_MODELS = ["claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5"]
CLIENT_OPENAI_KEY = "sk-e2e-client-openai-key"  # sent as X-OpenAI-API-Key
SECOND_API_KEY = "sk-cca-e2e-second-client-key-42"
RESPONSES_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
                    "response.content_part.added"]
RESPONSES_END = ["response.output_text.done", "response.content_part.done",
                 "response.output_item.done", "response.completed"]


def relay_server(ctx):
    """The shared server of the relay tests (started by the first of them)."""
    if getattr(ctx, "relay", None) is None or ctx.relay.proc.poll() is not None:
        ctx.relay = Server(ctx, "relay", extra_env={
            "RATE_LIMIT_PER_IP": "0", "RATE_LIMIT_PER_SESSION": "0",
            "WARM_MIN_FREE_MB": "0"}).start()
    return ctx.relay


def relayed(raw):
    check(raw.headers.get("x-backend-mode") == "openai-passthrough",
          f"X-Backend-Mode {raw.headers.get('x-backend-mode')!r}: {dict(raw.headers)}")


def one_record(ctx, since, method, path):
    """The one request the fake saw since `since`, which must be `method path`."""
    recs = ctx.openai.records_since(since)
    check(len(recs) == 1 and recs[0]["method"] == method and recs[0]["path"] == path,
          f"expected the fake to see {method} {path} once, it saw "
          f"{[(r['method'], r['path'], r['query']) for r in recs]}")
    return recs[0]


def test_relay_responses(ctx):
    """responses.create not streamed and streamed (stream=True and the SDK's
    responses.stream helper): the text arrives, the events come in the
    Responses order, the fake saw POST /v1/responses with the SDK's body."""
    client = relay_server(ctx).client()
    since = ctx.openai.count()
    raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input="Say hello",
                                                    instructions="Be brief.")
    relayed(raw)
    r = raw.parse()
    check(r.output_text == "responses model=gpt-4o-mini input=Say hello", r.output_text)
    check(r.status == "completed" and r.usage.total_tokens > 0, r)
    check(raw.headers.get("openai-version") and raw.headers.get("x-ratelimit-remaining-requests"),
          f"the upstream's openai-*/x-ratelimit-* headers are missing: {dict(raw.headers)}")
    rec = one_record(ctx, since, "POST", "/v1/responses")
    check(rec["body"] == {"model": "gpt-4o-mini", "input": "Say hello",
                          "instructions": "Be brief."}, f"the fake got {rec['body']}")
    check(rec["key_ok"] and rec["headers"].get("content-type", "").startswith("application/json"),
          rec)

    since = ctx.openai.count()
    events = list(client.responses.create(model="gpt-4o-mini", stream=True,
                                          input=[{"role": "user", "content": "Stream it"}]))
    types = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    want = "responses model=gpt-4o-mini input=Stream it"
    check(types == RESPONSES_EVENTS + ["response.output_text.delta"] * len(deltas)
          + RESPONSES_END and len(deltas) > 1, f"event types {types}")
    check("".join(deltas) == want, deltas)
    check(events[-1].response.output_text == want, events[-1])
    rec = one_record(ctx, since, "POST", "/v1/responses")
    check(rec["stream"] and rec["body"]["input"] == [{"role": "user", "content": "Stream it"}],
          rec["body"])

    with client.responses.stream(model="gpt-4o-mini", input="With the helper") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    check(text == final.output_text == "responses model=gpt-4o-mini input=With the helper",
          (text, final.output_text))


def test_relay_responses_sse_as_sent(ctx):
    """The Responses SSE comes back byte for byte as the upstream sent it (no
    [DONE] added) and event by event: the first delta arrives while the
    upstream still pauses before the rest."""
    srv = relay_server(ctx)
    since = ctx.openai.count()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        body = json.dumps({"model": "gpt-4o-mini", "input": "PAUSE then go", "stream": True})
        conn.request("POST", "/v1/responses", body=body, headers={
            "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json",
            "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise AssertionError(f"status {resp.status}: {resp.read()[:300]!r}")
        check(resp.getheader("content-type", "").startswith("text/event-stream"),
              resp.getheaders())
        check(resp.getheader("x-backend-mode") == "openai-passthrough", resp.getheaders())
        got, first_delta = b"", None
        started = time.monotonic()
        while True:
            line = resp.readline()
            if not line:
                break
            got += line
            if first_delta is None and line.startswith(b"event: response.output_text.delta"):
                first_delta = time.monotonic() - started
        took = time.monotonic() - started
    finally:
        conn.close()
    rec = one_record(ctx, since, "POST", "/v1/responses")
    check(got == rec["sse"], f"the stream differs from what the upstream sent: got "
          f"{len(got)} bytes, sent {len(rec['sse'])}; got ends {got[-200:]!r}")
    check(b"[DONE]" not in got, "a [DONE] was added")
    check(first_delta is not None and took - first_delta >= fake_openai.PAUSE_S * 0.6,
          f"the first delta came {first_delta}s in, the end {took:.2f}s in: not flushed per "
          f"event")


def test_relay_embeddings(ctx):
    """embeddings.create (the SDK asks for base64 and decodes it) and with
    encoding_format=float: the fake's vectors come back, with the upstream's
    rate-limit headers."""
    client = relay_server(ctx).client()
    since = ctx.openai.count()
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small",
                                                     input=["alpha", "beta"])
    relayed(raw)
    e = raw.parse()
    check([d.embedding for d in e.data] == [fake_openai.embedding_vector("alpha"),
                                            fake_openai.embedding_vector("beta")], e.data)
    check(e.model == "text-embedding-3-small" and e.usage.total_tokens == 2, e)
    check(raw.headers.get("x-ratelimit-remaining-requests") == "499", dict(raw.headers))
    rec = one_record(ctx, since, "POST", "/v1/embeddings")
    check(rec["body"].get("encoding_format") == "base64"
          and rec["body"].get("input") == ["alpha", "beta"], rec["body"])
    e = client.embeddings.create(model="text-embedding-3-small", input="gamma",
                                 encoding_format="float")
    check(e.data[0].embedding == fake_openai.embedding_vector("gamma"), e.data)


def test_relay_models_retrieve(ctx):
    """models.retrieve of an OpenAI id is relayed (the fake saw GET
    /v1/models/gpt-4o, with the query string); a Claude id is answered by
    the server itself (the fake saw nothing); the upstream's 404 comes back."""
    client = relay_server(ctx).client()
    since = ctx.openai.count()
    raw = client.models.with_raw_response.retrieve("gpt-4o", extra_query={"e2e": "q 1"})
    relayed(raw)
    m = raw.parse()
    check((m.id, m.owned_by) == ("gpt-4o", "fake-openai"), m)
    rec = one_record(ctx, since, "GET", "/v1/models/gpt-4o")
    check(rec["query"] == "e2e=q+1", f"query {rec['query']!r}")
    since = ctx.openai.count()
    for model in CLAUDE_MODELS:
        m = client.models.retrieve(model)
        check(m.model_dump(exclude_none=True) == {"id": model, "object": "model",
                                                  "created": 1700000000,
                                                  "owned_by": "anthropic"}, m)
    check(ctx.openai.records_since(since) == [],
          f"a Claude id reached the upstream: {ctx.openai.records_since(since)}")
    try:
        client.models.retrieve("missing-model")
    except openai.NotFoundError as e:
        check(e.code == "model_not_found", f"code {e.code!r}")
    else:
        raise AssertionError("expected openai.NotFoundError for the upstream's 404")
    one_record(ctx, since, "GET", "/v1/models/missing-model")


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_relay_file_upload_rss(ctx):
    """files.create with a 25 MB file (multipart): the fake receives all of it
    (size and sha256) and answers bytes=25 MB, while the server's RSS,
    sampled every 50 ms during the upload, stays within 8 MB of its value
    before (the body is streamed, not buffered)."""
    import hashlib
    import threading
    srv = Server(ctx, "upload", extra_env={"RATE_LIMIT_PER_IP": "0"}).start()
    try:
        client = srv.client()
        warm = client.files.create(file=("warm.jsonl", b'{"x": 1}\n' * 100_000),
                                   purpose="batch")
        check(warm.bytes == 900_000, warm)
        data = os.urandom(25 * 1024 * 1024)
        time.sleep(0.2)
        before = vm_rss(srv.proc.pid)
        samples, done = [], threading.Event()

        def sample():
            while not done.is_set():
                samples.append(vm_rss(srv.proc.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        since = ctx.openai.count()
        sampler.start()
        try:
            raw = client.files.with_raw_response.create(file=("big.bin", data),
                                                        purpose="user_data")
        finally:
            done.set()
            sampler.join()
        relayed(raw)
        f = raw.parse()
        check(f.bytes == len(data) and f.filename == "big.bin" and f.purpose == "user_data", f)
        rec = one_record(ctx, since, "POST", "/v1/files")
        check(rec["file_bytes"] == len(data)
              and rec["file_sha256"] == hashlib.sha256(data).hexdigest()
              and rec["multipart_complete"], {k: rec.get(k) for k in (
                  "file_bytes", "body_bytes", "multipart_complete", "headers")})
        check(rec["headers"].get("content-type", "").startswith("multipart/form-data"),
              rec["headers"])
        check(len(samples) >= 4, f"only {len(samples)} RSS samples during the upload")
        grew = max(samples) - before
        check(grew <= 8 * 1024 * 1024,
              f"RSS grew by {grew / 1048576:.1f} MB during a 25 MB upload "
              f"(before {before / 1048576:.1f} MB, samples in MB "
              f"{[round(s / 1048576, 1) for s in samples]})")
    finally:
        srv.stop()


def test_relay_audio_speech(ctx):
    """audio.speech.create: the exact bytes (binary) with Content-Type
    audio/mpeg and the upstream's Content-Disposition, whole and streamed."""
    client = relay_server(ctx).client()
    want = fake_openai.speech_bytes("Hello from the relay", "alloy")
    since = ctx.openai.count()
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy",
                                                       input="Hello from the relay")
    relayed(raw)
    check(raw.content == want, f"{len(raw.content)} bytes, not the {len(want)} sent")
    check(raw.headers.get("content-type") == "audio/mpeg", dict(raw.headers))
    check(raw.headers.get("content-disposition") == 'attachment; filename="speech.mp3"',
          dict(raw.headers))
    one_record(ctx, since, "POST", "/v1/audio/speech")
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="Hello from the relay") as resp:
        got = b"".join(resp.iter_bytes())
    check(got == want, f"streamed: {len(got)} bytes")


def test_relay_delete(ctx):
    """files.delete and models.delete: the DELETE reaches the fake and its
    answer comes back."""
    client = relay_server(ctx).client()
    since = ctx.openai.count()
    raw = client.files.with_raw_response.delete("file-e2e123")
    relayed(raw)
    d = raw.parse()
    check(d.id == "file-e2e123" and d.deleted, d)
    one_record(ctx, since, "DELETE", "/v1/files/file-e2e123")
    since = ctx.openai.count()
    d = client.models.delete("ft-e2e-model")
    check(d.id == "ft-e2e-model" and d.deleted, d)
    one_record(ctx, since, "DELETE", "/v1/models/ft-e2e-model")


def test_relay_key_rules(ctx):
    """On routes other than chat (a server with API_KEYS): the client's
    X-OpenAI-API-Key goes upstream as the bearer key, else the server's
    OPENAI_API_KEY; the client's own key (API_KEYS) never does; the OpenAI-*
    headers travel, X-OpenAI-API-Key and other headers do not; a request
    without a server key gets 401 and nothing reaches the fake; the
    upstream's 401 comes back."""
    fp = fake_openai.key_fingerprint
    srv = Server(ctx, "relay-keys", extra_env={
        "API_KEY": "", "API_KEYS": f"{API_KEY},{SECOND_API_KEY}",
        "RATE_LIMIT_PER_IP": "0"}).start()
    start = ctx.openai.count()
    try:
        client = srv.client(api_key=SECOND_API_KEY)
        since = ctx.openai.count()
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="keys",
            extra_headers={"X-OpenAI-API-Key": CLIENT_OPENAI_KEY,
                           "OpenAI-Organization": "org-e2e", "OpenAI-Project": "proj_e2e",
                           "OpenAI-Beta": "assistants=v2", "X-E2E-Private": "not-for-upstream"})
        relayed(raw)
        rec = one_record(ctx, since, "POST", "/v1/embeddings")
        check(rec["key_fp"] == fp(CLIENT_OPENAI_KEY),
              f"with X-OpenAI-API-Key the fake saw key {rec['key_fp']}, not the client's "
              f"{fp(CLIENT_OPENAI_KEY)} (the server's is {fp(OPENAI_KEY)})")
        check({k: rec["headers"].get(k) for k in ("openai-organization", "openai-project",
                                                   "openai-beta")} ==
              {"openai-organization": "org-e2e", "openai-project": "proj_e2e",
               "openai-beta": "assistants=v2"}, f"headers upstream: {rec['headers']}")
        check("x-openai-api-key" not in rec["header_names"]
              and "x-e2e-private" not in rec["header_names"],
              f"header names upstream: {rec['header_names']}")

        since = ctx.openai.count()
        client.files.delete("file-keys")
        rec = one_record(ctx, since, "DELETE", "/v1/files/file-keys")
        check(rec["key_fp"] == fp(OPENAI_KEY),
              f"without X-OpenAI-API-Key the fake saw {rec['key_fp']}, not the server's "
              f"{fp(OPENAI_KEY)}")
        r = client.responses.create(model="gpt-4o-mini", input="k",
                                    extra_headers={"X-OpenAI-API-Key": CLIENT_OPENAI_KEY})
        check(r.output_text == "responses model=gpt-4o-mini input=k", r.output_text)
        check(ctx.openai.records_since(since)[-1]["key_fp"] == fp(CLIENT_OPENAI_KEY),
              ctx.openai.records_since(since)[-1])

        try:
            client.embeddings.create(model="text-embedding-3-small", input="bad",
                                     extra_headers={"X-OpenAI-API-Key": "sk-bad-e2e-client"})
        except openai.AuthenticationError as e:
            check(e.code == "invalid_api_key", f"code {e.code!r}: {e}")
        else:
            raise AssertionError("expected the upstream's 401")

        since = ctx.openai.count()
        try:
            srv.client(api_key="sk-cca-e2e-not-a-client-key").files.delete("file-nokey")
        except openai.AuthenticationError:
            pass
        else:
            raise AssertionError("expected 401 with a key that is not in API_KEYS")
        status, _ = raw_request(srv, "DELETE", "/v1/files/file-nokey", auth=None)
        check(status == 401, f"no key: status {status}")
        check(ctx.openai.records_since(since) == [],
              f"unauthorised requests reached the upstream: {ctx.openai.records_since(since)}")
        seen = {r["key_fp"] for r in ctx.openai.records_since(start)}
        check(not seen & {fp(API_KEY), fp(SECOND_API_KEY)},
              "the server's own client key reached the upstream")
    finally:
        srv.stop()


def raw_request(srv, method, path, body=b"", auth=API_KEY):
    """One request with the path sent exactly as given (http.client does not
    normalise it): (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        if auth:
            conn.putheader("Authorization", f"Bearer {auth}")
        if body:
            conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


TRAVERSALS = ["/v1/../health", "/v1/./models", "/v1/files/%2e%2e/x", "/v1/a%2Fb",
              "/v1//files", "/v1/files/..%2fx", "/v1/files/%2E%2E/x", "/v1/models/..",
              "/v1/files/x/.", "/v1/a%5cb", "/v1/a\\b", "/v1/..%5Cx", "/v1/files/%2e"]


def test_relay_path_traversal(ctx):
    """Raw requests (no SDK normalises them) with `.`/`..` segments, empty
    segments, backslashes and encoded dots/slashes/backslashes: each is 400
    invalid_path and none reaches the fake."""
    srv = relay_server(ctx)
    since = ctx.openai.count()
    bad = []
    for method, path in [("GET", p) for p in TRAVERSALS] + [
            ("POST", "/v1/files/../chat/completions"), ("DELETE", "/v1/files/%2e%2e%2fmodels")]:
        body = b'{"model":"gpt-4o-mini","messages":[]}' if method == "POST" else b""
        status, data = raw_request(srv, method, path, body=body)
        try:
            code = json.loads(data)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        if status != 400 or code != "invalid_path":
            bad.append(f"{method} {path}: {status} {data[:120]!r}")
    check(not bad, "not refused as invalid_path:\n  " + "\n  ".join(bad))
    seen = ctx.openai.records_since(since)
    check(not seen, f"the upstream saw {[(r['method'], r['path']) for r in seen]}")


def claude_base_client(srv, **kw):
    """An SDK client that can set a base URL and a key, nothing more."""
    return openai.OpenAI(base_url=srv.url("/claude/v1"), api_key=API_KEY, max_retries=0,
                         timeout=60, **kw)


def test_claude_base_url_chat(ctx):
    """base_url .../claude/v1 and no X-Claude-Code header: the real claude CLI
    answers (X-Backend-Mode claude-code, a new session), the session header
    continues it, a stream works too, and nothing goes to OpenAI."""
    srv = relay_server(ctx)
    sent = []
    http_client = openai.DefaultHttpxClient(event_hooks={
        "request": [lambda rq: sent.append({k.lower() for k in rq.headers.keys()})]})
    client = claude_base_client(srv, http_client=http_client)
    since = ctx.openai.count()
    try:
        raw = client.chat.completions.with_raw_response.create(model="sonnet",
                                                               messages=USER_HI)
        c = raw.parse()
        check(raw.headers.get("x-backend-mode") == "claude-code", dict(raw.headers))
        sid = raw.headers.get("x-claude-session-id")
        check(is_uuid4(sid) and raw.headers.get("x-claude-session-created") == "true",
              dict(raw.headers))
        check(text_of(c).startswith("turns=1 system=no model=claude-sonnet"), text_of(c))
        check(ctx.anthropic.messages_records()[-1]["session_header"] == sid,
              "the CLI ran under another session id")
        raw = client.chat.completions.with_raw_response.create(
            model="sonnet", extra_headers={"X-Claude-Session-ID": sid},
            messages=USER_HI + [{"role": "assistant", "content": text_of(c)},
                                {"role": "user", "content": "again"}])
        check(raw.headers.get("x-claude-session-id") == sid, dict(raw.headers))
        check(text_of(raw.parse()).startswith("turns=2 "), text_of(raw.parse()))
        text, finishes, _, _ = read_stream(client.chat.completions.create(
            model="claude-haiku-4-5", messages=USER_HI, stream=True))
        check(text.startswith("turns=1 system=no model=claude-haiku") and finishes == ["stop"],
              (text, finishes))
    finally:
        http_client.close()
    check(all("x-claude-code" not in h for h in sent), f"request headers {sent}")
    check(ctx.openai.records_since(since) == [],
          f"OpenAI saw {[(r['method'], r['path']) for r in ctx.openai.records_since(since)]}")


def test_claude_base_url_models(ctx):
    """models.list() under /claude/v1 lists the Claude models; retrieve
    answers a Claude id and 404 model_not_found for any other; nothing goes
    to OpenAI."""
    client = claude_base_client(relay_server(ctx))
    since = ctx.openai.count()
    ids = [m.id for m in client.models.list()]
    check(ids == CLAUDE_MODELS, f"models {ids}")
    m = client.models.retrieve("claude-haiku-4-5")
    check((m.id, m.owned_by) == ("claude-haiku-4-5", "anthropic"), m)
    try:
        client.models.retrieve("gpt-4o")
    except openai.NotFoundError as e:
        check(e.code == "model_not_found", f"code {e.code!r}")
    else:
        raise AssertionError("expected openai.NotFoundError for gpt-4o under /claude/v1")
    check(ctx.openai.records_since(since) == [],
          f"OpenAI saw {[(r['method'], r['path']) for r in ctx.openai.records_since(since)]}")


# --- tools, images, structured output ---------------------------------------
#
# The fake API (fake_anthropic.py) answers "weather in <City>" / "time in
# <Zone>" with tool calls when the CLI offers it the client's functions
# (mcp__client__<name>), quotes tool results back as "The tools said: a | b",
# reports images as "images=N media=...", and fills StructuredOutput from the
# schema (strings: the prompt's first capitalized word after its first word,
# numbers 21, booleans true).

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a time zone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                   "required": ["zone"]}}}
TOOL_ID_RE = re.compile(r"^toolu_[A-Za-z0-9]+$")


def weather(city):
    """What the tests' get_weather returns."""
    return f"sunny 21C in {city}"


def tool_server(ctx, name):
    """A server of its own for a tool test: warm processes, no per-session rate
    limit (a tool loop is quick turns), its own CLAUDE_WORK_DIR."""
    return warm_server(ctx, name)


def fake_records_since(ctx, count):
    return ctx.anthropic.messages_records()[count:]


def check_tool_call(tc, name, args, what):
    """One OpenAI tool call (SDK object or dict): id, type, name, arguments."""
    if not isinstance(tc, dict):
        tc = tc.model_dump()
    check(TOOL_ID_RE.match(tc.get("id") or ""), f"{what}: tool call id {tc.get('id')!r}")
    check(tc.get("type") == "function", f"{what}: type {tc.get('type')!r}")
    fn = tc.get("function") or {}
    check(fn.get("name") == name, f"{what}: function name {fn.get('name')!r}, not {name!r}")
    try:
        got = json.loads(fn.get("arguments") or "")
    except ValueError:
        raise AssertionError(f"{what}: arguments are not JSON: {fn.get('arguments')!r}")
    check(got == args, f"{what}: arguments {got}, expected {args}")




def read_tool_stream(stream):
    """Joins a chat stream that may call tools: (text, tool calls as dicts in
    index order, finish reasons). Checks the deltas on the way: each index's
    first delta names the id, type and function, later ones only add
    argument pieces."""
    parts, finishes, calls = [], [], {}
    for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for d in choice.delta.tool_calls or []:
                check(d.index is not None, f"a tool call delta without an index: {d}")
                fn = d.function
                if d.index not in calls:
                    check(d.id and fn and fn.name, f"index {d.index}: the first delta has no "
                          f"id or name: {d}")
                    check(d.type in (None, "function"), f"index {d.index}: type {d.type!r}")
                    calls[d.index] = {"id": d.id, "type": "function",
                                      "function": {"name": fn.name, "arguments": ""},
                                      "pieces": 0}
                else:
                    check(d.id in (None, calls[d.index]["id"]),
                          f"index {d.index}: id changed to {d.id!r}")
                    check(fn is None or fn.name in (None, calls[d.index]["function"]["name"]),
                          f"index {d.index}: name changed: {d}")
                if fn and fn.arguments:
                    calls[d.index]["function"]["arguments"] += fn.arguments
                    calls[d.index]["pieces"] += 1
    check(sorted(calls) == list(range(len(calls))), f"tool call indexes {sorted(calls)}")
    return "".join(parts), [calls[i] for i in sorted(calls)], finishes


def check_before_calls(content, what):
    """The text before the calls, when the answer carries it: "Let me check."."""
    check((content or "").strip() in ("", "Let me check."),
          f"{what}: content beside the tool calls {content!r}")


def check_one_cli(ctx, srv, pid, what):
    """The server runs exactly one claude process, `pid` when given; returns it."""
    kids = wait_until(lambda: cli_children(ctx, srv), 5, what="the claude process")
    check(len(kids) == 1, f"{what}: claude processes {kids}")
    check(pid is None or kids == [pid], f"{what}: the process {pid} was replaced by {kids}")
    return kids[0]


def test_tools_sdk_loop(ctx):
    """The OpenAI SDK's whole tool loop, not streamed: the call comes back as
    tool_calls (finish_reason tool_calls); the follow-up sends the history, the
    assistant's tool_calls and the tool result WITHOUT X-Claude-Session-ID, and
    lands on the same session and the same CLI process, which answers with the
    result."""
    srv = tool_server(ctx, "tools-sdk").start()
    seen = len(ctx.anthropic.messages_records())
    try:
        client = srv.client()
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        sid, c, headers = claude_turn(client, messages, tools=[WEATHER_TOOL])
        check(is_uuid4(sid) and headers.get("x-claude-session-created") == "true",
              dict(headers))
        choice = c.choices[0]
        check(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}")
        calls = choice.message.tool_calls or []
        check(len(calls) == 1, f"tool calls {calls}")
        check_tool_call(calls[0], "get_weather", {"city": "Paris"}, "the call")
        check_before_calls(choice.message.content, "the call")
        pid = check_one_cli(ctx, srv, None, "while the call is pending")

        messages += [assistant_turn(choice.message),
                     {"role": "tool", "tool_call_id": calls[0].id, "content": weather("Paris")}]
        got, c, headers = claude_turn(client, messages, tools=[WEATHER_TOOL])  # no session id
        check(got == sid, f"the tool result landed on session {got}, not {sid}")
        check("x-claude-session-created" not in headers, dict(headers))
        check(c.choices[0].finish_reason == "stop", f"finish_reason {c.choices[0].finish_reason}")
        check(not c.choices[0].message.tool_calls, c.choices[0].message)
        check(text_of(c) == f"The tools said: {weather('Paris')}", text_of(c))
        check_one_cli(ctx, srv, pid, "after the result")
        recs = fake_records_since(ctx, seen)
        check([r["reply"] for r in recs] == ["tools", "text"]
              and "mcp__client__get_weather" in recs[0]["tool_names"]
              and recs[1]["tool_results"] == 1, f"what the fake API saw: {recs}")
        check({r["session_header"] for r in recs} == {sid}, "the CLI changed sessions")
    finally:
        srv.stop()
    check({s for s, _ in access_lines(srv)} == {sid}, f"access log: {access_lines(srv)}")


def test_tools_change_between_turns(ctx):
    """A client that offers other functions on a later turn keeps its warm CLI:
    the bridge tells the CLI of the new list (MCP tools/list_changed), the CLI
    lists again before the turn is written, and the model calls the new one."""
    srv = tool_server(ctx, "tools-change").start()
    try:
        client = srv.client()
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        sid, c, _ = claude_turn(client, messages, tools=[WEATHER_TOOL])
        calls = c.choices[0].message.tool_calls or []
        check(len(calls) == 1, f"tool calls {calls}")
        pid = check_one_cli(ctx, srv, None, "after the first call")
        messages += [assistant_turn(c.choices[0].message),
                     {"role": "tool", "tool_call_id": calls[0].id, "content": weather("Paris")}]
        _, c, _ = claude_turn(client, messages, tools=[WEATHER_TOOL])
        messages += [{"role": "assistant", "content": text_of(c)},
                     {"role": "user", "content": "And the time in Tokyo?"}]
        got, c, headers = claude_turn(client, messages, tools=[WEATHER_TOOL, TIME_TOOL])
        check(got == sid, f"session {got}, not {sid}")
        check(headers.get("x-claude-warm") == "true", dict(headers))
        calls = c.choices[0].message.tool_calls or []
        check(len(calls) == 1, f"tool calls {calls}")
        check_tool_call(calls[0], "get_time", {"zone": "Tokyo"}, "the new function")
        check_one_cli(ctx, srv, pid, "after the tools changed")
    finally:
        srv.stop()


def test_tools_sdk_stream(ctx):
    """The same loop streamed: the call arrives as tool_call deltas (index, id,
    type, name, then argument pieces) and a finish chunk "tool_calls"; the
    result goes back streamed too, without the session header."""
    srv = tool_server(ctx, "tools-stream").start()
    try:
        client = srv.client()
        messages = [{"role": "user", "content": "And the weather in Rome?"}]
        raw = client.chat.completions.with_raw_response.create(
            model="sonnet", messages=messages, tools=[WEATHER_TOOL], stream=True,
            extra_headers=CLAUDE)
        sid = raw.headers.get("x-claude-session-id")
        check(is_uuid4(sid), dict(raw.headers))
        text, calls, finishes = read_tool_stream(raw.parse())
        check(finishes == ["tool_calls"], f"finish reasons {finishes}")
        check(len(calls) == 1, f"tool calls {calls}")
        check_tool_call(calls[0], "get_weather", {"city": "Rome"}, "the streamed call")
        check_before_calls(text, "the streamed call")
        pid = check_one_cli(ctx, srv, None, "while the call is pending")

        messages += [{"role": "assistant", "content": text or None, "tool_calls": [
                         {k: calls[0][k] for k in ("id", "type", "function")}]},
                     {"role": "tool", "tool_call_id": calls[0]["id"],
                      "content": weather("Rome")}]
        raw = client.chat.completions.with_raw_response.create(
            model="sonnet", messages=messages, tools=[WEATHER_TOOL], stream=True,
            extra_headers=CLAUDE)
        check(raw.headers.get("x-claude-session-id") == sid, dict(raw.headers))
        text, calls, finishes = read_tool_stream(raw.parse())
        check(finishes == ["stop"] and not calls, f"finish reasons {finishes}, calls {calls}")
        check(text.strip() == f"The tools said: {weather('Rome')}", text)
        check_one_cli(ctx, srv, pid, "after the result")
    finally:
        srv.stop()


def test_tools_parallel_calls(ctx):
    """Two cities: two tool_calls in one answer (distinct ids); both results go
    back in one request and the final text quotes both. A second round in the
    same conversation, streamed, asks for two other calls (indexes 0 and 1)."""
    srv = tool_server(ctx, "tools-parallel").start()
    try:
        client = srv.client()
        tools = [WEATHER_TOOL, TIME_TOOL]
        messages = [{"role": "user", "content": "What is the weather in Paris and Berlin?"}]
        sid, c, _ = claude_turn(client, messages, tools=tools)
        choice = c.choices[0]
        check(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}")
        calls = choice.message.tool_calls or []
        check(len(calls) == 2, f"expected two tool calls in one answer: {calls}")
        check(calls[0].id != calls[1].id, f"the calls share an id: {calls}")
        for tc, city in zip(calls, ("Paris", "Berlin")):
            check_tool_call(tc, "get_weather", {"city": city}, f"the call for {city}")
        messages.append(assistant_turn(choice.message))
        messages += [{"role": "tool", "tool_call_id": tc.id,
                      "content": weather(json.loads(tc.function.arguments)["city"])}
                     for tc in calls]
        got, c, _ = claude_turn(client, messages, tools=tools)
        text = text_of(c)
        check(got == sid and c.choices[0].finish_reason == "stop", (got, sid, c))
        check(text.startswith("The tools said: ") and weather("Paris") in text
              and weather("Berlin") in text, text)

        # Round two, streamed, in the same conversation (still no session header).
        messages += [{"role": "assistant", "content": text},
                     {"role": "user", "content": "Now the time in Tokyo and Lima"}]
        raw = client.chat.completions.with_raw_response.create(
            model="sonnet", messages=messages, tools=tools, stream=True, extra_headers=CLAUDE)
        check(raw.headers.get("x-claude-session-id") == sid, dict(raw.headers))
        streamed, calls, finishes = read_tool_stream(raw.parse())
        check(finishes == ["tool_calls"] and len(calls) == 2, f"{finishes}: {calls}")
        for tc, zone in zip(calls, ("Tokyo", "Lima")):
            check_tool_call(tc, "get_time", {"zone": zone}, f"the call for {zone}")
        messages.append({"role": "assistant", "content": streamed or None, "tool_calls": [
            {k: tc[k] for k in ("id", "type", "function")} for tc in calls]})
        messages += [{"role": "tool", "tool_call_id": tc["id"], "content": f"noon in {zone}"}
                     for tc, zone in zip(calls, ("Tokyo", "Lima"))]
        got, c, _ = claude_turn(client, messages, tools=tools)
        check(got == sid and "noon in Tokyo" in text_of(c) and "noon in Lima" in text_of(c),
              text_of(c))
        check_one_cli(ctx, srv, None, "after two rounds")
    finally:
        srv.stop()


def tiny_png(width=2, height=2):
    """A real PNG image (red pixels), built here."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_image_data_url(ctx):
    """An image_url part with a data: URL reaches the model as an image (the
    fake API says images=1 media=image/png); an http(s) URL is either taken or
    refused with 400 unsupported_content."""
    srv = tool_server(ctx, "image").start()
    try:
        client = srv.client()
        url = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
        messages = [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": url}}]}]
        _, c, _ = claude_turn(client, messages)
        check("images=1 media=image/png" in text_of(c), text_of(c))
        check(text_of(c).startswith("turns=1 "), text_of(c))
        check(ctx.anthropic.messages_records()[-1]["images"] == 1,
              ctx.anthropic.messages_records()[-1])
        # Streamed, as a second image in a new conversation.
        stream = client.chat.completions.create(
            model="sonnet", stream=True, extra_headers=CLAUDE, messages=[{
                "role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": "Compare these two."}]}])
        text, finishes, _, _ = read_stream(stream)
        check("images=2 media=image/png,image/png" in text and finishes == ["stop"],
              (text, finishes))

        # TODO(pin): the server may fetch http(s) images or refuse them; until
        # that is decided either a success or a 400 unsupported_content passes.
        remote = [{"role": "user", "content": [
            {"type": "text", "text": "And this one?"},
            {"type": "image_url", "image_url": {"url": "https://127.0.0.1:9/cat.png"}}]}]
        try:
            _, c, _ = claude_turn(client, remote)
        except openai.BadRequestError as e:
            check(e.status_code == 400 and e.code == "unsupported_content",
                  f"{e.status_code} {e.code!r}: {e}")
        else:
            check(c.choices[0].finish_reason == "stop", c)
    finally:
        srv.stop()


CITY_SCHEMA = {"type": "object", "additionalProperties": False,
               "required": ["city", "population", "capital"],
               "properties": {"city": {"type": "string"},
                              "population": {"type": "integer"},
                              "capital": {"type": "boolean"}}}


def check_city_json(content, what):
    try:
        got = json.loads(content)
    except (TypeError, ValueError):
        raise AssertionError(f"{what}: the content is not JSON: {content!r}")
    check(isinstance(got, dict) and set(got) == set(CITY_SCHEMA["properties"]),
          f"{what}: keys {got}")
    check(got == {"city": "Paris", "population": 21, "capital": True}, f"{what}: {got}")
    return got


def test_response_format_json_schema(ctx):
    """response_format json_schema: the content is the JSON (finish_reason
    stop), streamed as content deltas too; json_object gives a JSON object;
    the SDK's parse() with a pydantic model reads it."""
    srv = tool_server(ctx, "json-schema").start()
    try:
        client = srv.client()
        fmt = {"type": "json_schema", "json_schema": {"name": "city_info",
                                                      "schema": CITY_SCHEMA}}
        ask = [{"role": "user", "content": "Describe Paris in one object."}]
        _, c, _ = claude_turn(client, ask, response_format=fmt)
        check(c.choices[0].finish_reason == "stop", c.choices[0])
        check(not c.choices[0].message.tool_calls, c.choices[0].message)
        check_city_json(text_of(c), "not streamed")

        stream = client.chat.completions.create(
            model="sonnet", messages=ask, response_format=fmt, stream=True,
            extra_headers=CLAUDE)
        text, finishes, _, _ = read_stream(stream)
        check(finishes == ["stop"], f"finish reasons {finishes}")
        check_city_json(text, "streamed")

        _, c, _ = claude_turn(client, [{"role": "user", "content":
                                        "Reply with a JSON object about Paris."}],
                              response_format={"type": "json_object"})
        got = json.loads(text_of(c))
        check(isinstance(got, dict) and c.choices[0].finish_reason == "stop", text_of(c))

        import pydantic

        class City(pydantic.BaseModel):
            city: str
            population: int
            capital: bool

        parsed = client.chat.completions.parse(
            model="sonnet", messages=ask, response_format=City, extra_headers=CLAUDE)
        check(parsed.choices[0].message.parsed == City(city="Paris", population=21,
                                                       capital=True),
              parsed.choices[0].message)
    finally:
        srv.stop()


def test_agents_sdk_tool_run(ctx):
    """The OpenAI Agents SDK with its Chat Completions model: Runner.run calls
    the @function_tool, sends the result back (a whole history, no session
    header) and ends with a final output that carries the tool's value."""
    import asyncio
    try:
        from agents import (Agent, OpenAIChatCompletionsModel, Runner, function_tool,
                            set_tracing_disabled)
    except ImportError:
        raise AssertionError("the openai-agents package is missing: run scripts/e2e/setup.sh")
    set_tracing_disabled(True)
    calls = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"agents says {weather(city)}"

    srv = tool_server(ctx, "agents").start()
    try:
        async def run():
            client = openai.AsyncOpenAI(base_url=srv.url("/v1"), api_key=API_KEY,
                                        default_headers=CLAUDE, max_retries=0, timeout=60)
            try:
                agent = Agent(name="weather", instructions="Answer with the tool's words.",
                              tools=[get_weather],
                              model=OpenAIChatCompletionsModel(model="claude-sonnet-4-6",
                                                               openai_client=client))
                return await Runner.run(agent, "What is the weather in Paris?", max_turns=4)
            finally:
                await client.close()

        result = asyncio.run(run())
        check(calls == ["Paris"], f"the tool ran with {calls}")
        final = str(result.final_output)
        check(f"agents says {weather('Paris')}" in final, f"final output {final!r}")
        check_one_cli(ctx, srv, None, "after the run")
    finally:
        srv.stop()
    check(len({s for s, _ in access_lines(srv)}) == 1, f"access log: {access_lines(srv)}")


def test_langchain_bind_tools_loop(ctx):
    """LangChain's ChatOpenAI.bind_tools in a manual loop (invoke, run each
    tool call, append a ToolMessage, invoke again), never sending
    X-Claude-Session-ID: both requests land on one session, served by ONE
    claude process."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather(city)

    sent, answered = [], []
    http_client = openai.DefaultHttpxClient(event_hooks={
        "request": [lambda rq: sent.append({k.lower(): v for k, v in rq.headers.items()})],
        "response": [lambda rs: answered.append({k.lower(): v for k, v in rs.headers.items()})],
    })
    srv = tool_server(ctx, "lc-tools").start()
    try:
        chat = ChatOpenAI(base_url=srv.url("/v1"), api_key=API_KEY, model="sonnet",
                          max_retries=0, timeout=60, default_headers=CLAUDE,
                          http_client=http_client).bind_tools([get_weather])
        messages = [HumanMessage("What is the weather in Paris and Berlin?")]
        ai = chat.invoke(messages)
        check([(c["name"], c["args"]) for c in ai.tool_calls] == [
            ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Berlin"})],
            f"tool calls {ai.tool_calls}")
        check(ai.response_metadata.get("finish_reason") == "tool_calls", ai.response_metadata)
        pid = check_one_cli(ctx, srv, None, "while the calls are pending")
        messages.append(ai)
        for call in ai.tool_calls:
            messages.append(ToolMessage(get_weather.invoke(call["args"]),
                                        tool_call_id=call["id"]))
        final = chat.invoke(messages)
        check(not final.tool_calls, f"more tool calls: {final.tool_calls}")
        check(weather("Paris") in final.content and weather("Berlin") in final.content,
              final.content)
        check(len(sent) == 2 and all("x-claude-session-id" not in h for h in sent),
              f"request headers {sent}")
        sids = [h.get("x-claude-session-id") for h in answered]
        check(len(sids) == 2 and is_uuid4(sids[0]) and sids[0] == sids[1],
              f"answered for sessions {sids}")
        check_one_cli(ctx, srv, pid, "after the final answer")
    finally:
        srv.stop()
        http_client.close()
    check([s for s, _ in access_lines(srv)] == sids, f"access log: {access_lines(srv)}")


# --- the Responses API in Claude Code mode ----------------------------------
#
# The same fake API answers (the echo, "weather in <City>" tool calls, "The
# tools said: ..."), reached through /claude/v1/responses. The Agents SDK
# tests run its default Responses model; the passthrough one meets
# fake_openai.py playing a model with tools.

RESPONSES_PATH = "/claude/v1/responses"
RESP_ID_RE = re.compile(r"^resp_[A-Za-z0-9_-]+$")
RESP_WEATHER_TOOL = {"type": "function", "name": "get_weather",
                     "description": "The weather in a city",
                     "parameters": {"type": "object",
                                    "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}


def header_log(answered):
    """An httpx client whose response hook appends each answer's headers
    (lower-case names) to `answered`: the stream helpers hide the headers."""
    return openai.DefaultHttpxClient(event_hooks={"response": [
        lambda rs: answered.append({k.lower(): v for k, v in rs.headers.items()})]})


def responses_turn(client, **kw):
    """responses.create through with_raw_response: (session id, response, headers)."""
    raw = client.responses.with_raw_response.create(**kw)
    return raw.headers.get("x-claude-session-id"), raw.parse(), raw.headers


def check_claude_answer(headers, what):
    check(headers.get("x-backend-mode") == "claude-code",
          f"{what}: X-Backend-Mode {headers.get('x-backend-mode')!r}: {dict(headers)}")
    sid = headers.get("x-claude-session-id")
    check(is_uuid4(sid), f"{what}: X-Claude-Session-ID {sid!r}: {dict(headers)}")
    return sid


def check_response_object(r, what, status="completed"):
    """The fields every Response carries, as the SDK parsed them."""
    check(RESP_ID_RE.match(r.id or ""), f"{what}: id {r.id!r}")
    check(r.object == "response", f"{what}: object {r.object!r}")
    check(r.status == status, f"{what}: status {r.status!r}")
    check(abs(r.created_at - time.time()) < 600, f"{what}: created_at {r.created_at}")
    if status == "completed":
        u = r.usage
        check(u is not None and u.input_tokens > 0 and u.output_tokens > 0
              and u.total_tokens == u.input_tokens + u.output_tokens, f"{what}: usage {u}")


def transcript(pairs):
    """The prompt a new session with history gets: the labelled transcript."""
    return "\n\n".join(f"{'User' if role == 'user' else 'Assistant'}: {text}"
                       for role, text in pairs)


def items_of(r, kind):
    return [item for item in r.output if item.type == kind]


def check_responses_events(events, what):
    """A Responses stream, as any client reads it: sequence_number 0, 1, 2..;
    response.created and .in_progress first, response.completed last; between
    them each output item in turn (output_index 0, 1, ..): output_item.added,
    then for a message content_part.added, output_text.delta pieces,
    output_text.done, content_part.done, for a function_call
    function_call_arguments.delta pieces and .done, then output_item.done.
    The pieces must add up to each .done and to the final response. Returns
    the final response."""
    types = [e.type for e in events]
    seqs = [e.sequence_number for e in events]
    check(seqs == list(range(len(events))), f"{what}: sequence numbers {seqs}")
    check(types[:2] == ["response.created", "response.in_progress"]
          and types[-1] == "response.completed"
          and types.count("response.completed") == 1, f"{what}: event types {types}")
    first, final = events[0].response, events[-1].response
    check(first.id == final.id and RESP_ID_RE.match(final.id or ""),
          f"{what}: response ids {first.id!r} then {final.id!r}")
    check(first.status == "in_progress" and final.status == "completed",
          f"{what}: statuses {first.status!r} then {final.status!r}")

    def expect(i, kind, index):
        check(i < len(events) - 1 and types[i] == kind,
              f"{what}: event {i} is {types[i] if i < len(types) else None!r}, expected "
              f"{kind!r}; types {types}")
        check(getattr(events[i], "output_index", index) == index,
              f"{what}: event {i} ({kind}) has output_index {events[i].output_index}, "
              f"expected {index}")
        return events[i]

    i, index, streamed = 2, 0, []
    while i < len(events) - 1:
        added = expect(i, "response.output_item.added", index)
        item = added.item
        i += 1
        if item.type == "message":
            expect(i, "response.content_part.added", index)
            i += 1
            pieces = []
            while types[i] == "response.output_text.delta":
                check(events[i].item_id == item.id, f"{what}: delta of item {events[i].item_id}"
                      f" inside item {item.id}")
                pieces.append(events[i].delta)
                i += 1
            check(pieces, f"{what}: item {index} has no output_text.delta; types {types}")
            done = expect(i, "response.output_text.done", index)
            check(done.text == "".join(pieces),
                  f"{what}: output_text.done {done.text!r}, deltas {pieces}")
            expect(i + 1, "response.content_part.done", index)
            i += 2
            streamed.append(("message", done.text))
        elif item.type == "function_call":
            pieces = []
            while types[i] == "response.function_call_arguments.delta":
                pieces.append(events[i].delta)
                i += 1
            done = expect(i, "response.function_call_arguments.done", index)
            check(done.arguments == "".join(pieces),
                  f"{what}: function_call_arguments.done {done.arguments!r}, deltas {pieces}")
            i += 1
            streamed.append(("function_call", done.arguments))
        else:
            raise AssertionError(f"{what}: an output item of type {item.type!r}")
        item_done = expect(i, "response.output_item.done", index)
        check(item_done.item.id == item.id and item_done.item.type == item.type,
              f"{what}: output_item.done for {item_done.item.id} after {item.id} was added")
        i += 1
        index += 1
    got = [(o.type, o.content[0].text if o.type == "message" else o.arguments)
           for o in final.output]
    check(got == streamed, f"{what}: the final response's output {got}, streamed {streamed}")
    return final


def test_responses_sdk_create(ctx):
    """responses.create under /claude/v1 with an OpenAI model name: a Response
    (resp_ id, completed, usage) whose output_text is the fake model's answer,
    with the instructions as the system prompt and the model mapped to a
    Claude one; the session id comes back as a header."""
    client = claude_base_client(relay_server(ctx))
    since = len(ctx.anthropic.messages_records())
    sid, r, headers = responses_turn(client, model="gpt-4.1", input="Say hello",
                                     instructions=f"{MARKER}: answer in one line.")
    check_claude_answer(headers, "responses.create")
    check(headers.get("x-claude-session-created") == "true", dict(headers))
    check_response_object(r, "responses.create")
    check(r.model == "gpt-4.1", f"response model {r.model!r}, expected the requested name")
    check(r.output_text.startswith("turns=1 system=yes model=claude-"), r.output_text)
    expect_history(r.output_text, [("user", "Say hello")], "responses.create")
    msgs = items_of(r, "message")
    check(len(r.output) == 1 and len(msgs) == 1 and msgs[0].role == "assistant"
          and msgs[0].content[0].type == "output_text", f"output {r.output}")
    recs = fake_records_since(ctx, since)
    check(len(recs) == 1 and recs[0]["session_header"] == sid
          and recs[0]["model"].startswith("claude-"), f"what the fake API saw: {recs}")

    # The header takes /v1/responses to Claude Code mode too; nothing goes to OpenAI.
    since_oai = ctx.openai.count()
    other, r, headers = responses_turn(relay_server(ctx).client(), model="gpt-5",
                                       input="By header", extra_headers=CLAUDE)
    check_claude_answer(headers, "/v1/responses with X-Claude-Code")
    check(other != sid and r.output_text.startswith("turns=1 system=no model=claude-"),
          f"session {other}: {r.output_text}")
    check(ctx.openai.records_since(since_oai) == [],
          f"OpenAI saw {[(x['method'], x['path']) for x in ctx.openai.records_since(since_oai)]}")


def test_responses_sdk_stream(ctx):
    """The SDK's responses.stream helper and responses.create(stream=True):
    the events in the documented order with sequence numbers from 0, the text
    deltas adding up to the final text, get_final_response() agreeing."""
    srv = relay_server(ctx)
    answered = []
    http_client = header_log(answered)
    client = claude_base_client(srv, http_client=http_client)
    try:
        with client.responses.stream(model="claude-sonnet-4-6", input="Stream a hello",
                                     instructions=f"{MARKER}: be brief.") as stream:
            events = list(stream)
            final = stream.get_final_response()
        check(len(answered) == 1, f"{len(answered)} answers seen")
        first_sid = check_claude_answer(answered[-1], "responses.stream")
        check(answered[-1].get("content-type", "").startswith("text/event-stream"),
              answered[-1])
        last = check_responses_events(events, "responses.stream")
        types = [e.type for e in events]
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        check(types == RESPONSES_EVENTS + ["response.output_text.delta"] * len(deltas)
              + RESPONSES_END, f"event types {types}")
        text = "".join(deltas)
        check(text.startswith("turns=1 system=yes model=claude-sonnet"), text)
        expect_history(text, [("user", "Stream a hello")], "responses.stream")
        check(final.output_text == last.output_text == text,
              (final.output_text, last.output_text, text))
        check_response_object(final, "responses.stream final")

        raw = client.responses.with_raw_response.create(
            model="claude-sonnet-4-6", input=[{"role": "user", "content": "Stream again"}],
            stream=True)
        sid = check_claude_answer(raw.headers, "responses.create(stream=True)")
        events = list(raw.parse())
        last = check_responses_events(events, "responses.create(stream=True)")
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        check(text.startswith("turns=1 system=no model=claude-sonnet") and
              last.output_text == text, (text, last.output_text))
        check(sid != first_sid, f"two new conversations shared session {sid}")
    finally:
        http_client.close()


def test_responses_text_format(ctx):
    """Structured output over the Responses API: the SDK's responses.parse
    with a pydantic model (text.format json_schema) gives output_parsed;
    text.format json_object gives a JSON object."""
    import pydantic

    class City(pydantic.BaseModel):
        city: str
        population: int
        capital: bool

    client = claude_base_client(relay_server(ctx))
    parsed = client.responses.parse(model="claude-sonnet-4-6", text_format=City,
                                    input="Describe Paris in one object.")
    check_response_object(parsed, "responses.parse")
    check(parsed.output_parsed == City(city="Paris", population=21, capital=True),
          f"output_parsed {parsed.output_parsed!r}, output_text {parsed.output_text!r}")
    r = client.responses.create(model="claude-sonnet-4-6", text={"format": {"type": "json_object"}},
                                input="Reply with a JSON object about Paris.")
    try:
        got = json.loads(r.output_text)
    except ValueError:
        raise AssertionError(f"json_object: not JSON: {r.output_text!r}")
    check(isinstance(got, dict), f"json_object: {got!r}")


def test_responses_previous_response_chain_warm(ctx):
    """Three turns chained by previous_response_id, each sending only its new
    user text: one session, turns 2 and 3 warm on the first turn's process,
    and the fake API got the whole history each turn. Then: retrieve returns
    a stored response; the id of turn 1 forks a new session with the history
    up to it while the original carries on, warm; store=False keeps nothing
    (404); another client key's ids are 404 to it; an unknown
    previous_response_id is a 404 previous_response_not_found."""
    srv = warm_server(ctx, "responses-chain", API_KEY="",
                      API_KEYS=f"{API_KEY},{SECOND_API_KEY}").start()
    try:
        client = claude_base_client(srv)
        history, answers, sid, pid, prev = [], [], None, None, None
        prompts = ["my number is 7", "what is my number?", "and doubled?"]
        for turn, prompt in enumerate(prompts, 1):
            kw = {"previous_response_id": prev} if prev else {}
            # The last turn sends its text as an input item, the others as a string.
            inp = [{"role": "user", "content": prompt}] if turn == 3 else prompt
            got, r, headers = responses_turn(client, model="claude-sonnet-4-6", input=inp, **kw)
            check_claude_answer(headers, f"turn {turn}")
            check_response_object(r, f"turn {turn}")
            warm = headers.get("x-claude-warm")
            if turn == 1:
                sid = got
                check(headers.get("x-claude-session-created") == "true" and warm == "false",
                      f"turn 1: {dict(headers)}")
            else:
                check(got == sid, f"turn {turn} answered for session {got}, not {sid}")
                check("x-claude-session-created" not in headers, f"turn {turn}: {dict(headers)}")
                check(warm == "true", f"turn {turn}: X-Claude-Warm {warm!r}")
            history.append(("user", prompt))
            check(r.output_text.startswith(f"turns={turn} "), f"turn {turn}: {r.output_text}")
            expect_history(r.output_text, history, f"turn {turn}")
            history.append(("assistant", r.output_text))
            check(r.id not in [a.id for a in answers], f"turn {turn}: id {r.id} reused")
            answers.append(r)
            prev = r.id
            kids = wait_until(lambda: cli_children(ctx, srv), 5, what="the warm claude process")
            check(len(kids) == 1, f"turn {turn}: claude processes {kids}")
            pid = pid or kids[0]
            check(kids == [pid], f"turn {turn}: the warm process {pid} was replaced by {kids}")

        for r in (answers[1], answers[0]):
            got = client.responses.retrieve(r.id)
            check(got.id == r.id and got.status == "completed"
                  and got.output_text == r.output_text,
                  f"retrieve {r.id}: {got.id} {got.status} {got.output_text!r}")

        # Back to turn 1: a new session that knows turns 1 only, the original untouched.
        fork_sid, fork, headers = responses_turn(
            client, model="claude-sonnet-4-6", input="a fork from turn 1",
            previous_response_id=answers[0].id)
        check(fork_sid != sid and headers.get("x-claude-session-created") == "true",
              f"the fork answered for session {fork_sid} (the chain's is {sid}): "
              f"{dict(headers)}")
        # A new session gets its history as one transcript prompt (docs/SESSIONS.md).
        check(fork.output_text.startswith("turns=1 "), f"the fork: {fork.output_text}")
        expect_history(fork.output_text, [("user", transcript(
            history[:2] + [("user", "a fork from turn 1")]))], "the fork (a transcript)")
        got, r, headers = responses_turn(client, model="claude-sonnet-4-6", input="turn 4",
                                         previous_response_id=answers[2].id)
        history.append(("user", "turn 4"))
        check(got == sid and headers.get("x-claude-warm") == "true",
              f"the chain after the fork: session {got} (not {sid}?), "
              f"X-Claude-Warm {headers.get('x-claude-warm')!r}")
        check(r.output_text.startswith("turns=4 "), f"turn 4: {r.output_text}")
        expect_history(r.output_text, history, "turn 4, after the fork")
        check(pid in cli_children(ctx, srv), f"the chain's process {pid} is gone")

        try:
            client.responses.retrieve("resp_" + uuid.uuid4().hex)
        except openai.NotFoundError:
            pass
        else:
            raise AssertionError("retrieve of an unknown id: expected openai.NotFoundError")

        _, unstored, _ = responses_turn(client, model="claude-sonnet-4-6", input="forget me",
                                        store=False)
        check(unstored.output_text.startswith("turns=1 "), unstored.output_text)
        try:
            client.responses.retrieve(unstored.id)
        except openai.NotFoundError:
            pass
        else:
            raise AssertionError(f"retrieve of a store=False response ({unstored.id}): "
                                 "expected openai.NotFoundError")

        since = len(ctx.anthropic.messages_records())
        other = openai.OpenAI(base_url=srv.url("/claude/v1"), api_key=SECOND_API_KEY,
                              max_retries=0, timeout=60)
        try:
            other.responses.retrieve(answers[0].id)
        except openai.NotFoundError:
            pass
        else:
            raise AssertionError("another key retrieved the chain's response")
        try:
            other.responses.create(model="claude-sonnet-4-6", input="whose is this?",
                                   previous_response_id=answers[2].id)
        except openai.NotFoundError as e:
            check(e.code == "previous_response_not_found", f"another key's id: code {e.code!r}")
        else:
            raise AssertionError("another key continued the chain's conversation")
        try:
            client.responses.create(model="claude-sonnet-4-6", input="hello again",
                                    previous_response_id="resp_" + uuid.uuid4().hex)
        except openai.NotFoundError as e:
            check(e.code == "previous_response_not_found" and e.param == "previous_response_id",
                  f"code {e.code!r}, param {e.param!r}: {e}")
        else:
            raise AssertionError("an unknown previous_response_id: expected openai.NotFoundError")
        check(fake_records_since(ctx, since) == [],
              "a request with an unknown previous_response_id reached the model")
    finally:
        srv.stop()
    seen = access_lines(srv, RESPONSES_PATH)
    check(seen[:5] == [(sid, False), (sid, True), (sid, True), (fork_sid, False), (sid, True)],
          f"access log of the chain and the fork (session, warm): {seen[:5]}")


def test_responses_function_tool_loop(ctx):
    """A function tool over the Responses API: the answer's function_call item
    (call_id, name, JSON arguments); the function_call_output sent with
    previous_response_id is answered by the same process, quoting the output.
    A second round, streamed with the stream helper, brings the call as
    function_call_arguments events."""
    srv = tool_server(ctx, "responses-tools").start()
    seen = len(ctx.anthropic.messages_records())
    answered = []
    http_client = header_log(answered)
    try:
        client = claude_base_client(srv, http_client=http_client)
        tools = [RESP_WEATHER_TOOL]
        sid, first, headers = responses_turn(client, model="claude-sonnet-4-6", tools=tools,
                                             input="What is the weather in Paris?")
        check_claude_answer(headers, "the call")
        check_response_object(first, "the call")
        calls = items_of(first, "function_call")
        check(len(calls) == 1, f"function_call items {first.output}")
        call = calls[0]
        check(call.call_id and call.name == "get_weather", f"the call {call}")
        check(json.loads(call.arguments) == {"city": "Paris"}, f"arguments {call.arguments!r}")
        check(all(o.type in ("message", "function_call") for o in first.output)
              and first.output[-1].type == "function_call", f"output {first.output}")
        check_before_calls(first.output_text, "the call")
        pid = check_one_cli(ctx, srv, None, "while the call is pending")

        got, r, headers = responses_turn(
            client, model="claude-sonnet-4-6", tools=tools, previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id,
                    "output": weather("Paris")}])
        check(got == sid, f"the output landed on session {got}, not {sid}")
        check(headers.get("x-claude-warm") == "true", f"X-Claude-Warm: {dict(headers)}")
        check_response_object(r, "the answer")
        check(not items_of(r, "function_call"), f"more calls: {r.output}")
        check(r.output_text == f"The tools said: {weather('Paris')}", r.output_text)
        check_one_cli(ctx, srv, pid, "after the output")

        with client.responses.stream(model="claude-sonnet-4-6", tools=tools,
                                     previous_response_id=r.id,
                                     input="And the weather in Rome?") as stream:
            events = list(stream)
            streamed = stream.get_final_response()
        final = check_responses_events(events, "the streamed call")
        check(answered[-1].get("x-claude-session-id") == sid, answered[-1])
        calls = items_of(final, "function_call")
        check(len(calls) == 1 and calls[0].name == "get_weather"
              and json.loads(calls[0].arguments) == {"city": "Rome"}, f"calls {final.output}")
        check(streamed.id == final.id, (streamed.id, final.id))
        _, r, _ = responses_turn(
            client, model="claude-sonnet-4-6", tools=tools, previous_response_id=final.id,
            input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                    "output": weather("Rome")}])
        check(r.output_text == f"The tools said: {weather('Rome')}", r.output_text)
        check_one_cli(ctx, srv, pid, "after the second round")
        recs = fake_records_since(ctx, seen)
        check([x["reply"] for x in recs] == ["tools", "text", "tools", "text"]
              and "mcp__client__get_weather" in recs[0]["tool_names"]
              and recs[1]["tool_results"] == 1, f"what the fake API saw: {recs}")
        check({x["session_header"] for x in recs} == {sid}, "the CLI changed sessions")
    finally:
        srv.stop()
        http_client.close()
    check({s for s, _ in access_lines(srv, RESPONSES_PATH)} == {sid},
          f"access log: {access_lines(srv, RESPONSES_PATH)}")


def run_default_agent(base_url, headers=None, streamed=False):
    """The Agents SDK as its docs show it: an Agent with instructions and one
    function tool and NO model (so its default Responses model and default
    model settings), a default client for `base_url`, tracing off, run to its
    final answer (Runner.run, or Runner.run_streamed read to its end).
    Returns (final output, the tool's calls, the request bodies sent, the
    answers' headers)."""
    import asyncio
    try:
        from agents import (Agent, Runner, function_tool, set_default_openai_client,
                            set_tracing_disabled)
        from agents.models import _openai_shared
    except ImportError:
        raise AssertionError("the openai-agents package is missing: run scripts/e2e/setup.sh")
    calls, bodies, answered = [], [], []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"agents says {weather(city)}"

    async def on_request(rq):
        bodies.append((rq.method, rq.url.path, json.loads(rq.content or b"null")))

    async def on_response(rs):
        answered.append({k.lower(): v for k, v in rs.headers.items()})

    async def run():
        http_client = openai.DefaultAsyncHttpxClient(event_hooks={
            "request": [on_request], "response": [on_response]})
        client = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0,
                                    timeout=60, default_headers=headers,
                                    http_client=http_client)
        set_default_openai_client(client)
        try:
            agent = Agent(name="weather", instructions="Answer with the tool's words.",
                          tools=[get_weather])
            if not streamed:
                return await Runner.run(agent, "What's the weather in Paris?", max_turns=4)
            result = Runner.run_streamed(agent, "What's the weather in Paris?", max_turns=4)
            async for _ in result.stream_events():
                pass
            return result
        finally:
            await client.close()

    set_tracing_disabled(True)
    try:
        result = asyncio.run(asyncio.wait_for(run(), 120))
    finally:
        _openai_shared.set_default_openai_client(None)  # later tests pass their own
    return str(result.final_output), calls, bodies, answered


def check_default_agent_requests(bodies, path, what, streamed=False):
    """Two POSTs to `path` carrying the SDK's defaults: its default model and
    that model's default settings, the function tool, streamed or not; the
    second sends the tool's output back as a function_call_output."""
    from agents.models import get_default_model, get_default_model_settings
    model = get_default_model()
    check(model == "gpt-5.6-luna" and not os.environ.get("OPENAI_DEFAULT_MODEL"),
          f"the pinned SDK's default model is {model!r} (OPENAI_DEFAULT_MODEL="
          f"{os.environ.get('OPENAI_DEFAULT_MODEL')!r}); the test means its own default")
    settings = get_default_model_settings(model)
    check([(m, p) for m, p, _ in bodies] == [("POST", path)] * 2,
          f"{what}: requests {[(m, p) for m, p, _ in bodies]}")
    for n, (_, _, body) in enumerate(bodies, 1):
        check(body.get("model") == model, f"{what}: request {n} model {body.get('model')!r}")
        check(body.get("reasoning") == {"effort": settings.reasoning.effort}
              and body.get("text") == {"verbosity": settings.verbosity},
              f"{what}: request {n} reasoning {body.get('reasoning')}, text {body.get('text')}")
        check([t.get("name") for t in body.get("tools") or []] == ["get_weather"],
              f"{what}: request {n} tools {body.get('tools')}")
        check(bool(body.get("stream")) == streamed,
              f"{what}: request {n} has stream={body.get('stream')!r}")
    kinds = [i.get("type") for i in bodies[1][2].get("input") or [] if isinstance(i, dict)]
    check("function_call" in kinds and "function_call_output" in kinds,
          f"{what}: the second request's input items {kinds}")


def test_agents_sdk_responses_claude(ctx):
    """The Agents SDK with its defaults (no model: its default Responses model)
    and a default client at /claude/v1: the claude CLI answers both turns of
    the run, the tool runs once, the final output carries its words."""
    srv = tool_server(ctx, "agents-responses").start()
    seen, since = len(ctx.anthropic.messages_records()), ctx.openai.count()
    try:
        final, calls, bodies, answered = run_default_agent(srv.url("/claude/v1"))
        check(calls == ["Paris"], f"the tool ran with {calls}")
        check(f"agents says {weather('Paris')}" in final, f"final output {final!r}")
        check_default_agent_requests(bodies, RESPONSES_PATH, "Claude Code mode")
        sids = [check_claude_answer(h, f"answer {n}") for n, h in enumerate(answered, 1)]
        check(len(sids) == 2 and sids[0] == sids[1], f"answered for sessions {sids}")
        check(answered[1].get("x-claude-warm") == "true",
              f"the tool's output: X-Claude-Warm {answered[1].get('x-claude-warm')!r}")
        # The SDK's default settings for its model are taken: its reasoning
        # effort reaches the API, its text verbosity is said to be ignored.
        ignored = answered[0].get("x-claude-ignored-params", "").split(",")
        check("text.verbosity" in ignored and "reasoning" not in ignored,
              f"X-Claude-Ignored-Params {answered[0].get('x-claude-ignored-params')!r}")
        recs = fake_records_since(ctx, seen)
        check(recs and recs[0].get("effort"), f"the SDK's effort did not reach the API: {recs}")
        check([r["reply"] for r in recs] == ["tools", "text"]
              and "mcp__client__get_weather" in recs[0]["tool_names"]
              and recs[0]["model"].startswith("claude-"), f"what the fake API saw: {recs}")
        check_one_cli(ctx, srv, None, "after the run")

        # Runner.run_streamed: the same run over the typed event streams.
        seen = len(ctx.anthropic.messages_records())
        final, calls, bodies, answered = run_default_agent(srv.url("/claude/v1"),
                                                           streamed=True)
        check(calls == ["Paris"], f"streamed: the tool ran with {calls}")
        check(f"agents says {weather('Paris')}" in final, f"streamed: final output {final!r}")
        check_default_agent_requests(bodies, RESPONSES_PATH, "streamed", streamed=True)
        sids2 = [check_claude_answer(h, f"streamed answer {n}")
                 for n, h in enumerate(answered, 1)]
        check(len(sids2) == 2 and sids2[0] == sids2[1] and sids2[0] != sids[0]
              and answered[1].get("x-claude-warm") == "true",
              f"streamed: sessions {sids2} (the first run's {sids[0]}), headers {answered}")
        check([r["reply"] for r in fake_records_since(ctx, seen)] == ["tools", "text"],
              f"streamed: what the fake API saw: {fake_records_since(ctx, seen)}")
        check(ctx.openai.records_since(since) == [],
              f"OpenAI saw {[(r['method'], r['path']) for r in ctx.openai.records_since(since)]}")
    finally:
        srv.stop()
    modes = [(p, m) for p, m, _ in access_modes(srv) if p != "/health"]
    check(modes == [(RESPONSES_PATH, "claude-code")] * 4, f"access log (path, mode): {modes}")


def test_agents_sdk_responses_passthrough(ctx):
    """The same agent with its defaults against the plain /v1 base URL, no
    Claude header: both requests are relayed to the OpenAI upstream (the fake,
    playing a model with tools), the tool runs, the final output carries its
    words, and nothing reaches the claude CLI."""
    srv = relay_server(ctx)
    seen, since = len(ctx.anthropic.messages_records()), ctx.openai.count()
    final, calls, bodies, answered = run_default_agent(srv.url("/v1"))
    check(calls == ["Paris"], f"the tool ran with {calls}")
    check(f"agents says {weather('Paris')}" in final, f"final output {final!r}")
    check_default_agent_requests(bodies, "/v1/responses", "passthrough")
    check([h.get("x-backend-mode") for h in answered] == ["openai-passthrough"] * 2
          and not any("x-claude-session-id" in h for h in answered), f"headers {answered}")
    recs = ctx.openai.records_since(since)
    check([(r["method"], r["path"], r.get("reply")) for r in recs] ==
          [("POST", "/v1/responses", "function_call"), ("POST", "/v1/responses", "text")],
          f"the upstream saw {[(r['method'], r['path'], r.get('reply')) for r in recs]}")
    check(all(r["key_ok"] and r["key_fp"] == fake_openai.key_fingerprint(OPENAI_KEY)
              for r in recs), "the upstream did not get the server's OpenAI key")
    check(recs[1]["function_call_outputs"] == 1, recs[1])

    since = ctx.openai.count()
    final, calls, bodies, _ = run_default_agent(srv.url("/v1"), streamed=True)
    check(calls == ["Paris"] and f"agents says {weather('Paris')}" in final,
          f"streamed: the tool ran with {calls}, final output {final!r}")
    check_default_agent_requests(bodies, "/v1/responses", "passthrough, streamed", streamed=True)
    recs = ctx.openai.records_since(since)
    check([(r.get("reply"), r.get("stream")) for r in recs] ==
          [("function_call", True), ("text", True)],
          f"streamed: the upstream saw {[(r.get('reply'), r.get('stream')) for r in recs]}")
    check(fake_records_since(ctx, seen) == [], "the claude CLI was asked")


# --- the Anthropic Messages API, with Anthropic's own SDK -------------------
#
# POST /v1/messages (and /claude/v1/messages) is always Claude Code mode: the
# same fake API answers behind the real CLI. The pinned `anthropic` SDK sends
# its api_key as `Authorization: Bearer`; a client that sets `X-Api-Key`
# itself (and omits Authorization) shows the other header form.

MESSAGES_PATH = "/v1/messages"
MSG_ID_RE = re.compile(r"^msg_[A-Za-z0-9]+$")
ANTHROPIC_WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city",
                          "input_schema": {"type": "object",
                                           "properties": {"city": {"type": "string"}},
                                           "required": ["city"]}}
# What Anthropic's API sends, in order, for a message of text blocks (pings
# left out: the API may send them anywhere in between).
STREAM_EVENT_ORDER = re.compile(
    r"message_start (content_block_start (content_block_delta )+content_block_stop )+"
    r"message_delta message_stop")


def messages_server(ctx):
    """The shared server of the Messages API tests: two client keys (API_KEYS),
    warm processes, no rate limits (started by the first of them)."""
    if ctx.messages_srv is None or ctx.messages_srv.proc.poll() is not None:
        ctx.messages_srv = warm_server(ctx, "messages", API_KEY="",
                                       API_KEYS=f"{API_KEY},{SECOND_API_KEY}",
                                       RATE_LIMIT_PER_IP="0")
        ctx.messages_srv.start()
    return ctx.messages_srv


def anthropic_client(base_url, key=API_KEY, x_api_key=False, http_client=None):
    """The SDK's client as its docs show it, retries off. With x_api_key the key
    goes in X-Api-Key alone, as curl examples and other clients send it."""
    kw = {"max_retries": 0, "timeout": 60, "http_client": http_client}
    if x_api_key:
        kw["default_headers"] = {"X-Api-Key": key, "Authorization": anthropic.Omit()}
    return anthropic.Anthropic(base_url=base_url, api_key=key, **kw)


def request_log(sent):
    """An httpx client of the SDK's kind whose request hook appends (path, header
    dict with lower-case names) of every request to `sent`."""
    return anthropic.DefaultHttpxClient(event_hooks={"request": [
        lambda rq: sent.append((rq.url.path, {k.lower(): v for k, v in rq.headers.items()}))]})


def key_header(headers, key):
    """Which header carried `key` in a request: "x-api-key", "bearer", or None
    (checking that the other header did not carry anything)."""
    bearer = headers.get("authorization")
    if headers.get("x-api-key") == key and bearer is None:
        return "x-api-key"
    if bearer == f"Bearer {key}" and "x-api-key" not in headers:
        return "bearer"
    return None


def message_text(m):
    return "".join(b.text for b in m.content if b.type == "text")


def check_message(m, model, what, stop_reason="end_turn"):
    """The fields every Anthropic message carries, as the SDK parsed them."""
    check(MSG_ID_RE.match(m.id or ""), f"{what}: id {m.id!r}")
    check(m.type == "message" and m.role == "assistant", f"{what}: type {m.type!r}, "
          f"role {m.role!r}")
    check(m.model == model, f"{what}: model {m.model!r}, expected the requested {model!r}")
    check(m.stop_reason == stop_reason and m.stop_sequence is None,
          f"{what}: stop_reason {m.stop_reason!r}, stop_sequence {m.stop_sequence!r}")
    u = m.usage
    check(u is not None and u.input_tokens > 0 and u.output_tokens > 0, f"{what}: usage {u}")


def messages_turn(client, **kw):
    """messages.create through with_raw_response: (session id, message, headers)."""
    kw.setdefault("max_tokens", 1024)
    raw = client.messages.with_raw_response.create(**kw)
    return raw.headers.get("x-claude-session-id"), raw.parse(), raw.headers


def check_anthropic_error(e, status, kind, what):
    """An SDK exception from an answer in Anthropic's error shape."""
    check(e.status_code == status, f"{what}: status {e.status_code}, expected {status}: {e}")
    body = e.body
    check(isinstance(body, dict) and set(body) == {"type", "error"} and body["type"] == "error"
          and isinstance(body["error"], dict) and body["error"].get("type") == kind
          and isinstance(body["error"].get("message"), str) and body["error"]["message"],
          f"{what}: body {body!r}, expected {{'type': 'error', 'error': {{'type': {kind!r}, "
          f"'message': ...}}}}")
    check(e.type == kind, f"{what}: the SDK read the error type as {e.type!r}")
    return body["error"]["message"]


def expect_raised(cls, call, what):
    """Runs `call`; returns the exception of class `cls` it raised."""
    try:
        call()
    except cls as e:
        return e
    except anthropic.APIStatusError as e:
        raise AssertionError(f"{what}: expected anthropic.{cls.__name__}, got "
                             f"{type(e).__name__} {e.status_code}: {e.body!r}")
    raise AssertionError(f"{what}: expected anthropic.{cls.__name__}, the call succeeded")


def test_anthropic_sdk_create(ctx):
    """messages.create with a system prompt: a `message` (msg_ id, the model as
    asked, end_turn, usage) whose text is the fake model's echo, the system
    prompt reached the model, the session id comes back; the next turn with
    X-Claude-Session-ID (the key in X-Api-Key this time) runs warm on that
    session with the whole history; base_url .../claude works with the second
    configured key."""
    srv = messages_server(ctx)
    sent = []
    http_client = request_log(sent)
    since = len(ctx.anthropic.messages_records())
    try:
        system = f"{MARKER}: answer in one line."
        history = [("user", "Say hello")]
        sid, m, headers = messages_turn(
            anthropic_client(srv.url(), http_client=http_client), model="claude-sonnet-4-6",
            system=system, messages=[{"role": "user", "content": "Say hello"}])
        check(sent[-1][0] == MESSAGES_PATH, f"the SDK posted to {sent[-1][0]}")
        check(key_header(sent[-1][1], API_KEY) is not None,
              f"the key went in neither header alone: {sent[-1][1]}")
        check_claude_answer(headers, "messages.create")
        check(headers.get("x-claude-session-created") == "true"
              and headers.get("x-claude-warm") == "false", dict(headers))
        check("max_tokens" in headers.get("x-claude-ignored-params", "").split(","),
              f"X-Claude-Ignored-Params {headers.get('x-claude-ignored-params')!r}")
        check_message(m, "claude-sonnet-4-6", "messages.create")
        check(len(m.content) == 1 and m.content[0].type == "text", f"content {m.content}")
        text = m.content[0].text
        check(text.startswith("turns=1 system=yes model=claude-sonnet-4-6 "), text)
        expect_history(text, history, "messages.create")
        recs = fake_records_since(ctx, since)
        check(len(recs) == 1 and recs[0]["system_marker"] and recs[0]["session_header"] == sid
              and recs[0]["model"] == "claude-sonnet-4-6", f"what the fake API saw: {recs}")

        # The next turn: the SDK's own content blocks sent back, the session header.
        history += [("assistant", text), ("user", "And again")]
        got, m2, headers = messages_turn(
            anthropic_client(srv.url(), x_api_key=True, http_client=http_client),
            model="claude-sonnet-4-6", system=system,
            messages=[{"role": "user", "content": "Say hello"},
                      {"role": "assistant", "content": m.content},
                      {"role": "user", "content": "And again"}],
            extra_headers={"X-Claude-Session-ID": sid})
        check(key_header(sent[-1][1], API_KEY) == "x-api-key",
              f"the key did not go in X-Api-Key alone: {sent[-1][1]}")
        check(got == sid, f"the second turn answered for session {got}, not {sid}")
        check("x-claude-session-created" not in headers
              and headers.get("x-claude-warm") == "true",
              f"the second turn: X-Claude-Warm {headers.get('x-claude-warm')!r}: "
              f"{dict(headers)}")
        check_message(m2, "claude-sonnet-4-6", "the second turn")
        check(m2.id != m.id, f"both answers have the id {m.id}")
        check(message_text(m2).startswith("turns=2 system=yes "), message_text(m2))
        expect_history(message_text(m2), history, "the second turn")
        check(fake_records_since(ctx, since)[-1]["session_header"] == sid,
              "the CLI ran the second turn under another session")

        # The /claude base path, a model alias, the other configured key, the
        # SDK's beta namespace (an anthropic-beta header, ?beta=true) and
        # sampling fields the CLI cannot honour (the pinned SDK types some
        # of them no more: extra_body).
        client = anthropic_client(srv.url("/claude"), key=SECOND_API_KEY, http_client=http_client)
        raw = client.beta.messages.with_raw_response.create(
            model="sonnet", max_tokens=1024, betas=["interleaved-thinking-2025-05-14"],
            messages=[{"role": "user", "content": "Via the claude path"}],
            stop_sequences=["STOP"], metadata={"user_id": "e2e"},
            extra_body={"temperature": 0.2, "top_k": 5})
        other, m3, headers = raw.headers.get("x-claude-session-id"), raw.parse(), raw.headers
        path, sent_headers = sent[-1]
        check(path == "/claude" + MESSAGES_PATH
              and sent_headers.get("anthropic-beta") == "interleaved-thinking-2025-05-14",
              f"the SDK posted to {path} with anthropic-beta "
              f"{sent_headers.get('anthropic-beta')!r}")
        check_claude_answer(headers, "base_url .../claude")
        check(other != sid and headers.get("x-claude-session-created") == "true",
              f"session {other}: {dict(headers)}")
        ignored = headers.get("x-claude-ignored-params", "").split(",")
        check({"max_tokens", "temperature", "top_k", "stop_sequences", "metadata"} <= set(ignored),
              f"X-Claude-Ignored-Params {headers.get('x-claude-ignored-params')!r}")
        check_message(m3, "sonnet", "base_url .../claude")
        check(message_text(m3).startswith("turns=1 system=no model=claude-sonnet"),
              message_text(m3))
    finally:
        http_client.close()


def sse_events(lines):
    """(event name, data) of each event of an SSE body read as lines; comment
    lines are skipped, an event without an `event:` line is named None."""
    events, name, data = [], None, []
    for line in lines:
        if line == "":
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        events.append((name, json.loads("\n".join(data))))
    return events


def test_anthropic_sdk_stream(ctx):
    """The SDK's messages.stream helper: text_stream joins to the final
    message's text (get_final_message: msg_ id, end_turn, usage). The same
    request read raw: every event named by its `event:` line, in Anthropic's
    order (message_start, ping, content_block_start, content_block_delta..,
    content_block_stop, message_delta, message_stop), one message."""
    srv = messages_server(ctx)
    client = anthropic_client(srv.url())
    since = len(ctx.anthropic.messages_records())
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1024,
                                system=f"{MARKER}: be brief.",
                                messages=[{"role": "user", "content": "Stream a hello"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
        headers = s.response.headers
    check(headers.get("content-type", "").startswith("text/event-stream"), dict(headers))
    sid = check_claude_answer(headers, "messages.stream")
    check(text.startswith("turns=1 system=yes model=claude-sonnet-4-6 "), text)
    expect_history(text, [("user", "Stream a hello")], "messages.stream")
    check_message(final, "claude-sonnet-4-6", "get_final_message()")
    check(len(final.content) == 1 and final.content[0].type == "text"
          and final.content[0].text == text,
          f"the final message's content {final.content}, text_stream {text!r}")
    check(fake_records_since(ctx, since)[-1]["session_header"] == sid,
          "the CLI ran under another session")

    with client.messages.with_streaming_response.create(
            model="claude-sonnet-4-6", max_tokens=1024, stream=True,
            messages=[{"role": "user", "content": "Stream it raw"}]) as raw:
        check(raw.status_code == 200, f"status {raw.status_code}")
        events = sse_events(raw.iter_lines())
    names = [n for n, _ in events]
    check(all(n == d.get("type") for n, d in events),
          f"events whose event: line and data type differ: "
          f"{[(n, d.get('type')) for n, d in events if n != d.get('type')]}")
    check(names.count("message_start") == 1 and names.count("message_stop") == 1
          and names[0] == "message_start" and names[-1] == "message_stop",
          f"event names {names}")
    check("ping" in names, f"no ping: {names}")
    plain = [n for n in names if n != "ping"]
    check(STREAM_EVENT_ORDER.fullmatch(" ".join(plain)), f"event order {names}")
    start = events[0][1]["message"]
    check(MSG_ID_RE.match(start.get("id", "")) and start.get("model") == "claude-sonnet-4-6"
          and start.get("role") == "assistant" and start.get("content") == [],
          f"message_start {start}")
    deltas = [d for n, d in events if n == "content_block_delta"]
    check(all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas),
          f"deltas {deltas}")
    joined = "".join(d["delta"]["text"] for d in deltas)
    check(joined.startswith("turns=1 system=no ") and joined.endswith(
        " " + fake_anthropic.history_echo([("user", "Stream it raw")])), joined)
    delta = next(d for n, d in events if n == "message_delta")
    check(delta["delta"].get("stop_reason") == "end_turn"
          and delta.get("usage", {}).get("output_tokens", 0) > 0, f"message_delta {delta}")


def test_anthropic_sdk_tool_loop(ctx):
    """A client tool in Anthropic's form (name, description, input_schema): the
    answer's tool_use block (toolu_ id, name, input dict, stop_reason
    tool_use); the SDK's content sent back with a tool_result block, without
    the session header, lands on the same session and the same CLI process,
    which answers quoting the result. A second round in the same conversation,
    streamed with messages.stream: the SDK assembles the input from the
    input_json_delta events."""
    srv = tool_server(ctx, "messages-tools").start()
    seen = len(ctx.anthropic.messages_records())
    try:
        client = anthropic_client(srv.url())
        tools = [ANTHROPIC_WEATHER_TOOL]
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        sid, m, headers = messages_turn(client, model="claude-sonnet-4-6", tools=tools,
                                        messages=messages)
        check_claude_answer(headers, "the call")
        check_message(m, "claude-sonnet-4-6", "the call", stop_reason="tool_use")
        uses = [b for b in m.content if b.type == "tool_use"]
        check(len(uses) == 1 and m.content[-1].type == "tool_use", f"content {m.content}")
        use = uses[0]
        check(TOOL_ID_RE.match(use.id or "") and use.name == "get_weather"
              and use.input == {"city": "Paris"}, f"the tool_use block {use}")
        check_before_calls(message_text(m), "the call")
        pid = check_one_cli(ctx, srv, None, "while the call is pending")

        messages += [{"role": "assistant", "content": m.content},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                   "content": weather("Paris")}]}]
        got, m, headers = messages_turn(client, model="claude-sonnet-4-6", tools=tools,
                                        messages=messages)
        check(got == sid, f"the tool_result landed on session {got}, not {sid}")
        check(headers.get("x-claude-warm") == "true", f"X-Claude-Warm: {dict(headers)}")
        check_message(m, "claude-sonnet-4-6", "the answer")
        check([b.type for b in m.content] == ["text"]
              and m.content[0].text == f"The tools said: {weather('Paris')}",
              f"content {m.content}")
        check_one_cli(ctx, srv, pid, "after the result")

        messages += [{"role": "assistant", "content": m.content},
                     {"role": "user", "content": "And the weather in Rome?"}]
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1024, tools=tools,
                                    messages=messages) as s:
            events = list(s)
            final = s.get_final_message()
            headers = s.response.headers
        check(headers.get("x-claude-session-id") == sid,
              f"the streamed round answered for session {headers.get('x-claude-session-id')}")
        check_message(final, "claude-sonnet-4-6", "the streamed call", stop_reason="tool_use")
        uses = [b for b in final.content if b.type == "tool_use"]
        check(len(uses) == 1 and uses[0].name == "get_weather"
              and uses[0].input == {"city": "Rome"} and TOOL_ID_RE.match(uses[0].id or ""),
              f"the streamed tool_use {final.content}")
        starts = [e.content_block for e in events if e.type == "content_block_start"
                  and e.content_block.type == "tool_use"]
        check(len(starts) == 1 and starts[0].id == uses[0].id and starts[0].name == "get_weather",
              f"content_block_start of the tool_use: {starts}")
        pieces = [e.partial_json for e in events if e.type == "input_json"]
        check(pieces and json.loads("".join(pieces)) == {"city": "Rome"},
              f"input_json pieces {pieces}")

        messages += [{"role": "assistant", "content": final.content},
                     {"role": "user", "content": [{"type": "tool_result",
                                                   "tool_use_id": uses[0].id,
                                                   "content": [{"type": "text",
                                                                "text": weather("Rome")}]}]}]
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1024, tools=tools,
                                    messages=messages) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        check(text == f"The tools said: {weather('Rome')}" and final.stop_reason == "end_turn",
              f"the streamed answer {text!r}, stop_reason {final.stop_reason!r}")
        check_one_cli(ctx, srv, pid, "after the streamed round")
        recs = fake_records_since(ctx, seen)
        check([r["reply"] for r in recs] == ["tools", "text", "tools", "text"]
              and "mcp__client__get_weather" in recs[0]["tool_names"]
              and recs[1]["tool_results"] == 1 and recs[3]["tool_results"] == 1,
              f"what the fake API saw: {recs}")
        check({r["session_header"] for r in recs} == {sid}, "the CLI changed sessions")
    finally:
        srv.stop()
    check([s for s, _ in access_lines(srv, MESSAGES_PATH)] == [sid] * 4,
          f"access log: {access_lines(srv, MESSAGES_PATH)}")


def test_anthropic_sdk_image(ctx):
    """An image block (base64 PNG) in a user message reaches the model as an
    image; two of them in a streamed request do too."""
    client = anthropic_client(messages_server(ctx).url())
    data = base64.b64encode(tiny_png()).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": data}}
    _, m, _ = messages_turn(client, model="claude-sonnet-4-6", messages=[{
        "role": "user", "content": [image, {"type": "text", "text": "What is in this image?"}]}])
    check_message(m, "claude-sonnet-4-6", "an image")
    check(message_text(m).startswith("turns=1 ")
          and "images=1 media=image/png " in message_text(m), message_text(m))
    check(ctx.anthropic.messages_records()[-1]["images"] == 1,
          ctx.anthropic.messages_records()[-1])
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1024, messages=[{
            "role": "user", "content": [{"type": "text", "text": "Compare these two."},
                                        image, image]}]) as s:
        text = "".join(s.text_stream)
    check("images=2 media=image/png,image/png " in text, text)


def test_anthropic_sdk_errors(ctx):
    """Refusals as the SDK raises them, each in Anthropic's error shape: a wrong
    key in either header (AuthenticationError), a body without max_tokens and
    an unknown model (BadRequestError), an unknown session (NotFoundError),
    count_tokens (BadRequestError that says why), an upstream failure
    (InternalServerError, whole or streamed), and on a server of its own a
    per-IP rate limit (RateLimitError). Nothing refused reaches the model."""
    srv = messages_server(ctx)
    client = anthropic_client(srv.url())
    hello = [{"role": "user", "content": "hello"}]
    since = len(ctx.anthropic.messages_records())

    def create(c=client, **kw):
        kw.setdefault("model", "claude-sonnet-4-6")
        kw.setdefault("max_tokens", 64)
        kw.setdefault("messages", hello)
        return c.messages.create(**kw)

    wrong = "sk-cca-e2e-not-a-configured-key"
    for x_api_key in (False, True):
        what = f"a wrong key in {'X-Api-Key' if x_api_key else 'the SDK default header'}"
        e = expect_raised(anthropic.AuthenticationError, lambda: create(
            anthropic_client(srv.url(), key=wrong, x_api_key=x_api_key)), what)
        message = check_anthropic_error(e, 401, "authentication_error", what)
        check(wrong not in message, f"{what}: the message shows the key: {message!r}")
    status, body = raw_request(srv, "POST", MESSAGES_PATH, auth=None, body=json.dumps(
        {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": hello}).encode())
    check(status == 401 and json.loads(body)["error"]["type"] == "authentication_error",
          f"no key: {status} {body!r}")

    # The SDK's typed create cannot leave max_tokens out: a raw post can.
    e = expect_raised(anthropic.BadRequestError, lambda: client.post(
        MESSAGES_PATH, cast_to=object, body={"model": "claude-sonnet-4-6", "messages": hello}),
        "no max_tokens")
    message = check_anthropic_error(e, 400, "invalid_request_error", "no max_tokens")
    check("max_tokens" in message, f"no max_tokens: {message!r}")

    e = expect_raised(anthropic.BadRequestError, lambda: create(model="llama-3-70b"),
                      "an unknown model")
    message = check_anthropic_error(e, 400, "invalid_request_error", "an unknown model")
    check("llama-3-70b" in message, f"an unknown model: {message!r}")

    def unknown_model_stream():
        with client.messages.stream(model="llama-3-70b", max_tokens=64, messages=hello) as s:
            s.until_done()

    e = expect_raised(anthropic.BadRequestError, unknown_model_stream,
                      "an unknown model, streamed")
    check_anthropic_error(e, 400, "invalid_request_error", "an unknown model, streamed")

    e = expect_raised(anthropic.NotFoundError, lambda: create(
        extra_headers={"X-Claude-Session-ID": str(uuid.uuid4())}), "an unknown session")
    check_anthropic_error(e, 404, "not_found_error", "an unknown session")

    e = expect_raised(anthropic.BadRequestError, lambda: client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=hello), "count_tokens")
    message = check_anthropic_error(e, 400, "invalid_request_error", "count_tokens")
    check("token counting is not supported" in message.lower(), f"count_tokens: {message!r}")
    check(fake_records_since(ctx, since) == [],
          f"a refused request reached the model: {fake_records_since(ctx, since)}")

    # The upstream fails (the fake answers 529): a whole answer, then a stream
    # that fails before its first event.
    started = time.monotonic()
    e = expect_raised(anthropic.InternalServerError, lambda: create(
        messages=[{"role": "user", "content": "FAIL-529"}]), "an upstream failure")
    check_anthropic_error(e, 502, "api_error", "an upstream failure")

    def failed_stream():
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=[
                {"role": "user", "content": "FAIL-529 streamed"}]) as s:
            s.until_done()

    e = expect_raised(anthropic.APIStatusError, failed_stream, "an upstream failure, streamed")
    check_anthropic_error(e, 502, "api_error", "an upstream failure, streamed")
    check(time.monotonic() - started < 30, "the upstream failures took too long")

    # Two requests a window: the third is refused, whatever the route.
    limited = Server(ctx, "messages-ratelimit", extra_env={"RATE_LIMIT_PER_IP": "2"}).start()
    try:
        lc = anthropic_client(limited.url())
        for n in (1, 2):
            expect_raised(anthropic.BadRequestError, lambda: lc.messages.count_tokens(
                model="claude-sonnet-4-6", messages=hello), f"request {n} under the limit")
        started = time.monotonic()
        e = expect_raised(anthropic.RateLimitError, lambda: create(c=lc), "over the rate limit")
        check(time.monotonic() - started < 5, "the rate-limited request was slow")
        check_anthropic_error(e, 429, "rate_limit_error", "over the rate limit")
        check(e.response.headers.get("retry-after", "").isdigit(),
              f"over the rate limit: headers {dict(e.response.headers)}")
    finally:
        check(limited.stop() == 0, "the rate-limited server did not exit 0")


def scrape_metrics(srv):
    """GET /metrics with the server's key: {series: value}."""
    req = urllib.request.Request(srv.url("/metrics"),
                                 headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        check(resp.headers.get("Content-Type", "").startswith("text/plain"), dict(resp.headers))
        text = resp.read().decode()
    return text, metric_samples(text)


def test_metrics_after_the_suite(ctx):
    """Last: the main server's /metrics after every test that used it (chat,
    streams, sessions, a restart, tools, the Responses API): Claude Code
    requests and answered turns counted, their cost summed by model, the
    histogram's count equal to its requests, and nothing left streaming or
    waiting. Prints the series that moved, for the closing note."""
    text, samples = scrape_metrics(ctx.main)
    moved = [line for line in text.splitlines()
             if line and not line.startswith("#") and "_bucket" not in line
             and not line.endswith(" 0") and not line.endswith(" 0.000000")]
    print("    /metrics of the main server after the suite:")
    for line in moved:
        print("      " + line)
    requests = {k: v for k, v in samples.items() if k.startswith("claude_cli_api_requests_total")}
    claude_ok = sum(v for k, v in requests.items() if 'mode="claude-code"' in k and '"2xx"' in k)
    check(claude_ok >= 1, f"claude-code 2xx requests {claude_ok}")
    answered = samples.get('claude_cli_api_turns_total{cause="answered"}', 0)
    check(answered >= 1, f"answered turns {answered}")
    cost = sum(v for k, v in samples.items() if k.startswith("claude_cli_api_cost_usd_total"))
    check(cost > 0, "no cost counted")
    for mode in ("claude-code", "passthrough", "none"):
        count = samples.get(f'claude_cli_api_request_duration_seconds_count{{mode="{mode}"}}', 0)
        counted = sum(v for k, v in requests.items() if f'mode="{mode}"' in k)
        # The scrape itself is counted only after it is written.
        check(count == counted, f"{mode}: histogram count {count}, requests {counted}")
    check(samples.get("claude_cli_api_sse_streams_open") == 0, "a stream left open")
    check(samples.get("claude_cli_api_claude_processes_queued") == 0, "requests still queued")


TESTS = [
    test_passthrough_non_stream,
    test_passthrough_stream,
    test_passthrough_upstream_401,
    test_claude_non_stream,
    test_claude_stream,
    test_cache_counts_in_every_api,
    test_three_turn_session,
    test_system_prompt,
    test_model_alias,
    test_unknown_session_404,
    test_session_gone_from_disk_404,
    test_busy_session_then_disconnect,
    test_upstream_overloaded_502,
    test_upstream_401_fails_fast,
    test_oauth_token_only,
    test_restart_between_turns,
    test_warm_sdk_conversation,
    test_warm_langchain_whole_histories,
    test_sigterm_during_stream,
    test_env_drop_in,
    test_langchain_passthrough,
    test_langchain_claude_session,
    test_node_sdk_stream,
    test_relay_responses,
    test_relay_responses_sse_as_sent,
    test_relay_embeddings,
    test_relay_models_retrieve,
    test_relay_file_upload_rss,
    test_relay_audio_speech,
    test_relay_delete,
    test_relay_key_rules,
    test_relay_path_traversal,
    test_claude_base_url_chat,
    test_claude_base_url_models,
    test_oversize_bodies_get_their_413,
    test_tools_sdk_loop,
    test_tools_change_between_turns,
    test_tools_sdk_stream,
    test_tools_parallel_calls,
    test_image_data_url,
    test_response_format_json_schema,
    test_agents_sdk_tool_run,
    test_langchain_bind_tools_loop,
    test_responses_sdk_create,
    test_responses_sdk_stream,
    test_responses_text_format,
    test_responses_previous_response_chain_warm,
    test_responses_function_tool_loop,
    test_agents_sdk_responses_claude,
    test_agents_sdk_responses_passthrough,
    test_anthropic_sdk_create,
    test_anthropic_sdk_stream,
    test_anthropic_sdk_tool_loop,
    test_anthropic_sdk_image,
    test_anthropic_sdk_errors,
    test_metrics_after_the_suite,
]

# The client matrix (issue 28): each module lists its tests in CLIENT_TESTS,
# run before the metrics test so that it sees their requests too.
for _module in ("clients_node", "clients_py", "turn_settings", "allowance_e2e"):
    try:
        _tests = __import__(_module).CLIENT_TESTS
    except ModuleNotFoundError as _missing:
        if _missing.name != _module:
            raise
        continue
    TESTS[-1:-1] = _tests


def stop_leftovers(ctx):
    """Stops whatever this run started that still runs: servers, then any
    claude process working under our temp directory (by PID)."""
    for srv in Server.instances:
        if srv.proc and srv.proc.poll() is None:
            srv.proc.send_signal(signal.SIGTERM)
            try:
                srv.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                srv.proc.kill()
                srv.proc.wait()
    leaked = claude_processes_under(ctx.tmp)
    for pid in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return leaked


def main():
    only = sys.argv[1:] or None
    server_bin = os.environ.get("SERVER_BIN",
                                "target/x86_64-unknown-linux-gnu/release/claude-cli-api")
    if not os.path.isabs(server_bin):
        server_bin = os.path.join(ROOT, server_bin)
    if not os.access(server_bin, os.X_OK):
        sys.exit(f"server binary not found: {server_bin} (build it, or set SERVER_BIN)")
    cli = cli_path()
    version = subprocess.run([cli, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    print(f"server: {server_bin}\nclaude: {cli} ({version})\nopenai (python): "
          f"{openai.__version__}, anthropic (python): {anthropic.__version__}", flush=True)

    tmp = tempfile.mkdtemp(prefix="e2e-")
    verbose = bool(os.environ.get("E2E_VERBOSE"))
    fake_api = fake_anthropic.start(quiet=not verbose,
                                    dump_dir=os.environ.get("E2E_DUMP_DIR"))
    oai = fake_openai.start(quiet=not verbose)
    ctx = Ctx(tmp, cli, server_bin, fake_api, oai)
    suite = Suite(only=only)
    try:
        ctx.main = Server(ctx, "main", extra_env={"WARM_MIN_FREE_MB": "0"}).start()
        for test in TESTS:
            suite.run(test.__name__[5:], test, ctx)
        for srv in (ctx.main, ctx.relay, ctx.messages_srv):
            status = srv.stop() if srv else 0
            if status != 0:
                suite.failed += 1
                print(f"FAIL {srv.name} server exited {status}")
    except Exception as e:  # a failure outside any test (the server did not start)
        suite.failed += 1
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
    finally:
        leaked = stop_leftovers(ctx)
        if leaked:
            suite.failed += 1
            print(f"FAIL claude processes were left running: {leaked}")
        fake_api.close()
        oai.close()
        if suite.failed:
            for srv in Server.instances:
                for path in srv.logs:
                    print(f"--- tail of {os.path.basename(path)} ---")
                    print(srv.log_tail(path=path), end="")
        if os.environ.get("E2E_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return suite.summary()


if __name__ == "__main__":
    sys.exit(main())
