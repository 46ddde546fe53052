#!/usr/bin/env python3
"""`make bench` phase "warm sessions": the real `claude` CLI (the one
scripts/e2e/setup.sh caches in .cache/e2e) against the e2e fake Anthropic
API (scripts/e2e/fake_anthropic.py, in this process), through the server,
one request at a time. A benchmark, not a test: it never fails on a missed
target, it reports it.

    .cache/e2e/venv/bin/python scripts/bench/warm.py --bin SERVER [--report FILE]

Four servers side by side, each with its own STATE_DIR and HOME, their
requests interleaved (the series least far along goes next), so that what
else the host does falls on every figure alike:

- cold new (WARM_SESSIONS=0): new sessions, a process each;
- cold resumed (WARM_SESSIONS=0): one session resumed turn after turn (every
  turn a new process, `--resume`);
- warm (WARM_SESSIONS=4): conversations whose turns 2.. go to the process
  the first turn left warm;
- spare (WARM_SPARES=1): new sessions, each served by the spare started
  for it.

Before every request the host is let settle: every process under the servers
idle (no CPU used for a while), as between the turns of a person. Timings are
from the request's first byte out to the whole answer in. CPU per turn is the
utime+stime of the server and of the turn's process, with the children each
reaped (cutime/cstime), from before the first turn of a series to after the
last, settled, over the turns: cold, everything under the server (nothing
else lives there between turns); warm, the conversation's process, not the
other sessions' idle warm processes, whose own cost (CPU per second while
idle) has a row of its own.

Prints a markdown table (figure 8 of the bench report) and, with --report,
puts it in that file: it replaces the part an earlier run wrote there (between
the `<!-- warm sessions -->` marks), or appends it. Without the cached CLI it
says so, writes that row, and exits 0.

Knobs (environment): BENCH_WARM_TURNS (turns per figure, default 12: that
many cold new sessions, cold resumed turns, spare new sessions, and turns in
each warm conversation), BENCH_WARM_CONVS (warm conversations, default 5),
BENCH_SERVER_ENV (extra VAR=VALUE words for every server), BENCH_KEEP=1 (keep
the temp directory with the server logs).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "e2e"))
from common import CLI_LINK, alive, all_pids, proc_exe, proc_stat  # noqa: E402

MARK_BEGIN = "<!-- warm sessions -->"
MARK_END = "<!-- /warm sessions -->"
ANTHROPIC_KEY = "sk-ant-bench-key"
TICK = os.sysconf("SC_CLK_TCK")
HEADER = ("| figure | cold | warm | ratio or difference | target | met? |\n"
          "| --- | --- | --- | --- | --- | --- |")


def log(msg):
    print(f"[bench warm] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A figure that could not be measured; its text goes into the table."""


# ------------------------------------------------------------- /proc ----

