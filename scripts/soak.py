#!/usr/bin/env python3
"""A bounded soak (issue 29, point 6): mixed clients against the release
binary with the real `claude` CLI behind it, and scripts/e2e/fake_anthropic.py
behind that, for SOAK_SECONDS (120 by default), then a SIGTERM.

    .cache/e2e/venv/bin/python scripts/soak.py        # or: make soak

SOAK_WORKERS client threads (6, as many as the pool has processes), spread
over three client keys, each repeat scenarios picked at random:

- loop      an agent loop that finishes: a weather call (chat with the
            OpenAI SDK, plain or streamed; the Messages API with Anthropic's
            SDK; the Responses API with previous_response_id), its result
            sent back, until the answer is text. A result whose turn was
            given up meanwhile reaches the fake as text naming the tool,
            which it calls again: one more round. A request bringing results
            must be served: 429 session_busy there is a violation.
- forced    a forced call never answered: chat with a `final_result` tool
            and tool_choice required (pydantic-ai's output_type), the
            Messages API with a `City` tool forced (LangChain's
            with_structured_output), the Responses API with tool_choice
            required.
- abandon   a stream (SLOW-STREAM: the fake streams for 15 s) closed at a
            random point (before or after its headers, after 1-12 events), on chat,
            Messages or Responses; then, 0-0.5 s after the close, the
            session's next turn, which must be answered, never refused
            session_busy (SESSIONS.md: the server finds the client gone).
- late      a forced call, then waiting until the server gave its turn up
            (by a bound or TOOL_RESULT_TIMEOUT_MS), then its result: 200, the
            same session, an answer (chat or Messages API).
- delete    DELETE /v1/sessions/{id}: of an idle session (200, then 404 for
            its next turn); while a stream runs on it (409 session_busy, the
            stream abandoned, then 200 within moments); while its turn waits
            for a forced call's result (409, or 200 when already given up;
            then a new question declines the call, and the DELETE is 200).
- multi     a conversation of 3-5 turns resending the whole history without
            a session header: one session throughout, and the fake API's echo
            (`hist=`) proves the CLI sent every earlier message, in order.
- plain     one question, one answer.

Every request has a timeout (60 s). Anything refused that should have been served is
a violation: a 5xx, a 429 (capacity_exceeded, a rate limit, or session_busy
outside the two places above), an unexpected 4xx, a wrong session, a broken
answer. A sampler (every SOAK_SAMPLE_S, 1 s) reads /health, /metrics, the
sessions of each key and /proc: waiting turns never above MAX_TOOL_WAITS,
live CLI processes never above MAX_CONCURRENT_PROCESSES, no turn left waiting
for a result past TOOL_RESULT_TIMEOUT_MS + SOAK_SLACK_S, no session busy with
no request of ours on it for long, each CLI's RSS and peak RSS (VmRSS, VmHWM)
under SOAK_CLI_RSS_MB (250: DEPLOYMENT.md has about 200-210 MB per process,
240 MB for a long conversation) and the server's under SOAK_SERVER_RSS_MB (12,
DEPLOYMENT.md's peak for the server without its allocator settings; the soak
runs it with them, as the unit does).

After the load: every waiting turn must be gone within
TOOL_RESULT_TIMEOUT_MS + slack; then a stream and a waiting forced call are
started and the server gets SIGTERM: it must exit 0 in time, the stream must
end with stream_error and [DONE], and no claude process (nor bridge) it
started may outlive it (by PID, start time and working directory, read from
/proc). Last, every session's CLI
transcript (HOME/.claude/projects/*/<id>.jsonl) must be whole JSONL naming
its session, with the prompts that were sent to it.

Prints a table by request kind (count, statuses, p50/p95) and the figures;
exits 1 on any violation. Everything listens on 127.0.0.1; only the fake, the
server and (through it) the CLIs are started, and they are stopped by PID.
SOAK_KEEP=1 keeps the temp directory (server log, HOME, state); it is kept
anyway when something failed. SERVER_BIN names the binary (default the
static release build), E2E_CLAUDE the CLI (default the e2e cache's).
"""

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "e2e"))
import fake_anthropic  # noqa: E402
from common import (ROOT, all_pids, assistant_turn, cli_path, free_port,  # noqa: E402
                    metric_samples, proc_exe, proc_stat)

try:
    import anthropic
    import openai
except ImportError:
    sys.exit("openai and anthropic are missing: run scripts/e2e/setup.sh and use "
             ".cache/e2e/venv/bin/python")


def env_num(name, default, kind=float):
    value = os.environ.get(name)
    return kind(value) if value not in (None, "") else default


SECONDS = env_num("SOAK_SECONDS", 120.0)
WORKERS = env_num("SOAK_WORKERS", 6, int)
SAMPLE_S = env_num("SOAK_SAMPLE_S", 1.0)
SLACK_S = env_num("SOAK_SLACK_S", 5.0)
CLI_RSS_MB = env_num("SOAK_CLI_RSS_MB", 250.0)
SERVER_RSS_MB = env_num("SOAK_SERVER_RSS_MB", 12.0)
SEED = env_num("SOAK_SEED", int(time.time()), int)
REQUEST_TIMEOUT_S = 60  # any one request of a client, at most

POOL = 6
TOOL_RESULT_TIMEOUT_MS = 20000
KEEPALIVE_MS = 1000
SETTINGS = {
    "MAX_CONCURRENT_PROCESSES": str(POOL),
    # Defaults but for the per-key bound (a quarter of 6 is 1): at 2, the
    # three keys' waiting turns can exceed MAX_TOOL_WAITS (3, the default
    # half), so every give-up cause gets its turn.
    "MAX_TOOL_WAITS_PER_KEY": "2",
    "TOOL_RESULT_TIMEOUT_MS": str(TOOL_RESULT_TIMEOUT_MS),
    "RATE_LIMIT_PER_IP": "0",
    "RATE_LIMIT_PER_SESSION": "0",
    "WARM_MIN_FREE_MB": "0",
    "STREAM_KEEPALIVE_MS": str(KEEPALIVE_MS),
    "OPENAI_PASSTHROUGH_ENABLED": "false",
    # The unit's allocator settings (DEPLOYMENT.md, "The allocator").
    "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
    "MALLOC_ARENA_MAX": "2",
}
MAX_TOOL_WAITS = max(1, POOL // 2)
SHUTDOWN_TIMEOUT_S = 10.0  # the server's default SHUTDOWN_TIMEOUT_MS
KILL_GRACE_S = 5.0  # and CLAUDE_KILL_GRACE_MS
# Their last four characters tell them apart in the server's log (sk-cca-****aaaa).
KEYS = ["sk-cca-soak-0123456789-aaaa", "sk-cca-soak-0123456789-bbbb",
        "sk-cca-soak-0123456789-cccc"]
ANTHROPIC_KEY = "sk-ant-soak-good-key"
MODEL = "claude-sonnet-4-6"
CITIES = ["Paris", "Rome", "Oslo", "Berlin", "Madrid", "Vienna", "Lisbon", "Prague"]
# How long a session may stay busy after the stream on it was abandoned, or
# after its turn ended, before the next turn or a DELETE must get through:
# the interrupt's grace (CLAUDE_KILL_GRACE_MS) and a little more.
FREE_GRACE_S = KILL_GRACE_S + 3.0

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CITY_SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string"}, "population": {"type": "integer"},
    "capital": {"type": "boolean"}}, "required": ["city", "population", "capital"]}
