//! One run of the `claude` CLI: start it (see `spawn`) under the
//! supervisor's watch, feed the prompt, read stdout line by line into the
//! adapter within the output limits (stderr on its own thread, see
//! `output`), reap it, and decide what the run's end means. Knows nothing
//! of HTTP: callers get chunks and a final result or an `ApiError`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::adapter::{failure_from_stderr, sanitize_message, Adapter, Outcome, Step};
use super::output::{LineRead, LineReader, StderrHead, StderrReader};
use super::prompt::Invocation;
use super::redact::redact;
use super::spawn::{spawn, Process};
use super::SessionId;
use crate::config::Config;
use crate::error::ApiError;
use crate::supervisor::{StopReason, Supervisor, Watch};

/// Stdout beyond this is refused (the child is stopped).
pub const STDOUT_LIMIT: usize = 10 * 1024 * 1024;

/// How long a child that has answered may take to exit on its own before
/// it is stopped (SIGTERM, then SIGKILL after the grace). The real CLI
/// needs 25–40 ms after its `result` line; a hook or an MCP server may hold
/// it longer, but not this long.
pub const EXIT_AFTER_ANSWER: Duration = Duration::from_secs(10);

/// A running child and everything read from it so far.
pub struct CliRun {
    child: Process,
    reaped: bool,
    watch: Option<Watch>,
    lines: Option<LineReader<File>>,
    stderr: Option<StderrReader>,
    pub adapter: Adapter,
    session_id: SessionId,
    request_id: String,
    started: Instant,
}

/// What reading one more line produced.
pub enum Progress {
    /// Chunks to send (possibly none).
    Chunks(Vec<Vec<u8>>),
    /// Stdout ended (or the run was stopped); call [`CliRun::finish`].
    Ended,
}

/// Everything needed to start one run.
pub struct RunSpec<'a> {
    pub cli: &'a Path,
    pub config: &'a Config,
    pub invocation: Invocation,
    pub work_dir: &'a Path,
    pub session_id: &'a SessionId,
    pub request_id: &'a str,
}

impl CliRun {
    pub fn spawn(
        spec: RunSpec,
        supervisor: &Arc<Supervisor>,
        adapter: Adapter,
    ) -> Result<CliRun, ApiError> {
        let RunSpec {
            cli,
            config,
            invocation,
            work_dir,
            session_id,
            request_id,
        } = spec;
        let mut env = config.child_env.0.clone();
        env.push((
            "CLAUDE_CODE_MAX_RETRIES".into(),
            config.claude_max_retries.to_string(),
        ));
        if let Some((file, text)) = &invocation.system {
            write_private(file, text).map_err(|e| {
                log::error!("cannot write the system prompt file: {e}");
                ApiError::InternalError {
                    message: "Could not prepare the system prompt for the Claude session.".into(),
                }
            })?;
        }
        let (child, pipes) = spawn(cli, &invocation.args, &env, work_dir, true).map_err(|e| {
            log::error!("cannot start the claude CLI: {e}");
            ApiError::BackendUnavailable {
                reason: "the claude CLI could not be started. Check CLAUDE_PATH.".into(),
            }
        })?;
        let watch = supervisor.watch(child.id(), Instant::now() + config.request_timeout);
        if let Some(stdin) = pipes.stdin {
            send_turn(stdin, invocation.stdin);
        }
        let stop = watch.stopper();
        let stderr = StderrReader::start(pipes.stderr, move || stop(StopReason::OutputLimit));
        Ok(CliRun {
            child,
            reaped: false,
            watch: Some(watch),
            lines: Some(LineReader::new(pipes.stdout, STDOUT_LIMIT)),
            stderr: Some(stderr),
            adapter,
            session_id: session_id.clone(),
            request_id: request_id.to_string(),
            started: Instant::now(),
        })
    }