def children(pid):
    """Live children of pid: /proc/PID/task/*/children, or a scan of /proc."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    try:
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        return out
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN
        return [p for p in all_pids() if (st := proc_stat(p)) and st[1] == pid]
    except OSError:
        return out


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            found.append(c)
            todo.append(c)
    return found


def stat_ticks(pid, with_reaped):
    """utime+stime (+cutime+cstime) of a process in clock ticks, 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return 0
    fields = data[data.rfind(")") + 2:].split()
    # fields[0] is the state (stat field 3): utime is field 14, so index 11.
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def tree_cpu_s(pid):
    """CPU seconds of pid and everything under it, reaped children included."""
    total = 0
    for p in [pid] + descendants(pid):
        total += stat_ticks(p, with_reaped=True)
    return total / TICK


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ------------------------------------------------------------- server ----

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp, name, binary, cli, fake_url, env):
        self.name = name
        self.binary = binary
        self.cli = cli
        self.dir = os.path.join(tmp, name)
        for sub in ("state", "home", "work"):
            os.makedirs(os.path.join(self.dir, sub))
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.path.join(self.dir, "home"),
            "LANG": "C.UTF-8",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "warn",
            "STATE_DIR": os.path.join(self.dir, "state"),
            "CLAUDE_WORK_DIR": os.path.join(self.dir, "work"),
            "CLAUDE_PATH": cli,
            "ANTHROPIC_BASE_URL": fake_url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "OPENAI_API_KEY": "sk-bench",
            "RATE_LIMIT_PER_IP": "0",
            "MAX_CONCURRENT_PER_KEY": "0",
            "RATE_LIMIT_PER_SESSION": "0",
            "WARM_MIN_FREE_MB": "0",
            "SHUTDOWN_TIMEOUT_MS": "5000",
            "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
            "MALLOC_ARENA_MAX": "2",
        }
        for word in os.environ.get("BENCH_SERVER_ENV", "").split():
            k, _, v = word.partition("=")
            self.env[k] = v
        self.env.update(env)
        self.log_path = os.path.join(self.dir, "server.log")
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([binary], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, cwd=self.dir)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"server {name} exited {self.proc.returncode} at start: "
                             f"{self.log_tail()}")
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failed(f"server {name}: no /health 200 in 15 s")
            time.sleep(0.05)

    def log_tail(self, n=5):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return ""

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def health_warm(self):
        status, body = self.get("/health")
        if status != 200:
            return {}
        return json.loads(body).get("checks", {}).get("warm") or {}

    def turn(self, messages, session=None):
        """One non-streaming Claude request: (seconds, headers, text)."""
        body = json.dumps({"model": "sonnet", "messages": messages}).encode()
        headers = {"Content-Type": "application/json", "X-Claude-Code": "true"}
        if session:
            headers["X-Claude-Session-ID"] = session
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            started = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            took = time.perf_counter() - started
        finally:
            conn.close()
        if resp.status != 200:
            raise Failed(f"server {self.name}: HTTP {resp.status}: {data[:200]!r}")
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        text = json.loads(data)["choices"][0]["message"]["content"]
        return took, hdrs, text

    def cli_processes(self):
        return [p for p in descendants(self.proc.pid) if proc_exe(p) == self.cli and alive(p)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"server {self.name} ignored SIGTERM for 20 s: SIGKILL")
                self.proc.kill()
                self.proc.wait()
        # Nothing of ours may outlive the run: claude processes working
        # under this server's directory are stopped by PID.
        left = []
        for pid in all_pids():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd.startswith(self.dir + os.sep) and alive(pid):
                left.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if left:
            log(f"server {self.name} left claude processes behind (killed): {left}")
        return left


# ------------------------------------------------------------ figures ----

def settle(servers, quiet_polls=6, interval=0.1, timeout=20):
    """Waits until everything under the servers is idle: the same processes,
    and over the last quiet_polls polls about one clock tick per poll at most
    (idle warm processes tick now and then), none above three."""
    deadline = time.monotonic() + timeout
    last_procs, last_cpu, used = None, None, []
    while time.monotonic() < deadline:
        procs = tuple(sorted(p for srv in servers for p in descendants(srv.proc.pid)))
        cpu = sum(tree_cpu_s(srv.proc.pid) for srv in servers)
        if procs == last_procs:
            used.append(round((cpu - last_cpu) * TICK))
            recent = used[-quiet_polls:]
            if len(recent) == quiet_polls and max(recent) <= 3 and sum(recent) <= quiet_polls + 1:
                return
        else:
            used = []
        last_procs, last_cpu = procs, cpu
        time.sleep(interval)
    log(f"processes still busy after {timeout}s; going on")


def user(text):
    return {"role": "user", "content": text}


def own_cpu_s(srv, pids):
    """CPU seconds of the server itself and of pids (with the children they
    reaped), not of the other processes under the server: idle warm
    processes of other sessions tick along on their own (see idle_cpu), and
    the server's reaped children (cutime) would bring in evicted ones."""
    ticks = stat_ticks(srv.proc.pid, with_reaped=False)
    for pid in pids:
        ticks += sum(stat_ticks(p, with_reaped=True) for p in [pid] + descendants(pid))
    return ticks / TICK


def new_session(srv, prefix, n):
    """One new session of one turn: (ms, X-Claude-Warm)."""
    took, hdrs, text = srv.turn([user(f"{prefix} {n}: hello")])
    if not text.startswith("turns=1 ") or hdrs.get("x-claude-session-created") != "true":
        raise Failed(f"server {srv.name}: new session answered {text[:80]!r}, {hdrs}")
    return took * 1000, hdrs.get("x-claude-warm") == "true"


def new_sessions(srv, count, prefix, out):
    """A series (generator, one request per step): count new sessions,
    (ms, X-Claude-Warm) of each appended to out."""
    for n in range(count):
        out.append(new_session(srv, prefix, n))
        yield


