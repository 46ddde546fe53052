//! How a child's life ends: EOF on its stdin, what it still writes read
//! and dropped while it exits (stopped when it takes too long), then
//! reaped, with what its stderr said; and a child dropped without that
//! killed and reaped all the same.

use std::time::Instant;

use super::{CliProcess, EXIT_AFTER_EOF};
use crate::claude::child::output::{LineRead, StderrHead, StderrReader};
use crate::claude::reading::redact::redact;
use crate::supervisor::StopReason;

impl CliProcess {
    /// Closes stdin: a warm child exits once it sees that.
    pub fn send_eof(&mut self) {
        self.stdin.lock().take();
    }

    /// EOF on stdin, then whatever the child still writes is read and
    /// dropped while it exits (stopped if it takes longer than
    /// [`EXIT_AFTER_EOF`]); then it is reaped.
    pub fn close(mut self) {
        self.reap();
    }

    /// [`CliProcess::close`], keeping what stderr said and why the child
    /// was stopped, for a run that failed.
    pub fn reap(&mut self) -> Reaped {
        if self.reaped {
            return Reaped::default();
        }
        self.stdin.lock().take();
        if let Some(watch) = &self.watch {
            watch.deadline_by(Instant::now() + EXIT_AFTER_EOF);
        }
        while self.read_on() {}
        // Stdout closed: a child blocked on a full pipe gets EPIPE instead
        // of holding us. The stderr thread, which may stop the child, is
        // done before `wait`, and the watch goes only after it, so the
        // supervisor never signals a reaped group.
        self.lines = None;
        let stderr = self
            .stderr
            .take()
            .map(StderrReader::finish)
            .unwrap_or_default();
        let exit_code = self.child.wait().ok().flatten();
        self.reaped = true;
        let reason = self.watch.take().and_then(|watch| watch.reason());
        self.log_exit(exit_code, &stderr.text);
        Reaped {
            stderr,
            exit_code,
            reason,
        }
    }

    /// Reads and drops one more line; false once stdout has ended (or went
    /// over its limit).
    fn read_on(&mut self) -> bool {
        if self.stderr_flooded() {
            return false;
        }
        match self.next_line() {
            LineRead::Line(_) => true,
            LineRead::OverLimit => {
                self.stop(StopReason::OutputLimit);
                false
            }
            LineRead::Eof | LineRead::Error(_) => false,
        }
    }

    fn log_exit(&self, exit_code: Option<i32>, stderr: &str) {
        if !stderr.is_empty() {
            log::warn!(
                "{}",
                serde_json::json!({
                    "event": "cli_stderr",
                    "request_id": self.request_id,
                    "exit_code": exit_code,
                    "stderr": redact(stderr),
                })
            );
        }
        log::debug!(
            "{}",
            serde_json::json!({"event": "cli_exit", "request_id": self.request_id,
                "exit_code": exit_code, "turns": self.turns,
                "ms": self.started.elapsed().as_millis() as u64})
        );
    }
}

impl Drop for CliProcess {
    /// A child abandoned without `close` (a panic on the way, an error path
    /// that gives up on it) must not be left behind: kill its group and
    /// reap it. The stderr thread ends with the pipe.
    fn drop(&mut self) {
        if !self.reaped {
            if let Some(watch) = &self.watch {
                watch.kill_now();
            }
            self.lines = None;
            self.stdin.lock().take();
            let _ = self.child.wait();
        }
    }
}

/// How a child ended.
#[derive(Default)]
pub struct Reaped {
    pub stderr: StderrHead,
    pub exit_code: Option<i32>,
    pub reason: Option<StopReason>,
}