    /// Reads one stdout line and feeds it to the adapter.
    pub fn step(&mut self) -> Progress {
        if self.stderr_flooded() {
            return Progress::Ended;
        }
        let Some(lines) = self.lines.as_mut() else {
            return Progress::Ended;
        };
        match lines.next_line() {
            LineRead::Line(line) => match self.adapter.push_line(line) {
                Step::Nothing => Progress::Chunks(Vec::new()),
                Step::Chunks(chunks) => Progress::Chunks(chunks),
                Step::AuthFailed => {
                    // The CLI would retry a refused key for minutes.
                    self.stop(StopReason::AuthFailed);
                    Progress::Ended
                }
            },
            LineRead::OverLimit => {
                self.stop(StopReason::OutputLimit);
                Progress::Ended
            }
            LineRead::Eof => Progress::Ended,
            LineRead::Error(e) => {
                log::warn!("reading the claude CLI's output failed: {e}");
                Progress::Ended
            }
        }
    }

    /// The answer, once the CLI's `result` line says it succeeded and nothing
    /// stopped the run: the client gets it without waiting for the child to
    /// exit. The child must then be [`CliRun::close`]d.
    pub fn take_answer(&mut self) -> Option<Finished> {
        if !self.adapter.answered() || self.watch.as_ref().and_then(Watch::reason).is_some() {
            return None;
        }
        match self.adapter.finish() {
            Outcome::Success {
                final_chunks,
                completion,
                ..
            } => Some(Finished {
                final_chunks,
                completion,
            }),
            // `answered` checked for a successful result line.
            Outcome::Failed(_) | Outcome::NoResult => None,
        }
    }

    /// After the answer went out: reads whatever the child still writes,
    /// waits for it to exit (stopping it if it takes too long) and reaps it.
    pub fn close(mut self) {
        if let Some(watch) = &self.watch {
            watch.deadline_by(Instant::now() + EXIT_AFTER_ANSWER);
        }
        while self.read_on() {}
        self.reap();
    }

    /// Closes stdout (a child blocked on a full pipe gets EPIPE instead of
    /// holding us), waits for stderr to end, reaps the child and logs how
    /// it ended. Returns what stderr said and why the run was stopped.
    ///
    /// The order keeps the supervisor from signalling a reaped group: the
    /// stderr thread, which may stop the run, is done before `wait`, and
    /// the watch goes only after it.
    fn reap(&mut self) -> (StderrHead, Option<i32>, Option<StopReason>) {
        self.lines = None;
        let head = self
            .stderr
            .take()
            .map(StderrReader::finish)
            .unwrap_or_default();
        let exit_code = self.child.wait().ok().flatten();
        self.reaped = true;
        let reason = self.watch.take().and_then(|watch| watch.reason());
        self.log_exit(exit_code, &head.text);
        (head, exit_code, reason)
    }

    /// True once stderr went over its limit: its thread has stopped the run,
    /// and no more of stdout is read.
    fn stderr_flooded(&self) -> bool {
        self.stderr.as_ref().is_some_and(StderrReader::flooded)
    }