FINAL_RESULT_TOOL = {"type": "function", "function": {
    "name": "final_result", "description": "The final response which ends this conversation",
    "parameters": CITY_SCHEMA}}
RESP_WEATHER_TOOL = {"type": "function", "name": "get_weather",
                     "description": "The weather in a city",
                     "parameters": WEATHER_TOOL["function"]["parameters"]}
RESP_FINAL_RESULT_TOOL = {"type": "function", "name": "final_result",
                          "description": "The final response", "parameters": CITY_SCHEMA}
ANTHROPIC_WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city",
                          "input_schema": WEATHER_TOOL["function"]["parameters"]}
ANTHROPIC_CITY_TOOL = {"name": "City", "description": "A city.", "input_schema": CITY_SCHEMA}


def weather(city):
    return f"sunny 21C in {city}"


# --- bookkeeping ---------------------------------------------------------------


class Book:
    """Everything the workers and the sampler record, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (name, label, seconds)
        self.violations = []
        self.sessions = {}  # sid -> dict, see session()
        self.notes = {}  # counters of things that are allowed but worth a figure
        self.waits = []  # seconds a forced call's turn waited before the server let it go
        self.freed = []  # seconds until a session was free after an abandoned stream
        self.samples = []

    def request(self, name, label, seconds):
        with self.lock:
            self.requests.append((name, label, seconds))

    def violation(self, text):
        with self.lock:
            self.violations.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(f"VIOLATION {text}", flush=True)

    def note(self, what, n=1):
        with self.lock:
            self.notes[what] = self.notes.get(what, 0) + n

    def session(self, sid, key=None, kind=None):
        with self.lock:
            s = self.sessions.get(sid)
            if s is None:
                s = {"key": key, "kind": kind, "prompts": [], "deleted": False,
                     "pending_since": None, "inflight": 0, "answered": 0,
                     "busy_since": None, "maybe_dropped": False, "waited": None}
                self.sessions[sid] = s
            return s

    def update(self, sid, **kw):
        with self.lock:
            self.sessions[sid].update(kw)


BOOK = Book()


class Inflight:
    """Marks a request of ours running on a session (for the sampler, which
    must not take a busy session for a stuck one while we use it)."""

    def __init__(self, sid):
        self.sid = sid

    def __enter__(self):
        if self.sid:
            with BOOK.lock:
                BOOK.sessions[self.sid]["inflight"] += 1
        return self

    def __exit__(self, *exc):
        if self.sid:
            with BOOK.lock:
                BOOK.sessions[self.sid]["inflight"] -= 1
                BOOK.sessions[self.sid]["busy_since"] = None


class Failed(Exception):
    """A scenario cannot go on (its violation is already recorded)."""


def label_of(exc):
    """A short label for an exception of an SDK call."""
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        code = getattr(exc, "code", None)
        if not code and isinstance(exc, anthropic.APIStatusError):
            # Anthropic's error shape has no code: the type, and for a busy
            # session (429 rate_limit_error like the limits) its message.
            body = exc.body if isinstance(exc.body, dict) else {}
            err = body.get("error") or {}
            busy = exc.status_code == 429 and "session is busy" in str(err.get("message")).lower()
            code = "session_busy" if busy else err.get("type")
        return f"{exc.status_code} {code or ''}".strip()
    if isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError)):
        return "client timeout"
    if isinstance(exc, (openai.APIConnectionError, anthropic.APIConnectionError)):
        return "connection error"
    return f"{type(exc).__name__}"


def call(name, fn, allowed=("200",), what=""):
    """Runs one request (fn returns (label, value)); records it; a label
    outside `allowed` is a violation and raises Failed."""
    started = time.monotonic()
    try:
        label, value = fn()
    except Failed:
        raise
    except Exception as e:  # every failure of a request is reported the same way
        label, value = label_of(e), e
    took = time.monotonic() - started
    BOOK.request(name, label, took)
    if label not in allowed:
        detail = value if isinstance(value, Exception) else ""
        BOOK.violation(f"{name}: {label} after {took:.2f}s (expected {'/'.join(allowed)})"
                       f" {what} {str(detail)[:300]}")
        raise Failed(name)
    return label, value


def check(cond, text):
    if not cond:
        BOOK.violation(text)
        raise Failed(text)


# --- the server and its processes --------------------------------------------




def start_time(pid):
    """The process's start time in clock ticks (tells a reused PID apart)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    return int(data[data.rfind(")") + 2:].split()[19])


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cwd_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def descendants(root):
    """Live descendants of `root` (not zombies), by walking /proc once."""
    kids = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[0] != "Z":
            kids.setdefault(st[1], []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Server:
    def __init__(self, server_bin, cli, fake, tmp):
        self.bin = server_bin
        self.cli = cli
        self.fake = fake
        self.tmp = tmp
        self.home = os.path.join(tmp, "home")
        self.state = os.path.join(tmp, "state")
        self.work = os.path.join(tmp, "work")
        for d in (self.home, self.state):
            os.makedirs(d, mode=0o700)
        self.log_path = os.path.join(tmp, "server.log")
        self.port = free_port()
        self.proc = None

    def env(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": self.home,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_FORMAT": "json",
            "API_KEYS": ",".join(KEYS),
            "STATE_DIR": self.state,
            "CLAUDE_WORK_DIR": self.work,
            "CLAUDE_PATH": self.cli,
            "ANTHROPIC_BASE_URL": self.fake.url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        env.update(SETTINGS)
        return env

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.bin], env=self.env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd=self.home)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} at start")
            try:
                if raw("GET", "/health", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not answer /health within 15 s")

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_events(self):
        out = []
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        out.append({"level": "raw", "msg": line.rstrip()})
        except OSError:
            pass
        return out


SERVER = None  # set in main


def raw(method, path, body=None, key=KEYS[0], headers=None, timeout=REQUEST_TIMEOUT_S):
    """One plain HTTP request: (status, headers as a lower-case dict, JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", SERVER.port, timeout=timeout)
    try:
        h = {"Authorization": f"Bearer {key}"} if key else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
    finally:
        conn.close()


def raw_label(status, payload):
    code = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            code = err.get("code") or err.get("type")
    return f"{status} {code or ''}".strip()


# --- clients -------------------------------------------------------------------


class Client:
    """One worker's clients, all on one key."""

    def __init__(self, key, rng):
        self.key = key
        self.rng = rng
        self.oai_header = openai.OpenAI(base_url=SERVER.url("/v1"), api_key=key, max_retries=0,
                                        timeout=REQUEST_TIMEOUT_S,
                                        default_headers={"X-Claude-Code": "true"})
        self.oai_base = openai.OpenAI(base_url=SERVER.url("/claude/v1"), api_key=key,
                                      max_retries=0, timeout=REQUEST_TIMEOUT_S)
        self.ant = anthropic.Anthropic(base_url=SERVER.url(), api_key=key, max_retries=0,
                                       timeout=REQUEST_TIMEOUT_S)

    def oai(self):
        """The header route (/v1 + X-Claude-Code) or the /claude/v1 base URL."""
        return self.rng.choice([self.oai_header, self.oai_base])

    def chat(self, messages, sid=None, **kw):
        """A chat completion: (label, (sid, completion, headers))."""
        headers = {"X-Claude-Session-ID": sid} if sid else {}
        r = self.oai().chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, extra_headers=headers, **kw)
        return "200", (r.headers.get("x-claude-session-id"), r.parse(), r.headers)

    def chat_stream(self, messages, sid=None, **kw):
        """A streamed chat completion joined: (label, (sid, text, calls, finish))."""
        headers = {"X-Claude-Session-ID": sid} if sid else {}
        r = self.oai().chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, extra_headers=headers, stream=True, **kw)
        text, calls, finish = [], {}, None
        with r.parse() as stream:
            for chunk in stream:
                for ch in chunk.choices:
                    text.append(ch.delta.content or "")
                    finish = ch.finish_reason or finish
                    for d in ch.delta.tool_calls or []:
                        c = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
                        c["id"] = d.id or c["id"]
                        if d.function:
                            c["name"] = d.function.name or c["name"]
                            c["arguments"] += d.function.arguments or ""
        return "200", (r.headers.get("x-claude-session-id"), "".join(text),
                       [calls[i] for i in sorted(calls)], finish)

    def messages(self, messages, sid=None, **kw):
        headers = {"X-Claude-Session-ID": sid} if sid else {}
        r = self.ant.messages.with_raw_response.create(
            model=MODEL, max_tokens=1024, messages=messages, extra_headers=headers, **kw)
        return "200", (r.headers.get("x-claude-session-id"), r.parse(), r.headers)

    def responses(self, **kw):
        r = self.oai_base.responses.with_raw_response.create(model=MODEL, **kw)
        return "200", (r.headers.get("x-claude-session-id"), r.parse(), r.headers)