def conversation(srv, turns, prefix, out, cpu_out, whole_tree):
    """A series: one conversation of `turns` turns, (ms, X-Claude-Warm) of
    each appended to out; the CPU seconds of turns 2.. appended to cpu_out
    at a last step without a request, once everything has settled. Counted:
    everything under the server (whole_tree: a cold server, where nothing
    else lives), or the server and the process turn 1 left (warm)."""
    messages, sid = [], None
    before = set(srv.cli_processes())
    cpu = lambda: tree_cpu_s(srv.proc.pid)  # noqa: E731
    cpu0 = None
    for n in range(1, turns + 1):
        messages.append(user(f"{prefix} turn {n}"))
        if n == 2:
            if not whole_tree:
                mine = [p for p in srv.cli_processes() if p not in before]
                if len(mine) != 1:
                    raise Failed(f"server {srv.name}: after turn 1, new claude processes {mine}")
                cpu = lambda: own_cpu_s(srv, mine)  # noqa: E731
            cpu0 = cpu()
        took, hdrs, text = srv.turn(messages, session=sid)
        if not text.startswith(f"turns={n} "):
            raise Failed(f"server {srv.name}: turn {n} answered {text[:80]!r}")
        sid = sid or hdrs.get("x-claude-session-id")
        out.append((took * 1000, hdrs.get("x-claude-warm") == "true"))
        messages.append({"role": "assistant", "content": text})
        yield
    if cpu0 is not None:
        cpu_out.append(cpu() - cpu0)


def conversations(srv, count, turns, prefix, convos, cpu_out):
    """A series: count conversations one after the other."""
    for c in range(count):
        convos.append([])
        yield from conversation(srv, turns, f"{prefix} {c}", convos[-1], cpu_out, False)


def interleave(servers, series):
    """Runs the series' steps in turn, the one least far along first, so that
    whatever the host does meanwhile falls on every figure alike; before each
    step everything settles. series: (generator, steps, quiet_polls)."""
    done = [0] * len(series)
    active = list(range(len(series)))
    while active:
        i = min(active, key=lambda k: (done[k] / series[k][1], k))
        settle(servers, quiet_polls=series[i][2])
        try:
            next(series[i][0])
            done[i] += 1
        except StopIteration:
            active.remove(i)


def idle_cpu(srv, seconds=3.0):
    """CPU milliseconds per second that one idle warm process uses, averaged
    over those under the server, and how many there were."""
    kids = srv.cli_processes()
    if not kids:
        return None, 0
    t0, c0 = time.monotonic(), sum(stat_ticks(k, True) for k in kids)
    time.sleep(seconds)
    used = (sum(stat_ticks(k, True) for k in kids) - c0) / TICK
    return used * 1000 / (time.monotonic() - t0) / len(kids), len(kids)


def p50(values):
    return statistics.median(values) if values else None


