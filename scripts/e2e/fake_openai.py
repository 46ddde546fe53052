#!/usr/bin/env python3
"""A local stand-in for the OpenAI API, for end-to-end tests of the
passthrough backend (the chat relay and the relay of every other /v1/ route).

`POST /v1/chat/completions` answers JSON, or SSE ending in `data: [DONE]` when
the body asks for `"stream": true`. The answer text says what arrived:

    passthrough model=gpt-4o-mini messages=2 auth=bearer

The other routes, enough for the official SDKs to parse their answers:

- `GET /v1/models` lists one model; `GET /v1/models/{id}` answers any id
  (owned_by "fake-openai") but ids starting with `missing-` (404);
  `DELETE /v1/models/{id}` answers `deleted: true`.
- `POST /v1/responses`: a Responses API object whose output text says what
  arrived (`responses model=... input=...`), or, with `"stream": true`, the
  Responses SSE events (`event:` and `data:` lines, no `[DONE]`):
  response.created, response.in_progress, response.output_item.added,
  response.content_part.added, response.output_text.delta (one a word),
  response.output_text.done, response.content_part.done,
  response.output_item.done, response.completed. An input that contains
  PAUSE makes the stream wait PAUSE_S seconds after the first delta. The exact
  bytes of each stream are kept in its record (`sse`).
  A request that offers `function` tools plays a small model with tools (the
  agent loop of the Agents SDK): while its input holds no
  `function_call_output`, the answer is one `function_call` item calling the
  first tool with `{"city": <place>}` (the tool's own property name when it
  has a single other one; the place is the capitalized word after "in " in
  the input, else Paris); once the input holds outputs, the answer is a
  message "The tools said: " + the outputs joined by " | ". Streamed, the call
  comes as response.function_call_arguments.delta pieces and .done instead
  of the text and content-part events.
- `POST /v1/embeddings`: one vector of EMBED_DIM floats per input
  (`embedding_vector(text)`), as floats or base64 (`encoding_format`).
- `POST /v1/files` (multipart): reads the body as it comes, 1 MiB at a time
  (a pause of UPLOAD_PAUSE_PER_MIB after each MiB, so a big upload
  takes a while), stores nothing, and
  answers a file object whose `bytes` is the size of the file part received;
  the record has its size and sha256. `DELETE /v1/files/{id}` answers
  `deleted: true`.
- `POST /v1/audio/speech`: `speech_bytes(input, voice)` (deterministic, a
  few KB) as audio/mpeg, with a Content-Disposition.
- Anything else: 404 with an OpenAI error body.

Every answer but chat carries `x-ratelimit-remaining-requests`,
`openai-version` and `openai-processing-ms` headers. A bearer key starting
with the bad-key prefix (sk-bad) gets OpenAI's 401 body.

Run standalone (prints `PORT=<n>`) or import it and call `start()`; each
request is recorded for tests to inspect: method, path, query, header names,
the values of the non-secret headers, whether the key was good and the key's
fingerprint (`key_fingerprint(key)`, never the key itself), the body's size,
and for JSON bodies model, stream and the number of messages.
"""

import argparse
import base64
import hashlib
import itertools
import json
import random
import re
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from common import RecordingFake

DEFAULT_BAD_PREFIX = "sk-bad"
EMBED_DIM = 8
PAUSE_S = 0.6
MIB = 1024 * 1024
UPLOAD_PAUSE_PER_MIB = 0.02
# Request headers whose values a record keeps (the rest only by name).
SHOWN_HEADERS = ("content-type", "content-length", "accept", "transfer-encoding",
                 "openai-organization", "openai-project", "openai-beta")
# Answer headers of the OpenAI API that a relay is expected to pass back.
API_HEADERS = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
               "openai-version": "2020-10-01", "openai-processing-ms": "7"}
_ids = itertools.count(1)


def key_fingerprint(key):
    """How records name a key: the first 12 hex digits of its sha256."""
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else None