def new_session(sid, client, kind, prompt=None):
    check(bool(sid), f"{kind}: an answer without X-Claude-Session-ID")
    s = BOOK.session(sid, client.key, kind)
    if prompt:
        with BOOK.lock:
            s["prompts"].append(prompt)
    return sid


def add_prompt(sid, prompt):
    with BOOK.lock:
        BOOK.sessions[sid]["prompts"].append(prompt)


def tag(rng):
    return f"{rng.randrange(16 ** 6):06x}"


def chat_text(c):
    return c.choices[0].message.content or ""




# --- scenarios -----------------------------------------------------------------


def scenario_plain(c):
    prompt = f"Hello, plain question {tag(c.rng)}."
    _, (sid, comp, _) = call("plain chat", lambda: c.chat([{"role": "user", "content": prompt}]))
    new_session(sid, c, "plain", prompt)
    check(chat_text(comp).startswith("turns=1 "), f"plain: answer {chat_text(comp)!r}")
    BOOK.update(sid, answered=1)


def pending(sid, on):
    BOOK.update(sid, pending_since=time.monotonic() if on else None)


def let_go(sid, now):
    """The server no longer holds the session's waiting turn: how long it
    waited is a figure (once, whoever notices first)."""
    with BOOK.lock:
        s = BOOK.sessions[sid]
        if s["pending_since"] is not None:
            s["waited"] = now - s["pending_since"]
            BOOK.waits.append(s["waited"])
            s["pending_since"] = None


def follow_up(c, name, sid, since, fn):
    """A request that brings tool results for the session's turn, answered
    since `since` (monotonic): it must be served. A 429 session_busy is a
    violation; it is then retried for FREE_GRACE_S, to tell how long the
    session stayed refused (for the report), and the scenario goes on with
    the answer of the retry."""
    with Inflight(sid):
        pending(sid, False)
        label, value = call(name, fn, allowed=("200", "429 session_busy"),
                            what=f"session {sid}")
        if label == "200":
            return value
        with BOOK.lock:
            let_go_seen = BOOK.sessions[sid]["waited"]
        refused_at = time.monotonic()
        while label != "200" and time.monotonic() - refused_at < FREE_GRACE_S:
            time.sleep(0.25)
            label, value = call(name + " (retry)", fn, allowed=("200", "429 session_busy"),
                                what=f"session {sid}")
        seen = (f"saw its turn let go after {let_go_seen:.1f}s" if let_go_seen
                else "had not seen its turn let go")
        then = (f"served {time.monotonic() - refused_at:.2f}s later on a retry" if label == "200"
                else f"still refused after {FREE_GRACE_S:.0f}s")
        BOOK.violation(f"{name}: 429 session_busy for the results of session {sid}, "
                       f"{refused_at - since:.2f}s after its call was answered (the sampler "
                       f"{seen}); {then}")
        if label != "200":
            raise Failed(name)
        return value


def scenario_loop(c):
    """An agent loop: each call answered with its result, until an answer
    in text (a result that came after its turn was given up reaches the
    fake as text naming the tool, which it then calls again: another round)."""
    city = c.rng.choice(CITIES)
    prompt = f"What is the weather in {city}? ({tag(c.rng)})"
    variant = c.rng.choice(["chat", "chat-stream", "messages", "responses"])
    name = f"loop {variant}"
    sid, text, finish = None, "", None
    msgs = [{"role": "user", "content": prompt}]
    prev = None  # the Responses API's previous_response_id
    for rnd in range(4):
        # One model turn: the calls it asks for, as (id, argument city).
        if variant == "chat":
            fn = (lambda: c.chat(msgs, tools=[WEATHER_TOOL]))
        elif variant == "chat-stream":
            fn = (lambda: c.chat_stream(msgs, tools=[WEATHER_TOOL]))
        elif variant == "messages":
            fn = (lambda: c.messages(msgs, tools=[ANTHROPIC_WEATHER_TOOL]))
        else:
            fn = (lambda: c.responses(input=msgs, tools=[RESP_WEATHER_TOOL],
                                      **({"previous_response_id": prev} if prev else {})))
        step = f"{name} call" if rnd == 0 else f"{name} result"
        if sid is None:
            _, value = call(step, fn)
        else:
            value = follow_up(c, step, sid, answered_at, fn)
        got = value[0]
        if sid is None:
            sid = new_session(got, c, "loop", prompt)
        else:
            check(got == sid, f"{name}: round {rnd + 1} answered for session {got}, not {sid}")
        if variant == "chat":
            comp = value[1]
            text, finish = chat_text(comp), comp.choices[0].finish_reason
            calls = [(tc.id, json.loads(tc.function.arguments).get("city"))
                     for tc in comp.choices[0].message.tool_calls or []]
            if calls:
                msgs.append(assistant_turn(comp.choices[0].message))
        elif variant == "chat-stream":
            _, text, streamed, finish = value
            calls = [(tc["id"], json.loads(tc["arguments"]).get("city")) for tc in streamed]
            if calls:
                msgs.append({"role": "assistant", "content": text or None, "tool_calls": [
                    {"id": tc["id"], "type": "function",
                     "function": {"name": tc["name"], "arguments": tc["arguments"]}}
                    for tc in streamed]})
        elif variant == "messages":
            m = value[1]
            text = "".join(b.text for b in m.content if b.type == "text")
            finish = {"end_turn": "stop", "tool_use": "tool_calls"}.get(m.stop_reason)
            calls = [(b.id, b.input.get("city")) for b in m.content if b.type == "tool_use"]
            if calls:
                msgs.append({"role": "assistant", "content": m.content})
        else:
            r = value[1]
            text = r.output_text
            calls = [(o.call_id, json.loads(o.arguments).get("city"))
                     for o in r.output if o.type == "function_call"]
            finish = "tool_calls" if calls else "stop"
            prev, msgs = r.id, []
        if not calls:
            break
        if rnd:
            BOOK.note("loop: results after a give-up, answered (and called again)")
        check(finish == "tool_calls", f"{name}: round {rnd + 1}: calls {calls} with finish "
              f"{finish!r}")
        answered_at = time.monotonic()
        pending(sid, True)
        time.sleep(c.rng.uniform(0, 2.0))  # the agent runs its function
        if variant == "messages":
            msgs.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": i, "content": weather(a)}
                for i, a in calls]})
        elif variant == "responses":
            msgs = [{"type": "function_call_output", "call_id": i, "output": weather(a)}
                    for i, a in calls]
        else:
            msgs += [{"role": "tool", "tool_call_id": i, "content": weather(a)}
                     for i, a in calls]
    check(text and finish == "stop", f"{name}: after {rnd + 1} rounds: answer {text!r}, "
          f"finish {finish!r} (session {sid})")
    BOOK.update(sid, answered=rnd + 1)
    BOOK.note(f"loop: finished in {rnd + 1} round(s)")
    BOOK.note("loop: last result answered live" if text.startswith("The tools said: ")
              else "loop: last result after a give-up (as text)")