def measure(binary, cli, fake_url, tmp, turns, convs):
    r = {"turns": turns, "convs": convs}
    servers = []

    def start(name, **env):
        srv = Server(tmp, name, binary, cli, fake_url, env)
        servers.append(srv)
        return srv

    try:
        # Four servers side by side, each its own HOME and STATE_DIR.
        cold_new = start("cold-new", WARM_SESSIONS="0")
        cold_resumed = start("cold-resumed", WARM_SESSIONS="0")
        warm = start("warm", WARM_SESSIONS="4")
        spare = start("spare", WARM_SESSIONS="4", WARM_SPARES="1")
        # The CLI's first run in a HOME sets it up: not measured.
        for srv in servers:
            settle(servers)
            new_session(srv, "warm-up", 0)
        log(f"{turns} cold new sessions, {turns} cold resumed turns, {convs} warm "
            f"conversations of {turns} turns, {turns} new sessions on spares, interleaved")
        cold_new_out, spare_out, cold_conv, cold_cpu, convos, warm_cpu = [], [], [], [], [], []
        interleave(servers, [
            (new_sessions(cold_new, turns, "cold new", cold_new_out), turns, 6),
            (conversation(cold_resumed, turns + 1, "cold", cold_conv, cold_cpu, True),
             turns + 2, 6),
            (conversations(warm, convs, turns, "warm", convos, warm_cpu), convs * (turns + 1), 6),
            # A spare is ready about 2 s after it starts: the CLI works for
            # 0.6 s, rests a little, and works again; 1.5 s of quiet covers it.
            (new_sessions(spare, turns, "spare new", spare_out), turns, 15),
        ])
        r["cold_new"] = [ms for ms, _ in cold_new_out]
        r["cold_resumed"] = [ms for ms, _ in cold_conv[1:]]
        r["cold_cpu"] = sum(cold_cpu) / turns
        warm_turns = [t for conv in convos for t in conv[1:]]
        r["warm_resumed"] = [ms for ms, _ in warm_turns]
        r["warm_hits"] = sum(w for _, w in warm_turns)
        r["warm_cpu"] = sum(warm_cpu) / max(1, len(warm_turns))
        if turns >= 10:
            r["t2"] = p50([conv[1][0] for conv in convos])
            r["t10"] = p50([conv[9][0] for conv in convos])
            r["t10_minus_t2"] = p50([conv[9][0] - conv[1][0] for conv in convos])
        r["spare_new"] = [ms for ms, _ in spare_out]
        r["spare_hits"] = sum(w for _, w in spare_out)

        settle(servers)
        r["idle_ms_per_s"], r["idle_procs"] = idle_cpu(warm)
        r["health_warm"] = warm.health_warm()
        r["proc_rss"] = [sum(rss_bytes(p) for p in [k] + descendants(k))
                         for k in warm.cli_processes()]
    finally:
        for srv in servers:
            left = srv.stop()
            if left:
                r.setdefault("leaks", []).extend(left)
    return r


# -------------------------------------------------------------- table ----

def fmt_ms(v):
    return "n/a" if v is None else f"{v:.1f} ms"


def met(value, op, limit):
    if value is None:
        return "n/a"
    ok = value <= limit if op == "<=" else value >= limit
    return "yes" if ok else "**no**"


def row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(r, version):
    turns, convs = r["turns"], r["convs"]
    lines = [
        "",
        f"Figure 8, warm sessions: the real claude CLI ({version}) against the e2e fake "
        "Anthropic API, through the server, one request at a time, the four servers' "
        "requests interleaved, every process idle before each request (a spare: 1.5 s idle). "
        "Cold: WARM_SESSIONS=0 (a process per turn, "
        f"resumed turns with --resume), {turns} new sessions and {turns} resumed turns of one "
        f"session. Warm: WARM_SESSIONS=4, turns 2–{turns} of {convs} conversations. Spare: "
        f"WARM_SPARES=1, {turns} new sessions. CPU: utime+stime of the server and the "
        "turn's process (reaped children too), per turn. p50 = median; "
        "MB = 10^6 bytes.",
        "",
        HEADER,
    ]
    cold_r, warm_r = p50(r["cold_resumed"]), p50(r["warm_resumed"])
    ratio = warm_r / cold_r if cold_r and warm_r is not None else None
    n_warm = len(r["warm_resumed"])
    lines.append(row(
        f"8. resumed turn p50 (warm: {r['warm_hits']} of {n_warm} answered "
        "X-Claude-Warm: true)",
        fmt_ms(cold_r), fmt_ms(warm_r), "n/a" if ratio is None else f"{ratio:.3f}×",
        "≤ 0.15×", met(ratio, "<=", 0.15)))
    cold_cpu, warm_cpu = r["cold_cpu"] * 1000, r["warm_cpu"] * 1000
    ratio = warm_cpu / cold_cpu if cold_cpu else None
    lines.append(row("8. CPU per resumed turn (the server and the turn's process; warm: "
                     "other sessions' idle processes left out)",
                     f"{cold_cpu:.0f} ms", f"{warm_cpu:.0f} ms",
                     "n/a" if ratio is None else f"{ratio:.3f}×", "≤ 0.15×",
                     met(ratio, "<=", 0.15)))
    cold_n, spare_n = p50(r["cold_new"]), p50(r["spare_new"])
    ratio = spare_n / cold_n if cold_n and spare_n is not None else None
    lines.append(row(
        f"8. new session p50 (warm: WARM_SPARES=1, {r['spare_hits']} of "
        f"{len(r['spare_new'])} served by a spare)",
        fmt_ms(cold_n), fmt_ms(spare_n), "n/a" if ratio is None else f"{ratio:.3f}×",
        "≤ 0.3×", met(ratio, "<=", 0.3)))
    if "t10_minus_t2" in r:
        d = r["t10_minus_t2"]
        lines.append(row(
            f"8. warm conversation: turn 10 against turn 2 (medians of {convs} "
            "conversations; columns: turn 2, turn 10)",
            fmt_ms(r["t2"]), fmt_ms(r["t10"]), f"{d:+.1f} ms", "≤ +10 ms",
            met(d, "<=", 10)))
    hw = r.get("health_warm") or {}
    per = None
    count = (hw.get("processes") or 0) + (hw.get("spares") or 0)
    if count:
        per = hw.get("rss_bytes", 0) / count / 1e6
    procs = r.get("proc_rss") or []
    proc_txt = ", ".join(f"{b / 1e6:.0f}" for b in procs) or "none found"
    lines.append(row(
        f"8. RSS of one warm process (/health: {hw.get('processes', '?')} processes, "
        f"{(hw.get('rss_bytes') or 0) / 1e6:.0f} MB; /proc VmRSS each: {proc_txt} MB)",
        "—", "n/a" if per is None else f"{per:.0f} MB", "—", "—", "—"))
    if r.get("idle_ms_per_s") is not None:
        v = r["idle_ms_per_s"]
        lines.append(row(
            f"8. CPU of one idle warm process (mean of {r['idle_procs']}, over 3 s)", "—",
            f"{v:.1f} ms/s ({v / 10:.2f} % of a core)", "—", "—", "—"))
    lines.append(row(
        "8. p50 side by side: cold new / spare new / cold resumed / warm resumed", "—",
        " / ".join(fmt_ms(v) for v in (cold_n, spare_n, cold_r, warm_r)), "—", "—", "—"))
    if r.get("leaks"):
        lines.append(row("8. claude processes left after a server stopped", "—",
                         str(r["leaks"]), "—", "none", "**no**"))
    lines.append("")
    return lines


