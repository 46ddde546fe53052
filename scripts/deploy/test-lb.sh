#!/usr/bin/env bash
# Runs scripts/deploy/nginx-lb.conf for real: nginx (Debian's, installed with
# apt-get as nginx-light when missing) on loopback with a throwaway TLS
# certificate, in front of two instances of the release binary (built or
# brought up to date first; SERVER_BIN picks another binary) that share
# nothing (each its own STATE_DIR and HOME), both using the fake CLI
# (fixtures/fake-claude). Then checks what docs/DEPLOYMENT.md promises:
#
#   - a three-turn session lands on one instance (turn 3 answers turns=3,
#     the fake CLI ran three times on that instance and never on the other,
#     nginx's log shows one upstream for the session);
#   - requests without a session id are spread over both instances;
#   - a stream arrives event by event through nginx (proxy_buffering off);
#   - with TRUST_PROXY=true the server sees nginx's entry of X-Forwarded-For,
#     not one the client forged;
#   - while one instance drains after SIGTERM, new requests reach the other;
#   - the systemd unit (scripts/deploy/claude-cli-api.service) passes
#     `systemd-analyze verify` when systemd-analyze is available.
#
# Prints "N passed, M failed"; exits 1 when a check failed, 2 when it could
# not set up. Everything it starts is stopped by PID on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/scripts/deploy"
TARGET=x86_64-unknown-linux-gnu
BIN="${SERVER_BIN:-$ROOT/target/$TARGET/release/claude-cli-api}"
FAKE="$ROOT/fixtures/fake-claude"

passed=0
failed=0
pid_a=""
pid_b=""
nginx_pid=""
work=""

die() {
  echo "test-lb.sh: $*" >&2
  exit 2
}

ok() {
  passed=$((passed + 1))
  echo "ok   $1"
}

fail() {
  failed=$((failed + 1))
  echo "FAIL $1${2:+: $2}"
}

cleanup() {
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null
    wait "$nginx_pid" 2>/dev/null
  fi
  for pid in $pid_a $pid_b; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in $pid_a $pid_b; do
    wait "$pid" 2>/dev/null
  done
  if [ -n "$work" ]; then
    if [ "$failed" -eq 0 ]; then
      rm -rf "$work"
    else
      echo "test-lb.sh: logs kept in $work" >&2
    fi
  fi
}
trap cleanup EXIT

# --- what it needs ------------------------------------------------------------

for tool in curl python3 openssl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  [ "$(id -u)" -eq 0 ] || die "nginx is missing; install it (apt-get install nginx-light) or run as root"
  echo "test-lb.sh: installing nginx-light with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null; } \
    || die "apt-get could not install nginx-light"
  NGINX=/usr/sbin/nginx
fi

# Without SERVER_BIN, bring the release build up to date (a no-op when it
# is), so the check never runs a stale binary.
if [ -z "${SERVER_BIN:-}" ]; then
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --target "$TARGET" --quiet) || die "the release build failed"
fi
[ -x "$BIN" ] || die "no server binary at $BIN"

work=$(mktemp -d "${TMPDIR:-/tmp}/test-lb.XXXXXX") || die "mktemp failed"
# nginx's worker processes may run as another user (nobody, www-data) when
# the master is root; they need to reach the prefix directory.
chmod 755 "$work"

# Three free loopback ports: one per instance, one for nginx.
read -r PORT_A PORT_B TLS_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)
[ -n "${TLS_PORT:-}" ] || die "could not find free ports"

# --- two instances that share nothing -------------------------------------------

start_instance() {
  local name=$1 port=$2 dir="$work/$1"
  mkdir -p "$dir/home" "$dir/records"
  # A clean environment, so no key of the caller's reaches the instances.
  env -i \
    PATH="$PATH" HOME="$dir/home" LANG=C.UTF-8 \
    HOST=127.0.0.1 PORT="$port" \
    STATE_DIR="$dir/state" \
    CLAUDE_PATH="$FAKE" \
    TRUST_PROXY=true \
    CLAUDE_KILL_GRACE_MS=2000 \
    FAKE_CLAUDE_RECORD_DIR="$dir/records" \
    CLAUDE_ENV_PASSTHROUGH=FAKE_CLAUDE_RECORD_DIR \
    LOG_FORMAT=json \
    "$BIN" >"$dir/server.log" 2>&1 &
  printf -v "pid_$name" '%s' "$!"
  echo "$name: pid $! on 127.0.0.1:$port" >&2
}