def forced_call(c, name_prefix, variant):
    """A forced call, left waiting; returns (sid, (api, what answers it later))."""
    city = c.rng.choice(CITIES)
    prompt = f"Describe {city} as a City. ({tag(c.rng)})"
    name = f"{name_prefix} {variant}"
    if variant == "chat":
        msgs = [{"role": "user", "content": prompt}]
        _, (sid, comp, _) = call(name, lambda: c.chat(msgs, tools=[FINAL_RESULT_TOOL],
                                                      tool_choice="required"))
        new_session(sid, c, name_prefix, prompt)
        calls = comp.choices[0].message.tool_calls or []
        check(len(calls) == 1 and calls[0].function.name == "final_result"
              and json.loads(calls[0].function.arguments).get("city") == city,
              f"{name}: the call {comp.choices[0].message}")
        later = ("chat", msgs + [assistant_turn(comp.choices[0].message),
                                 {"role": "tool", "tool_call_id": calls[0].id,
                                  "content": "Final result processed."}])
    elif variant == "messages":
        msgs = [{"role": "user", "content": prompt}]
        _, (sid, m, _) = call(name, lambda: c.messages(
            msgs, tools=[ANTHROPIC_CITY_TOOL], tool_choice={"type": "tool", "name": "City"}))
        new_session(sid, c, name_prefix, prompt)
        uses = [b for b in m.content if b.type == "tool_use"]
        check(len(uses) == 1 and uses[0].name == "City" and uses[0].input.get("city") == city,
              f"{name}: content {m.content}")
        later = ("messages", msgs + [
            {"role": "assistant", "content": m.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id,
                                          "content": "Final result processed."}]}])
    else:
        _, (sid, r, _) = call(name, lambda: c.responses(
            input=prompt, tools=[RESP_FINAL_RESULT_TOOL], tool_choice="required"))
        new_session(sid, c, name_prefix, prompt)
        fcalls = [o for o in r.output if o.type == "function_call"]
        check(len(fcalls) == 1 and fcalls[0].name == "final_result", f"{name}: {r.output}")
        later = ("responses", (r.id, fcalls[0].call_id))
    pending(sid, True)
    return sid, later


def scenario_forced(c):
    forced_call(c, "forced", c.rng.choice(["chat", "messages", "responses"]))


def session_busy(c, sid):
    """GET /v1/sessions/{id}: its `busy`, or None when it is gone."""
    status, _, body = raw("GET", f"/v1/sessions/{sid}", key=c.key, timeout=10)
    if status == 404:
        return None
    check(status == 200, f"GET session {sid}: {status} {body}")
    return bool(body.get("busy"))


def scenario_late(c):
    variant = c.rng.choice(["chat", "messages"])
    sid, (how, msgs) = forced_call(c, "late forced", variant)
    since = time.monotonic()
    bound = TOOL_RESULT_TIMEOUT_MS / 1000 + SLACK_S
    while True:
        busy = session_busy(c, sid)
        if not busy:
            break
        if time.monotonic() - since > bound:
            BOOK.violation(f"late {variant}: session {sid} still waits for its call after "
                           f"{time.monotonic() - since:.1f}s (TOOL_RESULT_TIMEOUT_MS "
                           f"{TOOL_RESULT_TIMEOUT_MS})")
            raise Failed("waiting past the bound")
        time.sleep(0.5)
    let_go(sid, time.monotonic())
    if how == "chat":
        got, comp, _ = follow_up(c, f"late {variant} result", sid, since,
                                 lambda: c.chat(msgs, tools=[FINAL_RESULT_TOOL]))
        text = chat_text(comp)
        again = bool(comp.choices[0].message.tool_calls)
    else:
        got, m, _ = follow_up(c, f"late {variant} result", sid, since,
                              lambda: c.messages(msgs, tools=[ANTHROPIC_CITY_TOOL]))
        text = "".join(b.text for b in m.content if b.type == "text")
        again = any(b.type == "tool_use" for b in m.content)
    if again:
        # The output tool is still offered, so the fake forces it again: a
        # client like pydantic-ai would stop here, another call unanswered.
        pending(sid, True)
    check(got == sid, f"late {variant}: the late result landed on session {got}, not {sid}")
    check(bool(text) or again, f"late {variant}: an empty answer")
    BOOK.update(sid, answered=2)
    BOOK.note("late: answered with another forced call" if again
              else "late: answered in text")


def stream_request(c, api, sid, prompt):
    """(path, body, headers) of a streamed request on `api`."""
    headers = {"X-Claude-Session-ID": sid} if sid else {}
    if api == "chat":
        return ("/claude/v1/chat/completions",
                {"model": MODEL, "stream": True,
                 "messages": [{"role": "user", "content": prompt}]}, headers)
    if api == "messages":
        return ("/v1/messages", {"model": MODEL, "stream": True, "max_tokens": 1024,
                                 "messages": [{"role": "user", "content": prompt}]}, headers)
    return ("/claude/v1/responses", {"model": MODEL, "stream": True, "input": prompt}, headers)