def not_measured(why):
    return ["", "Figure 8, warm sessions (real claude CLI):", "", HEADER,
            row("8. warm sessions", "—", "—", f"not measured: {why}", "—", "n/a"), ""]


def write_report(path, lines):
    section = "\n".join([MARK_BEGIN] + lines + [MARK_END]) + "\n"
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if MARK_BEGIN in old and MARK_END in old:
        head, _, rest = old.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END)
        new = head + section.rstrip("\n") + tail
    else:
        new = old + ("" if not old or old.endswith("\n") else "\n") + section
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the server binary")
    ap.add_argument("--report", help="markdown file to put the table in")
    args = ap.parse_args()
    turns = int(os.environ.get("BENCH_WARM_TURNS", "12"))
    convs = int(os.environ.get("BENCH_WARM_CONVS", "5"))

    cli = os.path.realpath(os.environ.get("E2E_CLAUDE") or CLI_LINK)
    if not os.access(cli, os.X_OK):
        why = ("no claude CLI in .cache/e2e (run scripts/e2e/setup.sh or make e2e once, "
               "then again)")
        log(f"skipped: {why}")
        lines = not_measured(why)
        print("\n".join(lines))
        if args.report:
            write_report(args.report, lines)
        return 0
    version = subprocess.run([cli, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip().split(" ")[0] or "?"

    import fake_anthropic  # scripts/e2e, on sys.path above
    fake = fake_anthropic.start(quiet=True)
    tmp = tempfile.mkdtemp(prefix="cca-bench-warm-")
    status = 0
    try:
        r = measure(os.path.abspath(args.bin), cli, fake.url, tmp, turns, convs)
        with open(os.path.join(tmp, "results.json"), "w") as f:
            json.dump(r, f, indent=1)
        for key in ("cold_new", "spare_new", "cold_resumed", "warm_resumed"):
            log(f"{key} ms: " + " ".join(f"{v:.0f}" for v in r[key]))
        lines = table(r, version)
    except Failed as e:
        log(f"not measured: {e}")
        lines = not_measured(str(e).replace("|", "\\|"))
        status = 0
    finally:
        fake.close()
        if os.environ.get("BENCH_KEEP") == "1":
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines), flush=True)
    if args.report:
        write_report(args.report, lines)
        log(f"table also written to {args.report}")
    return status


if __name__ == "__main__":
    sys.exit(main())
