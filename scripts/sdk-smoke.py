#!/usr/bin/env python3
"""Smoke test of the OpenAI passthrough with the official `openai` Python SDK.

Needs: python3 with the `openai` package (a venv; `make e2e` provides one).

The script always runs its own fake OpenAI upstream (http.server on
127.0.0.1). Which server it tests depends on the environment:

  SERVER_URL unset (default)
      The script starts the server itself: the binary at SERVER_BIN
      (default: target/release/claude-cli-api, else target/debug/...) on a
      free loopback port, with OPENAI_BASE_URL pointing at the fake, an
      OPENAI_API_KEY of its own and API_KEY set, and stops it (by PID) when
      done. The fake listens on an ephemeral port.

  SERVER_URL set (e.g. http://127.0.0.1:3456)
      The server is already running. It must have been started with
      OPENAI_BASE_URL=http://127.0.0.1:$FAKE_UPSTREAM_PORT/v1 and some
      OPENAI_API_KEY; FAKE_UPSTREAM_PORT is then required and the fake
      binds to it. SERVER_API_KEY is sent as the client key when the server
      has API_KEY/API_KEYS configured.

What it checks: a non-streaming and a streaming completion through
`client.chat.completions.create(...)`, the request as the upstream saw it
(body, the server's key rather than the client's), upstream 429/400 errors
surfacing as the SDK's own exception types with the upstream's message,
and `x-backend-mode` through `with_raw_response`.

Prints "N passed, M failed"; exits 1 when a check failed, 2 when it could
not set up.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAKE_TEXT = ["Hello", " from", " the", " fake", " upstream"]
RATE_LIMIT_MESSAGE = "Rate limit reached for smoke tests"
BAD_REQUEST_MESSAGE = "Invalid 'messages': the smoke test says so"
OWN_OPENAI_KEY = "sk-smoke-upstream-key-000000000001"
OWN_API_KEY = "sk-cca-smoke-client-key-0001"


class FakeUpstream(BaseHTTPRequestHandler):
    """Answers by model name: `gpt-smoke-429` and `gpt-smoke-400` fail,
    anything else succeeds (as SSE when the body asks for a stream)."""

    protocol_version = "HTTP/1.1"
    seen = []  # (path, headers dict with lower-case names, body bytes)
    seen_lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with self.seen_lock:
            self.seen.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
            )
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        model = body.get("model", "")
        if model == "gpt-smoke-429":
            self.send_json(
                429,
                {"error": {"message": RATE_LIMIT_MESSAGE, "type": "requests",
                           "param": None, "code": "rate_limit_exceeded"}},
                {"retry-after": "1", "x-ratelimit-remaining-requests": "0"},
            )
        elif model == "gpt-smoke-400":
            self.send_json(
                400,
                {"error": {"message": BAD_REQUEST_MESSAGE,
                           "type": "invalid_request_error",
                           "param": "messages", "code": None}},
            )
        elif body.get("stream"):
            usage = (body.get("stream_options") or {}).get("include_usage")
            self.send_stream(model, bool(usage))
        else:
            self.send_json(200, completion(model), {"x-request-id": "req_smoke"})

    def send_json(self, status, value, headers=None):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, model, with_usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [chunk(model, {"role": "assistant", "content": ""}, None)]
        events += [chunk(model, {"content": piece}, None) for piece in FAKE_TEXT]
        events.append(chunk(model, {}, "stop"))
        if with_usage:
            final = chunk(model, {}, None)
            final["choices"] = []
            final["usage"] = usage_block()
            events.append(final)
        for event in events:
            self.write_chunk(("data: " + json.dumps(event) + "\n\n").encode())
        self.write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def usage_block():
    return {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def completion(model):
    return {
        "id": "chatcmpl-smoke",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "".join(FAKE_TEXT)}}],
        "usage": usage_block(),
    }


def chunk(model, delta, finish):
    return {
        "id": "chatcmpl-smoke",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake(port):
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def find_binary():
    configured = os.environ.get("SERVER_BIN")
    if configured:
        return configured
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for profile in ("release", "debug"):
        path = os.path.join(root, "target", profile, "claude-cli-api")
        if os.path.exists(path):
            return path
    raise RuntimeError("no server binary: build it or set SERVER_BIN")


def start_server(fake_port, state_dir):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", state_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STATE_DIR": state_dir,
        "LOG_LEVEL": "warn",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
        "OPENAI_API_KEY": OWN_OPENAI_KEY,
        "API_KEY": OWN_API_KEY,
    }
    proc = subprocess.Popen([find_binary()], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(url + "/health", timeout=1).close()
            return proc, url
        except urllib.error.HTTPError:
            return proc, url  # answering at all is enough (503 = no backend)
        except OSError:
            time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError("the server did not answer /health within 15 s")


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def last_upstream_request():
    with FakeUpstream.seen_lock:
        return FakeUpstream.seen[-1] if FakeUpstream.seen else None


def run_checks(client, openai, server_openai_key, client_key):
    messages = [{"role": "user", "content": "Say hello"}]
    checks = []

    def check(name):
        def register(fn):
            checks.append((name, fn))
            return fn
        return register

    @check("non-streaming completion")
    def _():
        r = client.chat.completions.create(model="gpt-smoke", messages=messages)
        assert r.choices[0].message.content == "".join(FAKE_TEXT), r
        assert r.usage.total_tokens == 12, r.usage

    @check("upstream got the body and the server's key, not the client's")
    def _():
        client.chat.completions.create(model="gpt-smoke", messages=messages, temperature=0.25)
        path, headers, raw = last_upstream_request()
        assert path == "/v1/chat/completions", path
        body = json.loads(raw)
        assert body["model"] == "gpt-smoke" and body["temperature"] == 0.25, body
        auth = headers.get("authorization", "")
        if server_openai_key:
            assert auth == f"Bearer {server_openai_key}", "wrong upstream key"
        assert client_key not in auth, "the client's server key went upstream"

    @check("streaming completion with usage")
    def _():
        stream = client.chat.completions.create(
            model="gpt-smoke", messages=messages, stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = "", None, None
        for c in stream:
            if c.choices:
                text += c.choices[0].delta.content or ""
                finish = c.choices[0].finish_reason or finish
            if c.usage:
                usage = c.usage
        assert text == "".join(FAKE_TEXT), text
        assert finish == "stop", finish
        assert usage is not None and usage.total_tokens == 12, usage

    @check("upstream 429 surfaces as openai.RateLimitError")
    def _():
        try:
            client.chat.completions.create(model="gpt-smoke-429", messages=messages)
        except openai.RateLimitError as e:
            assert e.status_code == 429, e.status_code
            assert RATE_LIMIT_MESSAGE in str(e), str(e)
            assert e.code == "rate_limit_exceeded", e.code
            assert e.response.headers.get("retry-after") == "1", dict(e.response.headers)
            return
        raise AssertionError("no exception raised")

    @check("upstream 400 surfaces as openai.BadRequestError, streaming too")
    def _():
        for stream in (False, True):
            try:
                client.chat.completions.create(
                    model="gpt-smoke-400", messages=messages, stream=stream
                )
            except openai.BadRequestError as e:
                assert BAD_REQUEST_MESSAGE in str(e), str(e)
                assert e.param == "messages", e.param
                continue
            raise AssertionError(f"no exception raised (stream={stream})")

    @check("with_raw_response shows x-backend-mode")
    def _():
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-smoke", messages=messages
        )
        assert raw.headers.get("x-backend-mode") == "openai-passthrough", dict(raw.headers)
        assert raw.headers.get("x-request-id"), dict(raw.headers)
        assert raw.parse().choices[0].message.content == "".join(FAKE_TEXT)

    @check("with_raw_response on a stream shows x-backend-mode")
    def _():
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-smoke", messages=messages, stream=True
        )
        assert raw.headers.get("x-backend-mode") == "openai-passthrough", dict(raw.headers)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert text == "".join(FAKE_TEXT), text

    passed = failed = 0
    for name, fn in checks:
        try:
            fn()
            passed += 1
            print(f"ok    {name}")
        except Exception:  # a check failing in any way is a failed check
            failed += 1
            print(f"FAIL  {name}")
            traceback.print_exc()
    return passed, failed


def main():
    try:
        import openai
    except ImportError:
        print("sdk-smoke: the `openai` package is not installed", file=sys.stderr)
        return 2

    server_url = os.environ.get("SERVER_URL")
    proc = None
    try:
        if server_url:
            port = os.environ.get("FAKE_UPSTREAM_PORT")
            if not port:
                print("sdk-smoke: SERVER_URL needs FAKE_UPSTREAM_PORT", file=sys.stderr)
                return 2
            fake = start_fake(int(port))
            client_key = os.environ.get("SERVER_API_KEY") or "sk-cca-unused-client-key"
            server_openai_key = None
        else:
            fake = start_fake(0)
            state_dir = tempfile.mkdtemp(prefix="sdk-smoke-")
            proc, server_url = start_server(fake.server_address[1], state_dir)
            client_key = OWN_API_KEY
            server_openai_key = OWN_OPENAI_KEY
    except (OSError, RuntimeError) as e:
        print(f"sdk-smoke: setup failed: {e}", file=sys.stderr)
        return 2

    try:
        client = openai.OpenAI(
            base_url=server_url.rstrip("/") + "/v1",
            api_key=client_key,
            max_retries=0,
            timeout=30,
        )
        passed, failed = run_checks(client, openai, server_openai_key, client_key)
    finally:
        if proc is not None:
            stop_server(proc)
        fake.shutdown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