wait_for() {
  local url=$1 i
  for i in $(seq 1 100); do
    curl -ksf -o /dev/null "$url" && return 0
    sleep 0.1
  done
  return 1
}

start_instance a "$PORT_A"
start_instance b "$PORT_B"
wait_for "http://127.0.0.1:$PORT_A/health" || die "instance a did not start (see $work/a/server.log)"
wait_for "http://127.0.0.1:$PORT_B/health" || die "instance b did not start (see $work/b/server.log)"

# --- nginx from the template -----------------------------------------------------

prefix="$work/nginx"
mkdir -p "$prefix"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
  -keyout "$prefix/key.pem" -out "$prefix/cert.pem" >/dev/null 2>&1 \
  || die "openssl could not make a certificate"
sed -e "s|@PREFIX@|$prefix|g" \
    -e "s|@UPSTREAM_A@|127.0.0.1:$PORT_A|g" \
    -e "s|@UPSTREAM_B@|127.0.0.1:$PORT_B|g" \
    -e "s|@LISTEN@|127.0.0.1:$TLS_PORT|g" \
    -e "s|@SERVER_NAME@|localhost|g" \
    -e "s|@CERT@|$prefix/cert.pem|g" \
    -e "s|@KEY@|$prefix/key.pem|g" \
    "$HERE/nginx-lb.conf" >"$prefix/nginx.conf"
if grep -v '^ *#' "$prefix/nginx.conf" | grep -q '@[A-Z_]*@'; then
  die "a placeholder of nginx-lb.conf was not filled in"
fi

"$NGINX" -t -q -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
  || die "nginx -t rejected the configuration (see $prefix/error.log)"
"$NGINX" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" -g "daemon off;" &
nginx_pid=$!
LB="https://127.0.0.1:$TLS_PORT"
wait_for "$LB/health" || die "nginx did not start (see $prefix/error.log)"

# --- helpers ---------------------------------------------------------------------

# POSTs a Claude Code mode turn through nginx. Args: session id (or ""),
# prompt. Prints the response head and body into $work/last.head/.body and
# returns curl's status.
claude_turn() {
  local sid=$1 prompt=$2
  local headers=(-H 'Content-Type: application/json' -H 'X-Claude-Code: true')
  [ -n "$sid" ] && headers+=(-H "X-Claude-Session-ID: $sid")
  curl -ks -D "$work/last.head" -o "$work/last.body" "${headers[@]}" \
    -d "{\"model\":\"sonnet\",\"messages\":[{\"role\":\"user\",\"content\":\"$prompt\"}]}" \
    "$LB/v1/chat/completions"
}