class OpenStream:
    """A stream on a raw connection, to be closed at a point of our choosing."""

    def __init__(self, c, api, sid, prompt, read_headers=True):
        path, body, headers = stream_request(c, api, sid, prompt)
        self.conn = http.client.HTTPConnection("127.0.0.1", SERVER.port,
                                               timeout=REQUEST_TIMEOUT_S)
        headers = {"Authorization": f"Bearer {c.key}", "Content-Type": "application/json",
                   **headers}
        self.conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        self.resp = None
        self.events = 0
        if read_headers:
            self.resp = self.conn.getresponse()

    def status(self):
        return self.resp.status

    def session(self):
        return self.resp.getheader("X-Claude-Session-ID")

    def read_events(self, n, limit_s=20):
        """Reads up to n events (`data:` lines); returns how many came."""
        deadline = time.monotonic() + limit_s
        while self.events < n and time.monotonic() < deadline:
            line = self.resp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                self.events += 1
        return self.events

    def read_to_end(self, limit_s):
        """(whether the stream ended within limit_s, its data lines read)."""
        deadline = time.monotonic() + limit_s
        data = []
        while time.monotonic() < deadline:
            line = self.resp.readline()
            if not line:
                return True, data
            if line.startswith(b"data:"):
                data.append(line.decode(errors="replace").strip())
        return False, data

    def close(self):
        """Goes away: the socket is shut down and closed."""
        try:
            if self.conn.sock:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def wait_free(c, name, sid, prompt, closed):
    """The session's next turn (chat, by header) after a stream on it was
    abandoned: answered, never refused session_busy (the server finds the
    client gone and waits for its turn to end). Returns the seconds from the
    close until it was answered."""
    msgs = [{"role": "user", "content": prompt}]
    with Inflight(sid):
        label, value = call(name, lambda: c.chat(msgs, sid=sid), allowed=("200",),
                            what=f"session {sid}")
    if label == "200":
        got = value[0]
        check(got == sid, f"{name}: answered for session {got}, not {sid}")
        add_prompt(sid, prompt)
    return time.monotonic() - closed


def scenario_abandon(c):
    api = c.rng.choice(["chat", "messages", "responses"])
    first_turn = c.rng.random() < 0.25
    sid = None
    if not first_turn:
        prompt = f"Hello, a session to abandon a stream on ({tag(c.rng)})."
        _, (sid, _, _) = call("abandon setup", lambda: c.chat([{"role": "user",
                                                                  "content": prompt}]))
        new_session(sid, c, "abandon", prompt)
    prompt = f"SLOW-STREAM please ({tag(c.rng)})"
    point = c.rng.choice(["before headers", "after headers"] + ["after events"] * 4)
    n = c.rng.randint(1, 12) if point == "after events" else 0
    started = time.monotonic()
    with Inflight(sid):
        s = OpenStream(c, api, sid, prompt, read_headers=point != "before headers")
        try:
            if s.resp is not None:
                status = s.status()
                label = "200" if status == 200 else raw_label(status, s.resp.read()[:2000])
                BOOK.request(f"abandon stream {api}", label, time.monotonic() - started)
                check(status == 200, f"abandon stream {api}: {label} (session {sid})")
                got = s.session()
                if sid:
                    check(got == sid, f"abandon stream {api}: session {got}, not {sid}")
                elif got:
                    sid = new_session(got, c, "abandon")
                    BOOK.update(sid, maybe_dropped=True)
                if n:
                    s.read_events(n)
            else:
                BOOK.request(f"abandon stream {api}", "closed before headers",
                             time.monotonic() - started)
                time.sleep(c.rng.uniform(0, 0.3))
        finally:
            s.close()
    closed = time.monotonic()
    BOOK.note(f"abandon: closed {point}")
    if first_turn:
        return  # a first turn that broke may leave no session behind (SESSIONS.md)
    if point != "before headers":
        add_prompt(sid, prompt)
    # Often before the server has looked at the closed connection (twice a
    # second): the turn must wait for the left one, not be refused.
    time.sleep(c.rng.uniform(0, 0.5))
    freed = wait_free(c, "abandon next turn", sid, f"Are you there? ({tag(c.rng)})", closed)
    with BOOK.lock:
        BOOK.freed.append(freed)
    BOOK.update(sid, answered=2)


def delete(c, sid, name, allowed):
    label, _ = call(name, lambda: (raw_label(*_status_body(raw(
        "DELETE", f"/v1/sessions/{sid}", key=c.key, timeout=15))), None),
        allowed=allowed, what=f"session {sid}")
    if label == "200":
        BOOK.update(sid, deleted=True)
    return label


def _status_body(answer):
    status, _, body = answer
    return status, body


def delete_until_gone(c, sid, name, since):
    """DELETE, allowing 409 session_busy for FREE_GRACE_S after `since`."""
    while True:
        allowed = ("200", "409 session_busy") \
            if time.monotonic() - since < FREE_GRACE_S else ("200",)
        if delete(c, sid, name, allowed) == "200":
            return
        BOOK.note("delete: 409 session_busy while the turn wound down (allowed)")
        time.sleep(0.2)


def expect_gone(c, sid, name):
    """The next turn of a deleted session: 404 session_not_found."""
    call(name, lambda: c.chat([{"role": "user", "content": "Still there?"}], sid=sid),
         allowed=("404 session_not_found",))


def scenario_delete(c):
    variant = c.rng.choice(["idle", "streaming", "waiting"])
    if variant == "waiting":
        sid, _ = forced_call(c, "delete forced", "chat")
        label = delete(c, sid, "delete waiting", ("409 session_busy", "200"))
        if label == "200":
            BOOK.note("delete waiting: already given up, deleted")
            BOOK.update(sid, pending_since=None)
            expect_gone(c, sid, "delete next turn (404)")
            return
        prompt = f"Never mind, just say hello ({tag(c.rng)})."
        with Inflight(sid):
            pending(sid, False)
            _, (got, comp, _) = call("delete new question", lambda: c.chat(
                [{"role": "user", "content": prompt}], sid=sid))
        check(got == sid, f"delete: the new question answered for {got}, not {sid}")
        add_prompt(sid, prompt)
        delete_until_gone(c, sid, "delete after the turn", time.monotonic())
        expect_gone(c, sid, "delete next turn (404)")
        return
    prompt = f"Hello, a session to delete ({tag(c.rng)})."
    _, (sid, _, _) = call("delete setup", lambda: c.chat([{"role": "user", "content": prompt}]))
    new_session(sid, c, "delete", prompt)
    if variant == "idle":
        delete_until_gone(c, sid, "delete idle", time.monotonic())
        expect_gone(c, sid, "delete next turn (404)")
        return
    api = c.rng.choice(["chat", "messages", "responses"])
    started = time.monotonic()
    with Inflight(sid):
        s = OpenStream(c, api, sid, f"SLOW-STREAM then delete ({tag(c.rng)})")
        try:
            label = "200" if s.status() == 200 else raw_label(s.status(), s.resp.read()[:2000])
            BOOK.request(f"delete stream {api}", label, time.monotonic() - started)
            check(s.status() == 200, f"delete stream {api}: {label}")
            s.read_events(2)
            delete(c, sid, "delete streaming", ("409 session_busy",))
            s.read_events(s.events + c.rng.randint(0, 4))
        finally:
            s.close()
    delete_until_gone(c, sid, "delete after the stream", time.monotonic())
    expect_gone(c, sid, "delete next turn (404)")


def scenario_multi(c):
    turns = c.rng.randint(3, 5)
    history = []  # (role, text)
    sid = None
    topic = tag(c.rng)
    for i in range(turns):
        prompt = f"Turn {i + 1} of conversation {topic}: tell me something."
        history.append(("user", prompt))
        msgs = [{"role": r, "content": t} for r, t in history]
        with Inflight(sid):
            _, (got, comp, _) = call("multi turn", lambda: c.chat(msgs))
        text = chat_text(comp)
        if sid is None:
            sid = new_session(got, c, "multi")
        else:
            check(got == sid, f"multi: turn {i + 1} answered for session {got}, not {sid}")
        add_prompt(sid, prompt)
        want = fake_anthropic.history_echo(history)
        check(text.endswith(" " + want), f"multi: turn {i + 1} of {sid}: the CLI sent "
              f"{text!r}, expected {want}")
        history.append(("assistant", text))
        BOOK.update(sid, answered=i + 1)
        time.sleep(c.rng.uniform(0, 0.5))


