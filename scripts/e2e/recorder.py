"""A recording HTTP proxy for the client matrix (issue 28): a client is given
the proxy's URL as its base URL, the proxy forwards every request (any method,
path, query and body) to the target and relays the answer back, streamed
answers (SSE, chunked) piece by piece as they arrive, and keeps each exchange
so that a test can look at what the client sent and the fixtures under
fixtures/clients/ can be written from it.

    rec = Recorder("http://127.0.0.1:3456").start()
    ... run a client with base URL rec.url + "/claude/v1" ...
    rec.exchanges        # one dict per request, in the order they came
    rec.save("fixtures/clients/codex-cli-0.171.0", "exec-reply")
    rec.close()

An exchange: method, path (with its query), headers (names lower-cased, the
credential headers masked to their first 7 characters + "****", e.g.
"Bearer sk-cca-****"), body (parsed as JSON when it is JSON, else the text,
or {"base64": ...} for bytes that are not UTF-8), status, response_headers
(lower-cased), elapsed (seconds from the request to the end of the answer),
and response_body when the recorder was made with keep_response=True (the
text of the answer; an SSE stream as it came). Only the standard library.
"""

import base64
import gzip
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that belong to one connection, not to the request or the answer.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "trailers",
              "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"}
# Headers whose values are credentials: kept as their first 7 characters.
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie", "set-cookie",
                  "x-openai-api-key", "openai-api-key", "api-key", "anthropic-api-key"}
SAVED_KEYS = ("client", "api", "method", "path", "headers", "body", "status")


def mask(value):
    """'Bearer sk-cca-e2e-0123' -> 'Bearer sk-cca-****'; 'sk-ant-x' -> 'sk-ant-****'."""
    scheme, sep, token = value.partition(" ")
    if not sep:
        scheme, token = "", value
    token = token.strip()
    shown = token[:7] + "****" if len(token) > 7 else "****"
    return f"{scheme} {shown}" if scheme else shown


def header_dict(items):
    """Lower-cased names; repeated headers joined by ", "; secrets masked."""
    out = {}
    for name, value in items:
        name = name.lower()
        if name in SECRET_HEADERS:
            value = mask(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def api_of(path):
    """chat, responses or messages for the three APIs' routes, else None."""
    route = path.split("?", 1)[0].rstrip("/")
    if route.endswith("/chat/completions"):
        return "chat"
    if re.search(r"/responses(/|$)", route):
        return "responses"
    if re.search(r"/messages(/|$)", route):
        return "messages"
    return None


def decode_body(raw, encoding=None):
    """The body as JSON when it is JSON, else text, else {"base64": ...}."""
    if not raw:
        return None
    encoding = (encoding or "").lower().strip()
    try:
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding:
            return {"content_encoding": encoding, "base64": base64.b64encode(raw).decode()}
    except (OSError, zlib.error):
        return {"content_encoding": encoding, "base64": base64.b64encode(raw).decode()}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}
    try:
        return json.loads(text)
    except ValueError:
        return text


