"""Shared pieces of the end-to-end scripts: where things live, a tiny test
runner that prints `N passed, M failed`, and process helpers that look at
/proc (never at process names on the command line of pkill and friends)."""

import json
import os
import socket
import sys
import threading
import time
import traceback
from http.server import ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache", "e2e")
NODE_DIR = os.path.join(CACHE, "node")
CLI_LINK = os.path.join(NODE_DIR, "node_modules", ".bin", "claude")


def cli_path():
    """The real native `claude` binary (the npm `.bin` entry is a symlink to it)."""
    override = os.environ.get("E2E_CLAUDE")
    path = os.path.realpath(override or CLI_LINK)
    if not os.access(path, os.X_OK):
        sys.exit(f"claude CLI not found at {path}: run scripts/e2e/setup.sh first")
    return path


class Suite:
    """Runs test functions in order; a test passes when it returns."""

    def __init__(self, only=None):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.only = only

    def run(self, name, fn, *args):
        if self.only and not any(o in name for o in self.only):
            return
        started = time.monotonic()
        try:
            fn(*args)
        except Exception as e:  # report every kind of failure the same way
            self.failed += 1
            took = time.monotonic() - started
            print(f"FAIL {name} ({took:.1f}s): {type(e).__name__}: {e}", flush=True)
            if os.environ.get("E2E_VERBOSE"):
                traceback.print_exc()
            self.failures.append(name)
        else:
            self.passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def free_port():
    """A port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assistant_turn(message):
    """The assistant message to send back, from an SDK ChatCompletionMessage."""
    return {"role": "assistant", "content": message.content,
            "tool_calls": [{"id": tc.id, "type": "function",
                            "function": {"name": tc.function.name,
                                         "arguments": tc.function.arguments}}
                           for tc in message.tool_calls]}


def metric_samples(text):
    """A Prometheus text scrape as {series: value}."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def proc_stat(pid):
    """(state, ppid, pgid) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain spaces.
    fields = data[data.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def proc_exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(ppid):
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid:
            out.append(pid)
    return out


def alive(pid):
    """True while the process exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def members_of_group(pgid):
    return [pid for pid in all_pids() if (st := proc_stat(pid)) and st[2] == pgid
            and st[0] != "Z"]


class RecordingFake:
    """What both fake APIs share: a threaded HTTP server on 127.0.0.1 whose
    handler class gets `owner` set to the fake, a thread-safe list of request
    records (echoed to stderr unless quiet), and start/stop on a thread."""

    def __init__(self, name, handler, port, quiet):
        self.name = name
        self.quiet = quiet
        self.records = []
        self._lock = threading.Lock()
        owned = type("Handler", (handler,), {"owner": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), owned)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def record(self, entry):
        with self._lock:
            self.records.append(entry)
        if not self.quiet:
            print(json.dumps({"fake": self.name, **entry}), file=sys.stderr, flush=True)

    def records_where(self, keep):
        with self._lock:
            return [r for r in self.records if keep(r)]

    def serve_in_thread(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
