//! The real binary as a child process (for foundation, log_hygiene, and
//! the drain tests of agents, warm and spares): started with a cleared
//! environment on a free port, its stderr read line by line, and killed on
//! drop so a failed test leaves no process behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;
use wait_timeout::ChildExt;

use super::{free_port, temp_dir};

/// The `claude` the binary is given unless a test says otherwise: there is
/// none there, so nothing can run a real CLI.
pub const MISSING_CLI: &str = "/nonexistent/claude-cli-api-test/claude";
/// Nothing listens on the discard port, so a passthrough that tried to
/// connect would fail at once instead of leaving the machine.
pub const CLOSED_UPSTREAM: &str = "http://127.0.0.1:9/v1";

/// The binary with an empty environment but `PATH` and `HOME`, so nothing
/// from the developer's shell changes what it does.
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-cli-api"));
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// A running binary whose stderr is read line by line on a thread. Dropping
/// it kills the process if it is still alive, so a failed test leaves
/// nothing behind.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Starts the binary on a free port. PORT=0 is refused by design, so a
    /// port is found by binding and releasing one; if another process takes
    /// it in between, the bind fails (exit 1) and another port is tried.
    pub fn start(vars: &[(&str, &str)]) -> Running {
        for _ in 0..5 {
            let mut running = Running::spawn(free_port(), vars);
            if running
                .wait_line(Duration::from_secs(10), |l| l.contains("\"listening\""))
                .is_some()
            {
                return running;
            }
            let status = running.wait_exit(Duration::from_secs(5));
            assert_eq!(status.code(), Some(1), "{:?}", running.seen);
        }
        panic!("no free port found for the binary");
    }

    pub fn spawn(port: u16, vars: &[(&str, &str)]) -> Running {
        let state = temp_dir("bin-state");
        let mut cmd = binary();
        cmd.env("PORT", port.to_string())
            .env("LOG_FORMAT", "json")
            .env("STATE_DIR", &state)
            .env("CLAUDE_PATH", MISSING_CLI)
            .env("OPENAI_BASE_URL", CLOSED_UPSTREAM);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line for which `pred` holds (lines already read
    /// count: log lines of concurrent requests come in any order).
    pub fn wait_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The address from the `listening` log line.
    pub fn addr(&self) -> SocketAddr {
        let line = self
            .seen
            .iter()
            .find(|l| l.contains("\"listening\""))
            .unwrap_or_else(|| panic!("no listening line; stderr: {:?}", self.seen));
        let v: Value = serde_json::from_str(line).unwrap();
        v["addr"].as_str().unwrap().parse().unwrap()
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sending a signal to a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}) failed");
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.child.wait_timeout(limit).unwrap() {
            Some(status) => status,
            None => panic!("the server did not exit within {limit:?}"),
        }
    }

    /// SIGTERM, then the drain to a clean exit; gives how long it took.
    pub fn drain(&mut self) -> Duration {
        let signalled = std::time::Instant::now();
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(15));
        assert!(status.success(), "{status:?}");
        signalled.elapsed()
    }

    /// Every stderr line, once the process has exited.
    pub fn all_lines(mut self) -> Vec<String> {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(5)) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stderr stayed open"),
            }
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