class Recorder:
    """The proxy. `target_base_url` is where requests go: a request for
    /claude/v1/responses reaches `target_base_url` + /claude/v1/responses.
    `client` names the client in saved files (default: the directory's name)."""

    def __init__(self, target_base_url, client=None, keep_response=False, timeout=600):
        target = urllib.parse.urlsplit(target_base_url)
        if target.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {target_base_url}")
        self.target = target
        self.target_prefix = target.path.rstrip("/")
        self.client = client
        self.keep_response = keep_response
        self.timeout = timeout
        self.exchanges = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"recorder": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name=f"recorder-{self.port}")
        self._thread.start()
        return self

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.close()

    def _connection(self):
        cls = (http.client.HTTPSConnection if self.target.scheme == "https"
               else http.client.HTTPConnection)
        return cls(self.target.hostname, self.target.port, timeout=self.timeout)

    def _add(self, exchange):
        with self._lock:
            self.exchanges.append(exchange)

    def clear(self):
        """Forgets the exchanges so far (e.g. between the turns of a test)."""
        with self._lock:
            self.exchanges.clear()

    def mark(self):
        """A position to pass to since()."""
        with self._lock:
            return len(self.exchanges)

    def since(self, mark):
        with self._lock:
            return list(self.exchanges[mark:])

    def finish(self, prefix):
        """The end of a client test: with RECORD_CLIENTS=1 its API requests
        are saved under fixtures/clients/<client>/ as NN-<prefix>.json; the
        proxy is closed either way."""
        try:
            if os.environ.get("RECORD_CLIENTS") == "1":
                root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                out = os.path.join(root, "fixtures", "clients", self.client)
                paths = self.save(out, prefix, exchanges=[e for e in self.exchanges
                                                         if e.get("api")])
                print(f"     recorded {len(paths)} request(s) in "
                      f"{os.path.relpath(out, root)}/*-{prefix}.json", flush=True)
        finally:
            self.close()

    def save(self, out_dir, prefix, exchanges=None, client=None, with_response=False):
        """Writes each exchange (all, or the ones given) as out_dir/NN-prefix.json,
        NN counting from 01; files of an earlier save with the same prefix go
        first. Returns the paths written."""
        exchanges = list(self.exchanges if exchanges is None else exchanges)
        client = client or self.client or os.path.basename(os.path.normpath(out_dir))
        os.makedirs(out_dir, exist_ok=True)
        old = re.compile(r"^\d{2,}-" + re.escape(prefix) + r"\.json$")
        for name in os.listdir(out_dir):
            if old.match(name):
                os.remove(os.path.join(out_dir, name))
        paths = []
        width = max(2, len(str(len(exchanges))))
        for i, ex in enumerate(exchanges, 1):
            doc = {"client": client, "api": ex.get("api")}
            doc.update({k: ex.get(k) for k in SAVED_KEYS[2:]})
            if "host" in (doc["headers"] or {}):  # the recorder's port: noise in a diff
                doc["headers"] = {**doc["headers"], "host": "127.0.0.1:PORT"}
            if with_response and "response_body" in ex:
                doc["response_body"] = ex["response_body"]
            path = os.path.join(out_dir, f"{i:0{width}d}-{prefix}.json")
            with open(path, "w") as f:
                json.dump(doc, f, indent=2, ensure_ascii=False)
                f.write("\n")
            paths.append(path)
        return paths


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    recorder = None  # set per Recorder

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self):
        rec = self.recorder
        started = time.monotonic()
        raw = self._read_body()
        exchange = {
            "api": api_of(self.path),
            "method": self.command,
            "path": self.path,
            "headers": header_dict(self.headers.items()),
            "body": decode_body(raw, self.headers.get("Content-Encoding")),
            "status": None,
            "response_headers": {},
            "started": time.time(),
        }
        out_headers = {}
        for name, value in self.headers.items():
            low = name.lower()
            if low in HOP_BY_HOP or low in ("host", "content-length"):
                continue
            out_headers[name] = value
        if raw or self.command in ("POST", "PUT", "PATCH"):
            out_headers["Content-Length"] = str(len(raw))
        conn = rec._connection()
        try:
            try:
                conn.request(self.command, rec.target_prefix + self.path, body=raw or None,
                             headers=out_headers)
                resp = conn.getresponse()
            except OSError as e:
                exchange["status"] = 502
                exchange["error"] = f"{type(e).__name__}: {e}"
                rec._add(exchange)
                data = json.dumps({"error": {"message": f"recorder: upstream: {e}"}}).encode()
                self.send_response(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            exchange["status"] = resp.status
            exchange["response_headers"] = header_dict(resp.getheaders())
            # Recorded before the answer is relayed, so that a test sees the
            # request while a stream is still open.
            rec._add(exchange)
            kept = self._relay(resp)
            if rec.keep_response:
                exchange["response_body"] = decode_body(
                    kept, resp.getheader("Content-Encoding")) if kept else None
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            exchange["elapsed"] = round(time.monotonic() - started, 3)
            conn.close()

    def _relay(self, resp):
        """Sends the upstream's answer on; returns its bytes when kept."""
        keep = self.recorder.keep_response
        kept = []
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for name, value in resp.getheaders():
            if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                continue
            self.send_header(name, value)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if no_body:
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            return b""
        if length is not None:
            self.send_header("Content-Length", length)
            self.end_headers()
            remaining = int(length)
            while remaining > 0:
                data = resp.read1(min(remaining, 65536))
                if not data:
                    break
                remaining -= len(data)
                self.wfile.write(data)
                self.wfile.flush()
                if keep:
                    kept.append(data)
            return b"".join(kept)
        # Chunked or read-until-close: relayed chunk by chunk, each flushed
        # as soon as it arrived (a client waits on each SSE event).
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            data = resp.read1(65536)
            if not data:
                break
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            if keep:
                kept.append(data)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        return b"".join(kept)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _proxy
