#!/usr/bin/env python3
"""A local stand-in for the OpenAI Chat Completions API, for end-to-end tests
of the passthrough backend.

`POST /v1/chat/completions` answers JSON, or SSE ending in `data: [DONE]` when
the body asks for `"stream": true`. The answer text says what arrived:

    passthrough model=gpt-4o-mini messages=2 auth=bearer

A bearer key starting with the bad-key prefix (sk-bad) gets OpenAI's 401 body.
`GET /v1/models` lists one model. Run standalone (prints `PORT=<n>`) or import
it and call `start()`; each request is recorded (path, header names, model,
whether the key was good) for tests to inspect. Keys are never logged.
"""

import argparse
import itertools
import json
import sys
import time
from http.server import BaseHTTPRequestHandler

from common import RecordingFake

DEFAULT_BAD_PREFIX = "sk-bad"
_ids = itertools.count(1)


class FakeOpenAI(RecordingFake):
    def __init__(self, port=0, bad_prefix=DEFAULT_BAD_PREFIX, quiet=False):
        self.bad_prefix = bad_prefix
        super().__init__("openai", _Handler, port, quiet)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def chat_records(self):
        return self.records_where(lambda r: r.get("path") == "/v1/chat/completions")


def start(**kwargs):
    """Start a fake on a background thread; call `.close()` when done."""
    return FakeOpenAI(**kwargs).serve_in_thread()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None

    def log_message(self, fmt, *args):
        pass

    def _send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fakeoai{next(_ids):06d}")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _key(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _unauthorized(self):
        self._send_json(401, {"error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        key = self._key()
        self.owner.record({"method": "GET", "path": path, "key_ok": self._key_ok(key)})
        if not self._key_ok(key):
            self._unauthorized()
        elif path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 1700000000,
                 "owned_by": "fake"}]})
        else:
            self._send_json(404, {"error": {"message": "Not found", "type":
                                            "invalid_request_error", "code": None}})

    def _key_ok(self, key):
        return bool(key) and not key.startswith(self.owner.bad_prefix)

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self._key()
        rec = {"method": "POST", "path": path, "key_ok": self._key_ok(key),
               "header_names": sorted({k.lower() for k in self.headers.keys()})}
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = None
        if isinstance(req, dict):
            rec.update({"model": req.get("model"), "stream": bool(req.get("stream")),
                        "messages": len(req.get("messages") or [])})
        self.owner.record(rec)
        if not self._key_ok(key):
            self._unauthorized()
            return
        if path != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": "Not found", "type":
                                            "invalid_request_error", "code": None}})
            return
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list):
            self._send_json(400, {"error": {"message": "'messages' is required",
                                            "type": "invalid_request_error",
                                            "param": "messages", "code": None}})
            return
        model = str(req.get("model", ""))
        text = f"passthrough model={model} messages={len(req['messages'])} auth=bearer"
        cid = f"chatcmpl-fake{next(_ids):06d}"
        created = int(time.time())
        usage = {"prompt_tokens": max(1, len(raw) // 4), "completion_tokens": len(text.split()),
                 "total_tokens": max(1, len(raw) // 4) + len(text.split())}
        if req.get("stream"):
            self._stream(cid, created, model, text, usage,
                         bool((req.get("stream_options") or {}).get("include_usage")))
            return
        self._send_json(200, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage, "system_fingerprint": "fp_fake"})

    def _stream(self, cid, created, model, text, usage, include_usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(delta, finish=None, with_usage=False):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "system_fingerprint": "fp_fake",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish}]}
            if include_usage:
                obj["usage"] = None
            if with_usage:
                obj["choices"] = []
                obj["usage"] = usage
            self._chunk(f"data: {json.dumps(obj)}\n\n".encode())

        try:
            chunk({"role": "assistant", "content": "", "refusal": None})
            for word in text.split(" "):
                chunk({"content": word + " "})
            chunk({}, finish="stop")
            if include_usage:
                chunk({}, with_usage=True)
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bad-key-prefix", default=DEFAULT_BAD_PREFIX)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    fake = FakeOpenAI(port=args.port, bad_prefix=args.bad_key_prefix, quiet=args.quiet)
    print(f"PORT={fake.port}", flush=True)
    try:
        fake.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.httpd.server_close()


if __name__ == "__main__":
    main()
