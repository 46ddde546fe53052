#!/usr/bin/env python3
"""Checks the fake upstreams on their own, without the server: the fake
Anthropic API against the real `claude` CLI (new session, resumes, system
prompt, aliases, OAuth token, bad key, a tool loop through a stdio MCP
server with parallel calls, --json-schema, an image sent as stream-json) and
against plain HTTP; the fake
OpenAI API against the official `openai` SDK (chat, and the routes the relay
tests use: Responses, embeddings, models, files, audio, DELETEs). Prints what the CLI sent
(paths, header names, model names for the aliases) and `N passed, M failed`.

Run with the e2e venv's python: .cache/e2e/venv/bin/python scripts/e2e/check_fake_with_cli.py
"""

import base64
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

    def run(self, prompt, *args, creds=None, extra_env=None, timeout=60, stdin_lines=None):
        """Runs `claude -p prompt ...`; with stdin_lines (dicts), the CLI reads
        its user messages as stream-json from stdin instead (prompt unused),
        the way the server drives it."""
        env = {
            "HOME": self.home,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANTHROPIC_BASE_URL": self.base_url,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        env.update(creds if creds is not None else {"ANTHROPIC_API_KEY": "sk-ant-test"})
        env.update(extra_env or {})
        head = [self.path, "-p", prompt] if stdin_lines is None else [
            self.path, "-p", "--input-format", "stream-json"]
        argv = [*head, "--output-format", "stream-json", "--verbose",
                "--include-partial-messages", "--tools", "", *args]
        started = time.monotonic()
        if stdin_lines is None:
            proc = subprocess.run(argv, env=env, cwd=self.cwd, capture_output=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        else:
            data = "".join(json.dumps(line) + "\n" for line in stdin_lines).encode()
            proc = subprocess.run(argv, env=env, cwd=self.cwd, capture_output=True,
                                  timeout=timeout, input=data)
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

    def blocks(self, role, kind):
        """The content blocks of one kind in the CLI's assistant or user events."""
        return [b for e in self.events if e.get("type") == role
                for b in e.get("message", {}).get("content") or []
                if isinstance(b, dict) and b.get("type") == kind]

    def json_pieces(self):
        """The input_json_delta pieces the CLI passed on, per block index."""
        out = {}
        for e in self.events:
            ev = e.get("event") or {}
            if e.get("type") == "stream_event" and ev.get("type") == "content_block_delta" \
                    and ev["delta"].get("type") == "input_json_delta":
                out.setdefault(ev["index"], []).append(ev["delta"]["partial_json"])
        return out


MCP_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_mcp_tools.py")
TOOL_ID = re.compile(r"^toolu_[A-Za-z0-9]{24}$")


def mcp_args():
    """The flags that give the CLI fake_mcp_tools.py's tools as mcp__client__*."""
    config = {"mcpServers": {"client": {"command": sys.executable, "args": [MCP_SERVER]}}}
    return ["--mcp-config", json.dumps(config), "--allowedTools", "mcp__client"]


def tiny_png(width=2, height=2):
    """A real PNG image (red pixels), built here."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


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

        def fake_tools_plain_http():
            def post(body):
                rq = urllib.request.Request(anth.url + "/v1/messages",
                                            data=json.dumps(body).encode(),
                                            headers={"content-type": "application/json",
                                                     "x-api-key": "sk-ant-ok"})
                with urllib.request.urlopen(rq, timeout=10) as resp:
                    return resp.read()

            tools = [{"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}},
                     {"name": "mcp__client__get_weather", "input_schema": {
                         "type": "object", "properties": {"city": {"type": "string"}}}}]
            ask = {"role": "user", "content": [{"type": "text", "text":
                                                 "weather in Paris and Berlin"}]}
            msg = json.loads(post({"model": "m", "max_tokens": 10, "tools": tools,
                                   "messages": [ask]}))
            check(msg["stop_reason"] == "tool_use", msg)
            blocks = msg["content"]
            check(blocks[0] == {"type": "text", "text": "Let me check."}, blocks)
            check([(b["name"], b["input"]) for b in blocks[1:]] == [
                ("mcp__client__get_weather", {"city": "Paris"}),
                ("mcp__client__get_weather", {"city": "Berlin"})], blocks)
            # The same streamed: the inputs come as input_json_delta pieces.
            data = post({"model": "m", "max_tokens": 10, "tools": tools, "messages": [ask],
                         "stream": True}).decode()
            events = [json.loads(ln[6:]) for ln in data.splitlines() if ln.startswith("data: ")]
            starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
            check([b["type"] for b in starts] == ["text", "tool_use", "tool_use"], starts)
            inputs = {}
            for e in events:
                if e["type"] == "content_block_delta" and \
                        e["delta"]["type"] == "input_json_delta":
                    inputs[e["index"]] = inputs.get(e["index"], "") + e["delta"]["partial_json"]
            check({i: json.loads(v) for i, v in inputs.items()} == {
                1: {"city": "Paris"}, 2: {"city": "Berlin"}}, inputs)
            stop = [e for e in events if e["type"] == "message_delta"][0]
            check(stop["delta"]["stop_reason"] == "tool_use", stop)
            # The results come back: the answer quotes them.
            ids = [b["id"] for b in blocks[1:]]
            follow = [ask, {"role": "assistant", "content": blocks},
                      {"role": "user", "content": [
                          {"type": "tool_result", "tool_use_id": ids[0], "content": "sunny"},
                          {"type": "tool_result", "tool_use_id": ids[1], "is_error": True,
                           "content": [{"type": "text", "text": "down"}]}]}]
            msg = json.loads(post({"model": "m", "max_tokens": 10, "tools": tools,
                                   "messages": follow}))
            check(msg["stop_reason"] == "end_turn" and msg["content"][0]["text"]
                  == "The tools said: sunny | ERROR: down", msg)
            # Tools offered but not asked for: the usual echo, unchanged.
            msg = json.loads(post({"model": "m", "max_tokens": 10, "tools": tools,
                                   "messages": [{"role": "user", "content": "hi"}]}))
            check(msg["content"][0]["text"] == "turns=1 system=no model=m auth=x-api-key "
                  + fake_anthropic.history_echo([("user", "hi")]), msg)

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

        def fake_openai_relay_routes_with_sdk():
            # The routes the relay tests use, each parsed by the SDK, and
            # what the records say (key fingerprint, query, sizes).
            import hashlib
            import openai
            key = "sk-e2e-good"
            client = openai.OpenAI(base_url=oai.url, api_key=key, max_retries=0)
            before = len(oai.records)
            r = client.responses.create(model="gpt-4o-mini", input="hello")
            check(r.output_text == "responses model=gpt-4o-mini input=hello"
                  and r.status == "completed", r)
            events = list(client.responses.create(model="m", input="two words",
                                                  stream=True))
            check(events[0].type == "response.created"
                  and events[-1].type == "response.completed"
                  and "".join(e.delta for e in events
                              if e.type == "response.output_text.delta")
                  == "responses model=m input=two words", [e.type for e in events])
            check(oai.records[-1]["sse"].count(b"event: ") == len(events)
                  and b"[DONE]" not in oai.records[-1]["sse"], oai.records[-1]["events"])
            with client.responses.stream(model="m", input=[
                    {"role": "user", "content": "helper"}]) as stream:
                for _ in stream:
                    pass
                check(stream.get_final_response().output_text
                      == "responses model=m input=helper", "responses.stream")
            for fmt in (openai.omit, "float"):  # omitted: the SDK asks for base64
                e = client.embeddings.create(model="e", input=["a", "b"],
                                             encoding_format=fmt)
                check([d.embedding for d in e.data] == [fake_openai.embedding_vector("a"),
                                                        fake_openai.embedding_vector("b")],
                      (fmt, e))
            m = client.models.retrieve("gpt-4o", extra_query={"x": "1"})
            check(m.id == "gpt-4o" and oai.records[-1]["query"] == "x=1", oai.records[-1])
            check(client.models.delete("ft-x").deleted, "models.delete")
            try:
                client.models.retrieve("missing-x")
            except openai.NotFoundError as e:
                check(e.code == "model_not_found", e)
            else:
                raise AssertionError("no NotFoundError for missing-x")
            data = os.urandom(3 * 1024 * 1024 + 17) + b"\r\n--not-the-boundary"
            f = client.files.create(file=("up.bin", data), purpose="batch")
            rec = oai.records[-1]
            check(f.bytes == len(data) and f.filename == "up.bin" and f.purpose == "batch"
                  and rec["file_sha256"] == hashlib.sha256(data).hexdigest()
                  and rec["multipart_complete"], rec)
            check(client.files.delete("file-x").deleted, "files.delete")
            raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="v",
                                                               input="hi")
            check(raw.content == fake_openai.speech_bytes("hi", "v")
                  and raw.headers["content-type"] == "audio/mpeg", raw.headers)
            try:
                client.batches.list()
            except openai.NotFoundError:
                pass
            else:
                raise AssertionError("no 404 for an unknown route")
            recs = oai.records[before:]
            check({r["key_fp"] for r in recs} == {fake_openai.key_fingerprint(key)}
                  and all(key not in json.dumps({k: v for k, v in r.items() if k != "sse"})
                          for r in recs), "the records hold the key or another one")
            check([(r["method"], r["path"]) for r in recs][-5:] == [
                ("GET", "/v1/models/missing-x"), ("POST", "/v1/files"),
                ("DELETE", "/v1/files/file-x"), ("POST", "/v1/audio/speech"),
                ("GET", "/v1/batches")], [(r["method"], r["path"]) for r in recs])

        def tool_loop_parallel_calls():
            # One message with three tool_use blocks (parallel calls), the MCP
            # server runs them, the results come back in one user message and
            # the fake answers with their texts (an error result marked).
            log = os.path.join(tmp, "mcp-calls.jsonl")
            before = len(anth.messages_records())
            r = cli.run("weather in Paris and Atlantis, and time in Tokyo", "--model", "sonnet",
                        *mcp_args(), extra_env={"E2E_MCP_LOG": log})
            check(r.code == 0, r.describe())
            check(r.text == "The tools said: sunny 21C in Paris | ERROR: no such city: "
                  "Atlantis | 12:00 in Tokyo", r.describe())
            uses = r.blocks("assistant", "tool_use")
            check([(u["name"], u["input"]) for u in uses] == [
                ("mcp__client__get_weather", {"city": "Paris"}),
                ("mcp__client__get_weather", {"city": "Atlantis"}),
                ("mcp__client__get_time", {"zone": "Tokyo"})], uses)
            check(all(TOOL_ID.match(u["id"]) for u in uses), [u["id"] for u in uses])
            check(len({u["id"] for u in uses}) == 3, "tool ids repeat")
            texts = r.blocks("assistant", "text")
            check(texts and texts[0]["text"] == "Let me check.", texts)
            results = r.blocks("user", "tool_result")
            check([b["tool_use_id"] for b in results] == [u["id"] for u in uses], results)
            check([bool(b.get("is_error")) for b in results] == [False, True, False], results)
            pieces = r.json_pieces()
            check(len(pieces) == 3 and all(len(p) > 1 for p in pieces.values()),
                  f"expected each input streamed in several pieces: {pieces}")
            check([json.loads("".join(p)) for _, p in sorted(pieces.items())]
                  == [u["input"] for u in uses], pieces)
            with open(log) as f:
                calls = [json.loads(line) for line in f]
            check(calls == [{"name": "get_weather", "arguments": {"city": "Paris"}},
                            {"name": "get_weather", "arguments": {"city": "Atlantis"}},
                            {"name": "get_time", "arguments": {"zone": "Tokyo"}}], calls)
            recs = anth.messages_records()[before:]
            check([rec["reply"] for rec in recs] == ["tools", "text"], recs)
            check("mcp__client__get_weather" in recs[0]["tool_names"]
                  and recs[1]["tool_results"] == 3, recs)

        def tool_loop_two_turns():
            # A session's second turn asks again: a new round of calls, and the
            # turn before that, which did not ask, gets the usual echo.
            s = new_sid()
            r = cli.run("hello", "--model", "sonnet", "--session-id", s, *mcp_args())
            check(r.code == 0 and r.text.startswith("turns=1 ") and not
                  r.blocks("assistant", "tool_use"), r.describe())
            r = cli.run("and the weather in Berlin?", "--model", "sonnet", "--resume", s,
                        *mcp_args())
            check(r.code == 0 and r.text == "The tools said: sunny 21C in Berlin",
                  r.describe())

        def json_schema_structured_output():
            schema = {"type": "object", "required": ["city", "population", "capital"],
                      "properties": {"city": {"type": "string"},
                                     "population": {"type": "integer"},
                                     "area": {"type": "number"},
                                     "capital": {"type": "boolean"},
                                     "tags": {"type": "array", "items": {"type": "string"}},
                                     "mayor": {"type": "object", "properties": {
                                         "name": {"type": "string"}}}}}
            r = cli.run("Describe Paris briefly", "--model", "sonnet",
                        "--json-schema", json.dumps(schema))
            want = {"city": "Paris", "population": 21, "area": 21, "capital": True, "tags": [],
                    "mayor": {"name": "Paris"}}
            check(r.code == 0 and r.result.get("structured_output") == want, r.describe())
            check(json.loads(r.text) == want, r.describe())
            uses = r.blocks("assistant", "tool_use")
            check(len(uses) == 1 and uses[0]["name"] == "StructuredOutput"
                  and TOOL_ID.match(uses[0]["id"]), uses)
            check(r.json_pieces(), "the input was not streamed as input_json_delta")
            # No properties (what a json_object response format may become).
            r = cli.run("anything", "--model", "sonnet", "--json-schema", '{"type":"object"}')
            check(r.code == 0 and r.result.get("structured_output") == {"ok": True},
                  r.describe())

        def json_schema_after_tool_calls():
            # Client tools and a schema together: the calls first, then StructuredOutput.
            schema = {"type": "object", "properties": {"summary": {"type": "string"}},
                      "required": ["summary"]}
            r = cli.run("weather in Oslo", "--model", "sonnet", *mcp_args(),
                        "--json-schema", json.dumps(schema))
            check(r.code == 0 and r.result.get("structured_output") == {"summary": "Oslo"},
                  r.describe())
            names = [u["name"] for u in r.blocks("assistant", "tool_use")]
            check(names == ["mcp__client__get_weather", "StructuredOutput"], names)

        def image_reaches_the_api():
            data = base64.b64encode(tiny_png()).decode()
            line = {"type": "user", "message": {"role": "user", "content": [
                {"type": "text", "text": "what is in this image?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": data}}]}}
            r = cli.run(None, "--model", "sonnet", stdin_lines=[line])
            check(r.code == 0 and " images=1 media=image/png msgs=1 " in r.text, r.describe())
            check(anth.messages_records()[-1]["images"] == 1, anth.messages_records()[-1])

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
        suite.run("cli_tool_loop_parallel_calls", tool_loop_parallel_calls)
        suite.run("cli_tool_loop_two_turns", tool_loop_two_turns)
        suite.run("cli_json_schema", json_schema_structured_output)
        suite.run("cli_json_schema_after_tools", json_schema_after_tool_calls)
        suite.run("cli_image_reaches_api", image_reaches_the_api)
        # Only the CLI has talked to the fake so far.
        paths = sorted({r["path"] for r in anth.records})
        names = sorted({n for r in anth.messages_records() for n in r["header_names"]})
        suite.run("fake_anthropic_plain_http", fake_answers_plain_http)
        suite.run("fake_anthropic_tools_plain_http", fake_tools_plain_http)
        suite.run("fake_openai_with_sdk", fake_openai_with_sdk)
        suite.run("fake_openai_relay_routes_with_sdk", fake_openai_relay_routes_with_sdk)

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