def embedding_vector(text):
    """The fake's embedding of a text: EMBED_DIM floats that survive float32."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128 for b in digest[:EMBED_DIM]]


def speech_bytes(text, voice):
    """The fake's "audio": an ID3 header, an MPEG frame header and 4000 bytes
    that depend only on the text and the voice."""
    rng = random.Random(hashlib.sha256(f"{voice}\0{text}".encode()).digest())
    return (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64"
            + bytes(rng.getrandbits(8) for _ in range(4000)))


class FakeOpenAI(RecordingFake):
    def __init__(self, port=0, bad_prefix=DEFAULT_BAD_PREFIX, quiet=False):
        self.bad_prefix = bad_prefix
        super().__init__("openai", _Handler, port, quiet)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def chat_records(self):
        return self.records_where(lambda r: r.get("path") == "/v1/chat/completions")

    def count(self):
        with self._lock:
            return len(self.records)

    def records_since(self, count):
        with self._lock:
            return list(self.records[count:])

    def record(self, entry):
        # The SSE bytes of a stream stay out of the stderr echo.
        if self.quiet or "sse" not in entry:
            return super().record(entry)
        with self._lock:
            self.records.append(entry)
        shown = {k: v for k, v in entry.items() if k != "sse"}
        print(json.dumps({"fake": self.name, **shown}), file=sys.stderr, flush=True)


def start(**kwargs):
    """Start a fake on a background thread; call `.close()` when done."""
    return FakeOpenAI(**kwargs).serve_in_thread()


def _not_found(what="Not found"):
    return {"error": {"message": what, "type": "invalid_request_error", "code": None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None

    def log_message(self, fmt, *args):
        pass

    # --- answering ---

    def _send_json(self, status, obj, api_headers=False):
        data = json.dumps(obj).encode()
        self._send_bytes(status, "application/json", data, api_headers=api_headers)

    def _send_bytes(self, status, content_type, data, api_headers=True, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fakeoai{next(_ids):06d}")
        if api_headers:
            for k, v in API_HEADERS.items():
                self.send_header(k, v)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _key(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _key_ok(self, key):
        return bool(key) and not key.startswith(self.owner.bad_prefix)

    def _unauthorized(self):
        self._send_json(401, {"error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})

    # --- reading ---

    def _body_chunks(self, size=MIB):
        """The request body, as it arrives (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                n = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = n
                while left:
                    data = self.rfile.read(min(left, size))
                    if not data:
                        return
                    left -= len(data)
                    yield data
                self.rfile.readline(8)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                data = self.rfile.read(min(left, size))
                if not data:
                    return
                left -= len(data)
                yield data

    def _base_record(self, method):
        path, _, query = self.path.partition("?")
        key = self._key()
        names = sorted({k.lower() for k in self.headers.keys()})
        shown = {k.lower(): v for k, v in self.headers.items() if k.lower() in SHOWN_HEADERS}
        return {"method": method, "path": path, "query": query, "key_ok": self._key_ok(key),
                "key_fp": key_fingerprint(key), "header_names": names, "headers": shown}

    # --- routing ---

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def _handle(self, method):
        rec = self._base_record(method)
        path = rec["path"]
        if method == "POST" and path == "/v1/files" and \
                self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            self._upload(rec)
            return
        raw = b"".join(self._body_chunks())
        rec["body_bytes"] = len(raw)
        req = None
        if raw:
            try:
                req = json.loads(raw)
            except ValueError:
                req = None
        if isinstance(req, dict):
            rec.update({"model": req.get("model"), "stream": bool(req.get("stream")),
                        "messages": len(req.get("messages") or [])})
            rec["body"] = req if len(raw) < 65536 else None
        if not self._key_ok(self._key()):
            self.owner.record(rec)
            self._unauthorized()
            return
        if method == "POST" and path == "/v1/chat/completions":
            self.owner.record(rec)
            self._chat(raw, req)
        elif method == "POST" and path == "/v1/responses":
            self._responses(rec, req)
        elif method == "POST" and path == "/v1/embeddings":
            self.owner.record(rec)
            self._embeddings(req)
        elif method == "POST" and path == "/v1/audio/speech":
            self.owner.record(rec)
            self._speech(req)
        elif method == "GET" and path == "/v1/models":
            self.owner.record(rec)
            self._send_json(200, {"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 1700000000,
                 "owned_by": "fake"}]})
        elif method in ("GET", "DELETE") and path.startswith("/v1/models/") \
                and path.count("/") == 3 and path != "/v1/models/":
            self.owner.record(rec)
            model = unquote(path[len("/v1/models/"):])
            if model.startswith("missing-"):
                self._send_json(404, {"error": {
                    "message": f"The model '{model}' does not exist",
                    "type": "invalid_request_error", "param": None,
                    "code": "model_not_found"}}, api_headers=True)
            elif method == "GET":
                self._send_json(200, {"id": model, "object": "model", "created": 1700000000,
                                      "owned_by": "fake-openai"}, api_headers=True)
            else:
                self._send_json(200, {"id": model, "object": "model", "deleted": True},
                                api_headers=True)
        elif method == "DELETE" and path.startswith("/v1/files/") and path.count("/") == 3:
            self.owner.record(rec)
            self._send_json(200, {"id": path[len("/v1/files/"):], "object": "file",
                                  "deleted": True}, api_headers=True)
        else:
            self.owner.record(rec)
            self._send_json(404, _not_found(f"Unknown request URL: {method} {path}"),
                            api_headers=True)

    # --- chat completions ---

    def _chat(self, raw, req):
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

    # --- responses ---

    def _responses(self, rec, req):
        if not isinstance(req, dict) or "input" not in req or not req.get("model"):
            self.owner.record(rec)
            self._send_json(400, {"error": {"message": "'model' and 'input' are required",
                                            "type": "invalid_request_error",
                                            "param": "input", "code": None}}, api_headers=True)
            return
        model = str(req["model"])
        tools = [t for t in req.get("tools") or []
                 if isinstance(t, dict) and t.get("type") == "function"]
        outputs = _function_outputs(req["input"])
        rec.update({"tool_names": [str(t.get("name")) for t in tools],
                    "function_call_outputs": len(outputs)})
        n = next(_ids)
        rid = f"resp_fake{n:06d}"
        created = int(time.time())
        if outputs:
            text = "The tools said: " + " | ".join(outputs)
        elif tools:
            text = None
        else:
            text = f"responses model={model} input={_input_summary(req['input'])}"
        if text is None:
            args = json.dumps(_call_arguments(tools[0], _input_summary(req["input"])))
            item = {"id": f"fc_fake{n:06d}", "type": "function_call", "status": "completed",
                    "call_id": f"call_fake{n:06d}", "name": str(tools[0].get("name")),
                    "arguments": args}
            out_tokens = len(args)
            rec["reply"] = "function_call"
        else:
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            item = {"id": f"msg_fake{n:06d}", "type": "message", "status": "completed",
                    "role": "assistant", "content": [part]}
            out_tokens = len(text.split())
            rec["reply"] = "text" if outputs else "echo"
        usage = {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": out_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 5 + out_tokens}

        def response(status, output, usage_):
            return {"id": rid, "object": "response", "created_at": created, "status": status,
                    "error": None, "incomplete_details": None,
                    "instructions": req.get("instructions"),
                    "max_output_tokens": req.get("max_output_tokens"), "model": model,
                    "output": output, "parallel_tool_calls": True,
                    "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
                    "store": True, "temperature": 1.0,
                    "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": tools,
                    "top_p": 1.0, "truncation": "disabled", "usage": usage_, "user": None,
                    "metadata": {}}

        if not req.get("stream"):
            self.owner.record(rec)
            self._send_json(200, response("completed", [item], usage), api_headers=True)
            return

        seq = itertools.count(0)
        events = []

        def event(kind, **fields):
            data = {"type": kind, "sequence_number": next(seq), **fields}
            events.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
            return events[-1]

        iid = item["id"]
        head = [event("response.created", response=response("in_progress", [], None)),
                event("response.in_progress", response=response("in_progress", [], None))]
        if text is None:
            args = item["arguments"]
            head.append(event("response.output_item.added", output_index=0,
                              item={**item, "status": "in_progress", "arguments": ""}))
            body = [event("response.function_call_arguments.delta", item_id=iid,
                          output_index=0, delta=args[i:i + 6])
                    for i in range(0, len(args), 6)]
            tail = [event("response.function_call_arguments.done", item_id=iid, output_index=0,
                          arguments=args)]
        else:
            part = item["content"][0]
            head += [event("response.output_item.added", output_index=0,
                           item={**item, "status": "in_progress", "content": []}),
                     event("response.content_part.added", item_id=iid, output_index=0,
                           content_index=0, part={**part, "text": ""})]
            deltas = [w + " " for w in text.split(" ")]
            deltas[-1] = deltas[-1][:-1]
            body = [event("response.output_text.delta", item_id=iid, output_index=0,
                          content_index=0, delta=d, logprobs=[]) for d in deltas]
            tail = [event("response.output_text.done", item_id=iid, output_index=0,
                          content_index=0, text=text, logprobs=[]),
                    event("response.content_part.done", item_id=iid, output_index=0,
                          content_index=0, part=part)]
        tail += [event("response.output_item.done", output_index=0, item=item),
                 event("response.completed", response=response("completed", [item], usage))]
        rec["sse"] = b"".join(events)
        rec["events"] = len(events)
        self.owner.record(rec)
        pause = "PAUSE" in json.dumps(req["input"])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in API_HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            for i, data in enumerate(head + body + tail):
                self._chunk(data)
                if pause and i == len(head):  # after the first delta
                    time.sleep(PAUSE_S)
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    # --- embeddings, audio, files ---

    def _embeddings(self, req):
        if not isinstance(req, dict) or "input" not in req:
            self._send_json(400, {"error": {"message": "'input' is required",
                                            "type": "invalid_request_error",
                                            "param": "input", "code": None}}, api_headers=True)
            return
        inputs = req["input"] if isinstance(req["input"], list) else [req["input"]]
        data = []
        for i, text in enumerate(inputs):
            vec = embedding_vector(str(text))
            if req.get("encoding_format") == "base64":
                vec = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(len(str(t).split()) for t in inputs)
        self._send_json(200, {"object": "list", "data": data, "model": req.get("model"),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                        api_headers=True)

    def _speech(self, req):
        if not isinstance(req, dict) or not req.get("input"):
            self._send_json(400, {"error": {"message": "'input' is required",
                                            "type": "invalid_request_error",
                                            "param": "input", "code": None}}, api_headers=True)
            return
        data = speech_bytes(str(req["input"]), str(req.get("voice")))
        self._send_bytes(200, "audio/mpeg", data,
                         extra=[("Content-Disposition", 'attachment; filename="speech.mp3"')])

    def _upload(self, rec):
        """Counts a multipart body's bytes as they arrive: the whole body, and
        the file part's size and sha256 (the file part may come anywhere; its
        end is found by the boundary, held back between reads)."""
        ctype = self.headers.get("Content-Type", "")
        boundary = ctype.split("boundary=", 1)[-1].split(";", 1)[0].strip().strip('"')
        delim = b"\r\n--" + boundary.encode()
        total, fields = 0, {}
        buf = b"\r\n"  # so the first boundary line matches delim too
        state, name, filename = "preamble", None, None
        file_size, digest, value = 0, hashlib.sha256(), b""
        for data in self._body_chunks():
            total += len(data)
            buf += data
            while True:
                if state == "preamble" or state == "after":
                    i = buf.find(delim)
                    if i < 0 or len(buf) < i + len(delim) + 2:
                        break
                    rest = buf[i + len(delim):]
                    if rest.startswith(b"--"):
                        state, buf = "end", b""
                        break
                    buf, state = rest[2:], "headers"  # past the CRLF
                elif state == "headers":
                    j = buf.find(b"\r\n\r\n")
                    if j < 0:
                        break
                    head = buf[:j].decode(errors="replace")
                    buf = buf[j + 4:]
                    disp = next((ln for ln in head.split("\r\n")
                                 if ln.lower().startswith("content-disposition")), "")
                    name = _param(disp, "name")
                    filename = _param(disp, "filename")
                    state, value = ("file" if filename is not None else "field"), b""
                elif state in ("file", "field"):
                    i = buf.find(delim)
                    content = buf if i < 0 else buf[:i]
                    if i < 0:  # keep what could be the start of the boundary
                        keep = len(delim) - 1
                        content, buf = buf[:-keep] if len(buf) > keep else b"", buf[-keep:]
                    else:
                        buf = buf[i:]
                    if state == "file":
                        file_size += len(content)
                        digest.update(content)
                    else:
                        value += content[:4096]
                    if i < 0:
                        break
                    if state == "field":
                        fields[name] = value.decode(errors="replace")
                    state = "after"
                else:
                    buf = b""
                    break
            if total > MIB:
                time.sleep(UPLOAD_PAUSE_PER_MIB)
        rec.update({"body_bytes": total, "file_bytes": file_size,
                    "file_sha256": digest.hexdigest(), "filename": filename,
                    "fields": fields, "multipart_complete": state == "end"})
        self.owner.record(rec)
        if not self._key_ok(self._key()):
            self._unauthorized()
            return
        if state != "end" or filename is None:
            self._send_json(400, {"error": {"message": "a multipart body with a file part "
                                            "is required", "type": "invalid_request_error",
                                            "param": "file", "code": None}}, api_headers=True)
            return
        self._send_json(200, {"id": f"file-fake{next(_ids):06d}", "object": "file",
                              "bytes": file_size, "created_at": int(time.time()),
                              "filename": filename, "purpose": fields.get("purpose", ""),
                              "status": "processed", "status_details": None,
                              "expires_at": None}, api_headers=True)


def _param(header, key):
    """A quoted parameter of a Content-Disposition line, or None."""
    marker = f'; {key}="'
    i = header.find(marker)
    if i < 0:
        return None
    j = header.find('"', i + len(marker))
    return header[i + len(marker):j]


def _function_outputs(value):
    """The `output` texts of the input's function_call_output items, in order
    (a list output as its text parts joined)."""
    found = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict) or item.get("type") != "function_call_output":
            continue
        out = item.get("output")
        if isinstance(out, list):
            out = " ".join(str(p.get("text", "")) for p in out if isinstance(p, dict))
        found.append(str(out))
    return found


def _call_arguments(tool, prompt):
    """The arguments the fake model passes to `tool`: the place the prompt
    asks about under "city" (or under the tool's only property)."""
    m = re.search(r"\bin ([A-Z][\w-]*)", prompt)
    place = m.group(1) if m else "Paris"
    props = ((tool.get("parameters") or {}).get("properties") or {})
    key = "city" if "city" in props or len(props) != 1 else next(iter(props))
    return {key: place}


def _input_summary(value):
    """The Responses `input` in a few words: its text, or the texts of its
    messages joined by |."""
    if isinstance(value, str):
        return value
    texts = []
    for item in value if isinstance(value, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p.get("text", "") for p in content if isinstance(p, dict)]
    return "|".join(texts)


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