    /// Reads and drops one more line of output after the answer; false
    /// once stdout has ended (or went over its limit).
    fn read_on(&mut self) -> bool {
        if self.stderr_flooded() {
            return false;
        }
        let Some(lines) = self.lines.as_mut() else {
            return false;
        };
        match lines.next_line() {
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
                "exit_code": exit_code, "ms": self.started.elapsed().as_millis() as u64,
                "bad_lines": self.adapter.bad_lines()})
        );
    }

    /// True when more of the child's output is already read: the next step
    /// will not wait for the child.
    pub fn output_pending(&self) -> bool {
        self.lines.as_ref().is_some_and(|l| l.has_buffered())
    }

    /// Stops the child because nobody is listening any more.
    pub fn client_gone(&self) {
        self.stop(StopReason::ClientGone);
    }

    fn stop(&self, reason: StopReason) {
        if let Some(watch) = &self.watch {
            watch.stop(reason);
        }
    }

    /// Reaps the child and decides the result: the adapter's outcome unless
    /// the run was stopped, crashed or its stderr says why it failed.
    pub fn finish(&mut self) -> Result<Finished, ApiError> {
        let (stderr, exit_code, reason) = self.reap();
        let outcome = self.adapter.finish();
        match reason {
            Some(StopReason::Timeout) => {
                return Err(ApiError::Timeout {
                    what: "claude CLI request",
                })
            }
            Some(StopReason::AuthFailed) => return Err(ApiError::BackendAuthFailed),
            Some(StopReason::OutputLimit) => return Err(ApiError::OutputLimitExceeded),
            Some(StopReason::Shutdown) => return Err(ApiError::ServerShuttingDown),
            Some(StopReason::ClientGone) => {
                return Err(ApiError::InternalError {
                    message: "The client went away.".into(),
                })
            }
            None => {}
        }
        if stderr.over_limit {
            return Err(ApiError::OutputLimitExceeded);
        }
        match outcome {
            Outcome::Success {
                final_chunks,
                completion,
                ..
            } => Ok(Finished {
                final_chunks,
                completion,
            }),
            // A resume of a session the CLI no longer has ends in an
            // error result with no API status; stderr says which session.
            Outcome::Failed(error @ ApiError::InternalError { .. }) => {
                Err(failure_from_stderr(&stderr.text, self.session_id.as_str()).unwrap_or(error))
            }
            Outcome::Failed(error) => Err(error),
            Outcome::NoResult => {
                if let Some(error) = failure_from_stderr(&stderr.text, self.session_id.as_str()) {
                    return Err(error);
                }
                let message = if self.adapter.bad_lines() > 0 {
                    "The claude CLI produced output this server could not read.".to_string()
                } else {
                    match exit_code {
                        Some(code) => {
                            let detail = sanitize_message(stderr.text.trim());
                            if detail.is_empty() {
                                format!(
                                    "The claude CLI exited with status {code} without an answer."
                                )
                            } else {
                                format!(
                                    "The claude CLI exited with status {code} without an answer: {detail}"
                                )
                            }
                        }
                        None => "The claude CLI was killed before it answered.".to_string(),
                    }
                };
                Err(ApiError::InternalError { message })
            }
        }
    }
}

impl Drop for CliRun {
    /// A run abandoned without `finish` (a panic on the way) must not leave
    /// a child behind: kill its group and reap it. The stderr thread is left
    /// to end with the pipe; its flood stop is a no-op now that the watch
    /// has a reason, and after the watch is gone.
    fn drop(&mut self) {
        if !self.reaped {
            if let Some(watch) = &self.watch {
                watch.kill_now();
            }
            self.lines = None;
            let _ = self.child.wait();
        }
    }
}

/// A successful run.
pub struct Finished {
    /// Streaming: what follows the content (finish chunk, usage chunk).
    pub final_chunks: Vec<Vec<u8>>,
    /// Non-streaming: the whole `chat.completion`.
    pub completion: serde_json::Value,
}

/// What any pipe takes without blocking: one page. (Linux gives a fresh
/// pipe 64 KiB, but only a page once its user holds too many pipe pages.)
const PIPE_CAPACITY: usize = 4096;

/// Writes the turn to the child's stdin and closes it: the CLI answers and
/// exits at EOF. A turn the pipe cannot take at once goes from a thread, so
/// a child that answers before reading all of its input cannot deadlock
/// the worker.
fn send_turn(mut stdin: File, line: String) {
    if line.len() <= PIPE_CAPACITY {
        let _ = stdin.write_all(line.as_bytes());
        return;
    }
    let _ = thread::Builder::new()
        .name("cli-stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = stdin.write_all(line.as_bytes());
        });
}

/// Writes `text` to `path`, readable by the server's user only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
