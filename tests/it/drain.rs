//! Graceful drain of the real binary with `claude` children running: new
//! work is refused, children are stopped (SIGTERM, then SIGKILL for one
//! that ignores it), open streams end with an error event and `[DONE]`,
//! the process exits 0 and leaves no child behind (one still exiting after
//! its answer included). Also what the binary does to itself before
//! serving (its malloc settings).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wait_timeout::ChildExt;

use crate::support::*;

struct Binary {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_binary(records: &std::path::Path, extra: &[(&str, &str)]) -> Binary {
    let port = free_port();
    let state = temp_dir("drain-state");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-cli-api"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &state)
        .env("PORT", port.to_string())
        .env("STATE_DIR", &state)
        .env("CLAUDE_PATH", FAKE_CLI)
        .env("FAKE_CLAUDE_RECORD_DIR", records)
        .env("CLAUDE_ENV_PASSTHROUGH", "FAKE_CLAUDE_RECORD_DIR")
        .env("RATE_LIMIT_PER_IP", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    }));
    Binary { child, addr }
}

fn fake_pids(records: &std::path::Path) -> Vec<i32> {
    std::fs::read_dir(records)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".json")
                .and_then(|p| p.parse().ok())
        })
        .collect()
}

/// The ignore-term fake has its SIGTERM handler in place.
fn term_ignored(records: &std::path::Path) -> bool {
    std::fs::read_dir(records)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("term-ignored-"))
}

fn body(user: &str, stream: bool) -> String {
    json!({"model": "sonnet", "stream": stream, "messages": [{"role": "user", "content": user}]})
        .to_string()
}

#[test]
fn drain_stops_children_finishes_streams_and_exits_zero() {
    let records = temp_dir("drain-records");
    let mut server = start_binary(
        &records,
        &[
            ("SHUTDOWN_TIMEOUT_MS", "3000"),
            ("CLAUDE_KILL_GRACE_MS", "1000"),
        ],
    );
    let addr = server.addr;
    let plain =
        std::thread::spawn(move || chat(addr, &[CLAUDE], &body("[[fake:sleep:30]]", false)));
    let stubborn =
        std::thread::spawn(move || chat(addr, &[CLAUDE], &body("[[fake:ignore-term]]", false)));
    let mut stream = SseClient::open(addr, &[CLAUDE], &body("[[fake:slow:500]]", true));
    assert_eq!(stream.status, 200);
    assert!(stream.next_data().is_some());
    assert!(wait_until(Duration::from_secs(10), || fake_pids(&records)
        .len()
        == 3));
    assert!(wait_until(Duration::from_secs(10), || term_ignored(
        &records
    )));
    let pids = fake_pids(&records);

    let signalled = Instant::now();
    // SAFETY: signalling the server process this test started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(wait_until(Duration::from_secs(2), || {
        chat(addr, &[CLAUDE], &body("hi", false)).error_code() == "server_shutting_down"
    }));

    let rest = stream.collect();
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    assert!(rest.iter().any(|d| d.contains("stream_error")), "{rest:?}");
    assert_eq!(plain.join().unwrap().error_code(), "server_shutting_down");
    let stubborn = stubborn.join().unwrap();
    assert_eq!(stubborn.error_code(), "server_shutting_down");

    let status = server
        .child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("server exits");
    let drain = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        drain >= Duration::from_millis(900),
        "the stubborn child was given its grace: {drain:?}"
    );
    assert!(
        pids.iter().all(|p| !process_alive(*p)),
        "children left: {pids:?}"
    );
    eprintln!("drain with a SIGTERM-ignoring child took {drain:?}");
}

#[test]
fn a_cli_still_exiting_after_its_answer_is_stopped_by_the_drain() {
    let records = temp_dir("drain-records");
    let mut server = start_binary(&records, &[("SHUTDOWN_TIMEOUT_MS", "5000")]);
    let r = chat(server.addr, &[CLAUDE], &body("[[fake:linger]]", false));
    assert_eq!(r.status, 200);
    let pids = fake_pids(&records);
    assert!(pids.iter().all(|p| process_alive(*p)), "still exiting");

    let signalled = Instant::now();
    // SAFETY: signalling the server process this test started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let status = server
        .child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("server exits");
    assert!(status.success(), "{status:?}");
    // Stopped at the start of the drain, not left to the drain's limit.
    assert!(signalled.elapsed() < Duration::from_secs(4));
    assert!(
        pids.iter().all(|p| !process_alive(*p)),
        "children left: {pids:?}"
    );
}

#[test]
fn second_signal_exits_at_once() {
    let records = temp_dir("drain2-records");
    let mut server = start_binary(
        &records,
        &[
            ("SHUTDOWN_TIMEOUT_MS", "20000"),
            ("CLAUDE_KILL_GRACE_MS", "20000"),
        ],
    );
    let addr = server.addr;
    let stubborn =
        std::thread::spawn(move || chat(addr, &[CLAUDE], &body("[[fake:ignore-term]]", false)));
    assert!(wait_until(Duration::from_secs(10), || term_ignored(
        &records
    )));
    let pid = server.child.id() as i32;
    // SAFETY: signalling the server process this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(wait_until(Duration::from_secs(2), || {
        chat(addr, &[CLAUDE], &body("hi", false)).error_code() == "server_shutting_down"
    }));
    let second = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = server
        .child
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("server exits after the second signal");
    assert!(status.success());
    assert!(second.elapsed() < Duration::from_secs(2));
    let pids = fake_pids(&records);
    assert!(wait_until(Duration::from_secs(2), || pids
        .iter()
        .all(|p| !process_alive(*p))));
    let _ = stubborn.join();
}

/// ps and top show the server under its own name.
#[test]
fn the_process_keeps_its_name() {
    let records = temp_dir("comm-records");
    let server = start_binary(&records, &[]);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.child.id())).unwrap();
    assert_eq!(comm.trim(), "claude-cli-api");
}