status_of() { awk 'NR==1 {print $2}' "$work/last.head"; }
header_of() { grep -i "^$1:" "$work/last.head" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
content_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' "$work/last.body" 2>/dev/null; }

# nginx writes a log line just after the answer: waits (up to 2 s) until
# at least $2 lines of its access log match $1.
wait_for_log() {
  local i
  for i in $(seq 1 40); do
    [ "$(grep -c -e "$1" "$prefix/access.log")" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

# Runs of the fake CLI an instance recorded for a session.
runs_for() {
  local sid=$1 dir="$work/$2/records"
  grep -l -- "$sid" "$dir"/*.json 2>/dev/null | wc -l
}

# --- checks ----------------------------------------------------------------------

if curl -ksf -o /dev/null "$LB/health"; then ok "health through nginx over TLS"; else fail "health through nginx over TLS"; fi

# A three-turn session.
claude_turn "" "turn one"
sid=$(header_of X-Claude-Session-ID)
if [ "$(status_of)" = 200 ] && [ -n "$sid" ] && [ "$(header_of X-Claude-Session-Created)" = true ]; then
  ok "turn 1 starts session $sid"
else
  fail "turn 1 starts a session" "status $(status_of), body $(cat "$work/last.body")"
fi
for turn in 2 3; do
  claude_turn "$sid" "turn $turn"
  content=$(content_of)
  if [ "$(status_of)" = 200 ] && [[ "$content" == *"turns=$turn "* ]]; then
    ok "turn $turn resumes the session ($content)"
  else
    fail "turn $turn resumes the session" "status $(status_of), body $(cat "$work/last.body")"
  fi
done

runs_a=$(runs_for "$sid" a)
runs_b=$(runs_for "$sid" b)
if { [ "$runs_a" = 3 ] && [ "$runs_b" = 0 ]; } || { [ "$runs_a" = 0 ] && [ "$runs_b" = 3 ]; }; then
  ok "all three turns ran on one instance (a: $runs_a, b: $runs_b)"
else
  fail "all three turns ran on one instance" "a: $runs_a, b: $runs_b"
fi

# nginx's view: three answers for the session, each from the same instance
# (the last upstream of a line is the one that answered; an earlier one said
# 404 because the session was not there).
wait_for_log "got_sid=\"$sid\"" 3
served=$(grep -e "got_sid=\"$sid\"" "$prefix/access.log" \
  | sed -n 's/.*upstream="\([^"]*\)".*/\1/p' | awk -F', ' '{print $NF}')
if [ "$(echo "$served" | wc -l)" = 3 ] && [ "$(echo "$served" | sort -u | wc -l)" = 1 ]; then
  hops=$(grep -e "got_sid=\"$sid\"" "$prefix/access.log" | grep -c 'upstream_status="404, ')
  ok "nginx's log shows every turn answered by $(echo "$served" | head -1) ($hops after a 404 from the other)"
else
  fail "nginx's log shows every turn answered by one instance" "$(echo $served)"
fi

# A session no instance knows: both are asked, the answer is still a 404.
claude_turn "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09" "hello?"
code=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$work/last.body" 2>/dev/null)
wait_for_log 'sent_sid="7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"' 1
tried=$(grep 'sent_sid="7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"' "$prefix/access.log" \
  | sed -n 's/.*upstream="\([^"]*\)".*/\1/p' | tr ',' '\n' | grep -c .)
if [ "$(status_of)" = 404 ] && [ "$code" = session_not_found ] && [ "$tried" = 2 ]; then
  ok "an unknown session is a 404 session_not_found after both instances were asked"
else
  fail "an unknown session is a 404 after both instances were asked" "status $(status_of), code $code, instances asked: $tried"
fi

# New sessions (no header) are spread: round robin over the two instances.
before_a=$(ls "$work/a/records" | wc -l)
before_b=$(ls "$work/b/records" | wc -l)
for i in 1 2 3 4; do claude_turn "" "new session $i"; done
new_a=$(( $(ls "$work/a/records" | wc -l) - before_a ))
new_b=$(( $(ls "$work/b/records" | wc -l) - before_b ))
if [ "$new_a" -ge 1 ] && [ "$new_b" -ge 1 ] && [ $((new_a + new_b)) = 4 ]; then
  ok "four new sessions were spread over both instances (a: $new_a, b: $new_b)"
else
  fail "new sessions are spread over both instances" "a: $new_a, b: $new_b"
fi

# A stream through nginx: the fake CLI waits 250 ms between output lines, so
# the answer takes about two seconds; the first event must not wait for it.
if python3 - "$TLS_PORT" <<'PY'
import http.client, json, ssl, sys, time
ctx = ssl._create_unverified_context()
conn = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=30)
body = json.dumps({"model": "sonnet", "stream": True,
                   "messages": [{"role": "user", "content": "[[fake:slow:250]] hi"}]})
start = time.monotonic()
conn.request("POST", "/v1/chat/completions", body,
             {"Content-Type": "application/json", "X-Claude-Code": "true"})
resp = conn.getresponse()
first, events, done = None, 0, False
while True:
    line = resp.readline()
    if not line:
        break
    if line.startswith(b"data: "):
        events += 1
        if first is None:
            first = time.monotonic() - start
        if line.strip() == b"data: [DONE]":
            done = True
total = time.monotonic() - start
print(f"first event after {first:.2f}s, {events} events, [DONE] after {total:.2f}s")
sys.exit(0 if resp.status == 200 and done and first is not None and total - first > 1.0 else 1)
PY
then
  ok "a stream arrives event by event through nginx"
else
  fail "a stream arrives event by event through nginx"
fi

# X-Forwarded-For: the client's forged entry is ignored, nginx's is used.
rid="xff-check-$$"
curl -ks -o /dev/null -H 'Content-Type: application/json' -H "X-Request-ID: $rid" \
  -H 'X-Forwarded-For: 203.0.113.7' -H 'X-Claude-Code: true' \
  -d '{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}' \
  "$LB/v1/chat/completions"
# The access line is written just after the answer, so give it a moment.
seen=""
for i in $(seq 1 50); do
  seen=$(cat "$work/a/server.log" "$work/b/server.log" | grep -h "\"request_id\":\"$rid\"" \
    | python3 -c 'import json,sys; print(" ".join(json.loads(l).get("client_ip", "?") for l in sys.stdin))' 2>/dev/null)
  [ -n "$seen" ] && break
  sleep 0.05
done
if [ "$seen" = "127.0.0.1" ]; then
  ok "TRUST_PROXY takes nginx's X-Forwarded-For entry, not the client's"
else
  fail "TRUST_PROXY takes nginx's X-Forwarded-For entry" "the server saw '$seen'"
fi

# A rolling restart: instance a gets SIGTERM while a CLI process of its own
# ignores SIGTERM (so the drain lasts CLAUDE_KILL_GRACE_MS). Meanwhile a
# refuses new work with 503, which nginx passes on to instance b
# (proxy_next_upstream http_503); the request that was running on a ends
# with 503 server_shutting_down, as a drain ends Claude runs.
records_before=$(ls "$work/a/records" | wc -l)
curl -s -o "$work/inflight.body" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'X-Claude-Code: true' \
  -d '{"model":"sonnet","messages":[{"role":"user","content":"[[fake:ignore-term:30]] hi"}]}' \
  "http://127.0.0.1:$PORT_A/v1/chat/completions" >"$work/inflight.status" &
inflight=$!
for i in $(seq 1 100); do
  [ "$(ls "$work/a/records" | wc -l)" -gt "$records_before" ] && break
  sleep 0.05
done
sleep 0.3 # the fake installs its SIGTERM handler just after it starts
kill -TERM "$pid_a"
for i in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_A/health")" = 503 ] && break
  sleep 0.05
done
log_before=$(wc -l <"$prefix/access.log")
statuses=""
for i in 1 2 3 4; do
  claude_turn "" "during the restart $i"
  statuses="$statuses $(status_of)"
done
wait_for_log '.' "$((log_before + 4))"
moved=$(tail -n +"$((log_before + 1))" "$prefix/access.log" | grep -c 'upstream_status="503, 200"')
wait "$inflight"
wait "$pid_a"
exit_a=$?
pid_a=""
if [ "$statuses" = " 200 200 200 200" ] && [ "$moved" -ge 1 ] \
   && [ "$(cat "$work/inflight.status")" = 503 ] && [ "$exit_a" = 0 ]; then
  ok "while one instance drains, nginx moves new requests to the other ($moved moved)"
else
  fail "while one instance drains, nginx moves new requests to the other" \
    "through nginx:$statuses ($moved moved after a 503); the draining instance's own request: $(cat "$work/inflight.status"); its exit status: $exit_a"
fi

# The systemd unit, with ExecStart pointed at the binary built here (verify
# insists that the program exists).
if command -v systemd-analyze >/dev/null; then
  unit="$work/claude-cli-api.service"
  sed -e "s|^ExecStart=.*|ExecStart=$BIN|" "$HERE/claude-cli-api.service" >"$unit"
  if out=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify accepts claude-cli-api.service"
  else
    fail "systemd-analyze verify accepts claude-cli-api.service" "$out"
  fi
else
  echo "skip systemd unit check: systemd-analyze is not installed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