SCENARIOS = [(scenario_loop, 4), (scenario_forced, 2), (scenario_abandon, 3),
             (scenario_late, 1), (scenario_delete, 2), (scenario_multi, 2),
             (scenario_plain, 2)]


def worker(n, deadline):
    rng = random.Random(SEED * 1000 + n)
    c = Client(KEYS[n % len(KEYS)], rng)
    fns, weights = zip(*SCENARIOS)
    while time.monotonic() < deadline:
        fn = rng.choices(fns, weights)[0]
        try:
            fn(c)
        except Failed:
            pass
        except Exception as e:  # a bug of the soak itself: say so, and go on
            BOOK.violation(f"worker {n}: {fn.__name__} raised {type(e).__name__}: {e}")
            traceback.print_exc()
        time.sleep(rng.uniform(0.05, 0.8))


# --- the sampler ---------------------------------------------------------------


def scrape_metrics():
    req = urllib.request.Request(SERVER.url("/metrics"),
                                 headers={"Authorization": f"Bearer {KEYS[0]}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return metric_samples(resp.read().decode())


class Sampler:
    def __init__(self, cli, server_bin):
        self.cli = cli
        self.server_bin = os.path.realpath(server_bin)
        self.stop = threading.Event()
        self.seen = {}  # pid -> (start time, "cli" | "bridge")
        self.peak = {"waiting": 0, "active": 0, "clis": 0, "queued": 0, "streams": 0,
                     "server_rss": 0, "server_hwm": 0, "cli_rss": 0, "cli_hwm": 0,
                     "bridge_rss": 0, "longest_wait": 0.0, "longest_orphan_busy": 0.0,
                     "sessions": 0}
        self.health = None
        self.metrics = {}
        self.errors = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(SAMPLE_S):
            try:
                self.sample()
            except Exception as e:  # a sample that failed: counted, and on we go
                self.errors += 1
                if self.errors <= 3:
                    print(f"sampler: {type(e).__name__}: {e}", flush=True)

    def processes(self):
        """(clis, bridges): (pid, rss kB, hwm kB) under the server."""
        clis, bridges = [], []
        for pid in descendants(SERVER.proc.pid):
            exe = proc_exe(pid)
            kind = "cli" if exe == self.cli else "bridge" if exe == self.server_bin else None
            if kind is None:
                continue
            if pid not in self.seen:
                self.seen[pid] = (start_time(pid), kind)
            row = (pid, status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM"))
            (clis if kind == "cli" else bridges).append(row)
        return clis, bridges

    def sample(self):
        now = time.monotonic()
        status, _, health = raw("GET", "/health", key=None, timeout=10)
        checks = health["checks"]
        self.health = health
        waiting = checks.get("waiting_for_tools", 0)
        cap = checks["capacity"]
        self.metrics = scrape_metrics()
        clis, bridges = self.processes()
        p = self.peak
        server_rss = status_kb(SERVER.proc.pid, "VmRSS")
        server_hwm = status_kb(SERVER.proc.pid, "VmHWM")
        p["waiting"] = max(p["waiting"], waiting)
        p["active"] = max(p["active"], cap["active"])
        p["queued"] = max(p["queued"], cap["queued"])
        p["clis"] = max(p["clis"], len(clis))
        p["streams"] = max(p["streams"], int(self.metrics.get(
            "claude_cli_api_sse_streams_open", 0)))
        p["server_rss"] = max(p["server_rss"], server_rss)
        p["server_hwm"] = max(p["server_hwm"], server_hwm)
        p["cli_rss"] = max([p["cli_rss"]] + [r for _, r, _ in clis])
        p["cli_hwm"] = max([p["cli_hwm"]] + [h for _, _, h in clis])
        p["bridge_rss"] = max([p["bridge_rss"]] + [r for _, r, _ in bridges])
        p["sessions"] = max(p["sessions"], int(self.metrics.get(
            "claude_cli_api_sessions_live", 0)))
        self.samples_row(now, waiting, cap, clis, server_rss)
        if status != 200:
            BOOK.violation(f"/health {status}: {health}")
        if waiting > MAX_TOOL_WAITS:
            BOOK.violation(f"waiting_for_tools {waiting} > MAX_TOOL_WAITS {MAX_TOOL_WAITS}")
        if cap["active"] > cap["max"] or len(clis) > POOL:
            BOOK.violation(f"{len(clis)} claude processes, capacity {cap}: more than the "
                           f"pool of {POOL}")
        for pid, rss, hwm in clis:
            if max(rss, hwm) > CLI_RSS_MB * 1024:
                BOOK.violation(f"claude {pid}: RSS {rss / 1024:.0f} MB, peak {hwm / 1024:.0f} MB:"
                               f" more than {CLI_RSS_MB:.0f} MB")
        if max(server_rss, server_hwm) > SERVER_RSS_MB * 1024:
            BOOK.violation(f"server RSS {server_rss / 1024:.1f} MB, peak {server_hwm / 1024:.1f}"
                           f" MB: more than {SERVER_RSS_MB:.0f} MB")
        self.check_sessions(now)

    def samples_row(self, now, waiting, cap, clis, server_rss):
        with BOOK.lock:
            BOOK.samples.append((now, waiting, cap["active"], len(clis), server_rss))

    def check_sessions(self, now):
        """No turn waits for a result past its bound; no session stays busy
        with nothing of ours on it."""
        busy = set()
        for key in KEYS:
            status, _, body = raw("GET", "/v1/sessions", key=key, timeout=10)
            if status != 200:
                BOOK.violation(f"GET /v1/sessions: {status} {body}")
                continue
            busy |= {s["id"] for s in body.get("data", []) if s.get("busy")}
        bound = TOOL_RESULT_TIMEOUT_MS / 1000 + SLACK_S
        flagged = []
        with BOOK.lock:
            sessions = list(BOOK.sessions.items())
        for sid, s in sessions:
            with BOOK.lock:
                inflight, since = s["inflight"], s["pending_since"]
            if since is not None and sid not in busy and not inflight:
                let_go(sid, now)  # given up, or timed out
            with BOOK.lock:
                if sid not in busy or inflight:
                    s["busy_since"] = None
                    continue
                if since is not None:
                    age = now - since
                    self.peak["longest_wait"] = max(self.peak["longest_wait"], age)
                    if age > bound and not s.get("flagged"):
                        s["flagged"] = True
                        flagged.append(f"session {sid} ({s['kind']}) still waits for a tool "
                                       f"result {age:.1f}s after its call (bound {bound:.0f}s)")
                    continue
                if s["busy_since"] is None:
                    s["busy_since"] = now
                orphan = now - s["busy_since"]
                self.peak["longest_orphan_busy"] = max(self.peak["longest_orphan_busy"], orphan)
                if orphan > FREE_GRACE_S + SLACK_S and not s.get("flagged"):
                    s["flagged"] = True
                    flagged.append(f"session {sid} ({s['kind']}) busy for {orphan:.1f}s with "
                                   f"no request of ours on it and no call waiting")
        for text in flagged:
            BOOK.violation(text)


# --- the end: settling, SIGTERM, leftovers, transcripts ------------------------


def settle(sampler):
    """After the load: every waiting turn gone within the bound."""
    with BOOK.lock:
        oldest = min([s["pending_since"] for s in BOOK.sessions.values()
                      if s["pending_since"] is not None], default=None)
    bound = TOOL_RESULT_TIMEOUT_MS / 1000 + SLACK_S
    deadline = (oldest or time.monotonic()) + bound
    started = time.monotonic()
    while True:
        checks = raw("GET", "/health", key=None, timeout=10)[2]["checks"]
        if checks.get("waiting_for_tools", 0) == 0:
            break
        if time.monotonic() > deadline:
            BOOK.violation(f"after the load, {checks.get('waiting_for_tools')} turns still wait "
                           f"for results {bound:.0f}s after the oldest call")
            break
        sampler.sample()
        time.sleep(SAMPLE_S)
    took = time.monotonic() - started
    sampler.sample()  # the sessions' last waits are counted by this
    return took


def shutdown(sampler, cli_client):
    """A stream and a waiting forced call in flight, then SIGTERM."""
    out = {}
    c = cli_client
    forced_call(c, "shutdown forced", "chat")
    s = OpenStream(c, "chat", None, "SLOW-STREAM during the shutdown")
    stream_ok = s.status() == 200
    s.read_events(2)
    sampler.sample()
    clis_before = len(sampler.processes()[0])
    out["claude processes at SIGTERM"] = clis_before
    metrics = dict(sampler.metrics)
    health = sampler.health
    started = time.monotonic()
    SERVER.proc.send_signal(signal.SIGTERM)
    # What a new request gets meanwhile: 503 server_shutting_down is by design.
    try:
        status, _, body = raw("POST", "/claude/v1/chat/completions",
                              {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                              key=c.key, timeout=10)
        out["request while draining"] = raw_label(status, body)
    except OSError as e:
        out["request while draining"] = f"{type(e).__name__} (already closed)"
    ended, data = s.read_to_end(SHUTDOWN_TIMEOUT_S + KILL_GRACE_S + 5)
    s.close()
    # API_REFERENCE.md, Streaming: a finish chunk, one stream_error event, [DONE].
    told = any('"stream_error"' in d for d in data[-3:]) and data[-1:] == ["data: [DONE]"]
    out["stream at SIGTERM"] = ("ended" if ended else "still open") + \
        (" with stream_error and [DONE]" if told else f", last events {data[-3:]}")
    if not stream_ok or not ended or not told:
        BOOK.violation(f"the stream in flight at SIGTERM: {out['stream at SIGTERM']}")
    bound = SHUTDOWN_TIMEOUT_S + KILL_GRACE_S + 5
    try:
        code = SERVER.proc.wait(timeout=max(0.1, bound - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        code = None
        BOOK.violation(f"the server did not exit within {bound:.0f}s of SIGTERM")
    out["exit"] = code
    out["exit after"] = time.monotonic() - started
    if code not in (0, None):
        BOOK.violation(f"the server exited with {code} after SIGTERM")
    return out, metrics, health


def leftovers(sampler, tmp):
    """Processes the server started (seen by PID and start time) or anything
    working under our temp directory, still alive."""
    left = {}
    for pid, (st, kind) in list(sampler.seen.items()):
        s = proc_stat(pid)
        if s and s[0] != "Z" and start_time(pid) == st:
            left[pid] = kind
    for pid in all_pids():
        cwd = cwd_of(pid)
        if cwd and cwd.startswith(tmp + os.sep) and pid != os.getpid() and pid not in left:
            s = proc_stat(pid)
            if s and s[0] != "Z":
                left[pid] = f"cwd {cwd}"
    return sorted(left.items())


def check_transcripts(home):
    """Every session's transcript: whole JSONL lines, naming its session,
    holding the prompts it was sent. Returns (checked, lines)."""
    files = {}
    for root, _, names in os.walk(os.path.join(home, ".claude", "projects")):
        for name in names:
            if name.endswith(".jsonl"):
                files[name[:-6]] = os.path.join(root, name)
    checked = lines_total = 0
    with BOOK.lock:
        sessions = dict(BOOK.sessions)
    for sid, s in sessions.items():
        path = files.get(sid)
        if path is None:
            if s["answered"] and not s["maybe_dropped"]:
                BOOK.violation(f"session {sid} ({s['kind']}): no transcript")
            continue
        checked += 1
        with open(path, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            BOOK.violation(f"transcript of {sid} ({s['kind']}): the last line is cut off")
        text = data.decode(errors="replace")
        users = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            lines_total += 1
            try:
                obj = json.loads(line)
            except ValueError:
                BOOK.violation(f"transcript of {sid} ({s['kind']}): line {n} is not JSON: "
                               f"{line[:120]!r}")
                break
            if "sessionId" in obj and obj["sessionId"] != sid:
                BOOK.violation(f"transcript of {sid}: line {n} names session {obj['sessionId']}")
                break
            if obj.get("type") == "user":
                users.append(line)
        joined = "\n".join(users)
        for prompt in s["prompts"]:
            if json.dumps(prompt)[1:-1] not in joined:
                BOOK.violation(f"transcript of {sid} ({s['kind']}): the prompt {prompt!r} "
                               f"is not in it")
    return checked, lines_total


# --- the report ----------------------------------------------------------------


def pct(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def report(elapsed, settle_s, down, metrics, health, sampler, transcripts, logs):
    print()
    print(f"soak: {elapsed:.0f} s of load, {WORKERS} workers, {len(KEYS)} keys, seed {SEED}")
    print(f"server: pool {POOL}, MAX_TOOL_WAITS {MAX_TOOL_WAITS}, MAX_TOOL_WAITS_PER_KEY "
          f"{SETTINGS['MAX_TOOL_WAITS_PER_KEY']}, TOOL_RESULT_TIMEOUT_MS "
          f"{TOOL_RESULT_TIMEOUT_MS}, STREAM_KEEPALIVE_MS {KEEPALIVE_MS}")
    rows = {}
    for name, label, sec in BOOK.requests:
        r = rows.setdefault(name, {"n": 0, "labels": {}, "t": []})
        r["n"] += 1
        r["labels"][label] = r["labels"].get(label, 0) + 1
        r["t"].append(sec)
    print()
    print(f"{'request':<32} {'n':>5} {'p50 ms':>8} {'p95 ms':>8}  statuses")
    for name in sorted(rows):
        r = rows[name]
        labels = ", ".join(f"{k} x{v}" for k, v in sorted(r["labels"].items()))
        print(f"{name:<32} {r['n']:>5} {pct(r['t'], .5) * 1000:>8.0f} "
              f"{pct(r['t'], .95) * 1000:>8.0f}  {labels}")
    total = sum(r["n"] for r in rows.values())
    print(f"{'all':<32} {total:>5}")
    kinds = {}
    for name, label, sec in BOOK.requests:
        k = kinds.setdefault(name.split()[0], {"n": 0, "t": [], "other": {}})
        k["n"] += 1
        k["t"].append(sec)
        if label != "200":
            k["other"][label] = k["other"].get(label, 0) + 1
    print()
    print(f"{'by scenario':<32} {'n':>5} {'p50 ms':>8} {'p95 ms':>8}  not 200")
    for name in sorted(kinds):
        k = kinds[name]
        other = ", ".join(f"{lb} x{v}" for lb, v in sorted(k["other"].items())) or "-"
        print(f"{name:<32} {k['n']:>5} {pct(k['t'], .5) * 1000:>8.0f} "
              f"{pct(k['t'], .95) * 1000:>8.0f}  {other}")
    p = sampler.peak
    given = (health or {}).get("checks", {}).get("tool_waits_given_up", {})
    turns = {k.split('"')[1]: int(v) for k, v in metrics.items()
             if k.startswith("claude_cli_api_turns_total{")}
    limited = {k.split('"')[1]: int(v) for k, v in metrics.items()
               if k.startswith("claude_cli_api_rate_limited_total{") and v}
    print()
    print("figures:")
    print(f"  give-ups by cause (/health): {json.dumps(given)}")
    print(f"  turns ended by cause (/metrics): {json.dumps(turns)}")
    print(f"  requests refused by a limit (/metrics): {json.dumps(limited)}")
    waits = BOOK.waits
    print(f"  forced calls' turns let go after: p50 {pct(waits, .5):.1f} s, max "
          f"{max(waits, default=0):.1f} s ({len(waits)} seen; bound "
          f"{TOOL_RESULT_TIMEOUT_MS / 1000:.0f} s + {SLACK_S:.0f} s)")
    print(f"  abandoned streams, the next turn answered after the close (sent 0-0.5 s "
          f"after it): p50 {pct(BOOK.freed, .5):.2f} s, max {max(BOOK.freed, default=0):.2f} s")
    print(f"  max waiting turns {p['waiting']} (MAX_TOOL_WAITS {MAX_TOOL_WAITS}); max claude "
          f"processes {p['clis']} (capacity.active {p['active']}, pool {POOL}); max queued "
          f"{p['queued']}; max streams open {p['streams']}; max live sessions {p['sessions']}")
    print(f"  peak RSS: server {p['server_hwm'] / 1024:.1f} MB (VmHWM; sampled "
          f"{p['server_rss'] / 1024:.1f} MB, budget {SERVER_RSS_MB:.0f}), claude "
          f"{p['cli_rss'] / 1024:.0f} MB sampled, {p['cli_hwm'] / 1024:.0f} MB VmHWM (budget "
          f"{CLI_RSS_MB:.0f}), bridge {p['bridge_rss'] / 1024:.1f} MB")
    print(f"  longest wait seen by the sampler {p['longest_wait']:.1f} s; longest busy "
          f"session with nothing of ours on it {p['longest_orphan_busy']:.1f} s")
    print(f"  waiting turns all gone {settle_s:.1f} s after the load")
    print(f"  SIGTERM: {json.dumps(down)}")
    print(f"  claude processes seen {sum(1 for k in sampler.seen.values() if k[1] == 'cli')}, "
          f"bridges {sum(1 for k in sampler.seen.values() if k[1] == 'bridge')}; sampler "
          f"errors {sampler.errors}")
    print(f"  transcripts checked {transcripts[0]} ({transcripts[1]} lines)")
    print(f"  server log: {json.dumps(logs)}")
    for what, n in sorted(BOOK.notes.items()):
        print(f"  {what}: {n}")
    print()
    if BOOK.violations:
        print(f"FAILED: {len(BOOK.violations)} violation(s)")
        for v in BOOK.violations[:50]:
            print(f"  {v}")
    else:
        print("PASSED: no violations")


def scan_log():
    """Counts of the server log's lines by level, and its warnings/errors."""
    levels, worrying = {}, []
    for ev in SERVER.log_events():
        lvl = ev.get("level", "?")
        levels[lvl] = levels.get(lvl, 0) + 1
        if lvl in ("warn", "error", "raw") and len(worrying) < 20:
            worrying.append(ev)
        if "panic" in json.dumps(ev).lower():
            BOOK.violation(f"the server log has a panic: {json.dumps(ev)[:300]}")
    return levels, worrying


def main():
    global SERVER
    server_bin = os.environ.get("SERVER_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or "target",
        "x86_64-unknown-linux-gnu/release/claude-cli-api")
    if not os.path.isabs(server_bin):
        server_bin = os.path.join(ROOT, server_bin)
    if not os.access(server_bin, os.X_OK):
        sys.exit(f"server binary not found: {server_bin} (build it, or set SERVER_BIN)")
    cli = cli_path()
    version = subprocess.run([cli, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    print(f"server: {server_bin}\nclaude: {cli} ({version})\nseed: {SEED}", flush=True)
    tmp = tempfile.mkdtemp(prefix="soak-")
    fake = fake_anthropic.start(quiet=True)
    # A CLI that is interrupted or stopped hangs up on the fake mid-answer:
    # expected here, so no traceback on stderr for it.
    fake.httpd.handle_error = lambda request, address: None
    SERVER = Server(server_bin, cli, fake, tmp)
    sampler = None
    ok = False
    try:
        SERVER.start()
        sampler = Sampler(cli, server_bin)
        sampler.thread.start()
        started = time.monotonic()
        deadline = started + SECONDS
        threads = [threading.Thread(target=worker, args=(n, deadline), daemon=True)
                   for n in range(WORKERS)]
        for t in threads:
            t.start()
        # Each worker finishes its scenario: requests have timeouts, a late
        # result waits for at most the tool bound.
        join_by = deadline + REQUEST_TIMEOUT_S * 2 + TOOL_RESULT_TIMEOUT_MS / 1000
        for t in threads:
            t.join(timeout=max(0.1, join_by - time.monotonic()))
            if t.is_alive():
                BOOK.violation("a worker did not finish its scenario in time")
        elapsed = time.monotonic() - started
        print(f"load done after {elapsed:.0f} s; waiting for the waiting turns to go",
              flush=True)
        sampler.stop.set()
        sampler.thread.join(timeout=30)
        settle_s = settle(sampler)
        down, metrics, health = shutdown(sampler, Client(KEYS[0], random.Random(SEED)))
        time.sleep(0.5)  # children reaped by now, or never
        left = leftovers(sampler, tmp)
        if left:
            BOOK.violation(f"processes outlived the server: {left}")
        transcripts = check_transcripts(SERVER.home)
        levels, worrying = scan_log()
        report(elapsed, settle_s, down, metrics, health, sampler, transcripts, levels)
        if worrying:
            print("server log, warnings and errors (first 20):")
            for ev in worrying:
                print("  " + json.dumps(ev)[:400])
        ok = not BOOK.violations
    except Exception as e:  # the soak itself broke: report, clean up, fail
        traceback.print_exc()
        BOOK.violation(f"the soak stopped: {type(e).__name__}: {e}")
    finally:
        if sampler:
            sampler.stop.set()
        if SERVER.proc and SERVER.proc.poll() is None:
            SERVER.proc.send_signal(signal.SIGTERM)
            try:
                SERVER.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                SERVER.proc.kill()
                SERVER.proc.wait()
        if sampler:
            for pid, _ in leftovers(sampler, tmp):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        fake.close()
        if ok and not os.environ.get("SOAK_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (server.log, home/, state/, work/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
