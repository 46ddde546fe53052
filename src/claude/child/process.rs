//! One `claude` child for as long as it lives, across every turn it serves:
//! its pipes, its process slot, the supervisor's watch over it, and how it
//! is closed (EOF on stdin, then SIGTERM, then SIGKILL) and reaped.
//!
//! A child started to stay warm keeps its stdin open after its turn and
//! waits for the next user line; one started cold-only gets EOF right after
//! its turn and exits once it has answered. What a turn reads from it is
//! `run`'s business; which idle child is kept is `warm`'s; how its stdin
//! is written, `stdin`'s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::claude::child::output::{LineRead, StderrReader, StdoutLines};
use crate::claude::child::settings::{answer_of, changes, Setting, Settings};
pub use crate::claude::child::shape::Shape;
use crate::claude::child::slots::Slot;
use crate::claude::child::spawn::{spawn, Process};
use crate::claude::child::stdin::{interrupter, write_line, Stdin};
use crate::claude::request::prompt::Invocation;
use crate::claude::tools::{Bridge, ToolSpec};
use crate::config::Config;
use crate::error::ApiError;
use crate::session_id::SessionId;
use crate::supervisor::{StopReason, Supervisor, Watch};

/// Stdout beyond this in one turn is refused (the child is stopped).
pub const STDOUT_LIMIT: usize = 10 * 1024 * 1024;

/// How long a child may take to exit once its stdin is closed before it is
/// stopped (SIGTERM, then SIGKILL after the grace): as long as its session
/// waits for it.
pub const EXIT_AFTER_EOF: Duration = crate::claude::sessions::EXITING_WAIT;

/// How long a warm child may take to read a changed tool list (the real
/// CLI asks for it again 30 to 50 ms after being told).
const RELIST_WAIT: Duration = Duration::from_secs(2);

/// Served is not yet read: the CLI takes the new list in on its own time,
/// and a turn that reaches it first still runs with the old one (seen on a
/// loaded host). A moment's grace, on the rare turn whose tools changed.
const RELIST_SETTLE: Duration = Duration::from_millis(50);

pub struct CliProcess {
    child: Process,
    reaped: bool,
    watch: Option<Watch>,
    lines: Option<StdoutLines>,
    stderr: Option<StderrReader>,
    stdin: Stdin,
    keep_open: bool,
    _slot: Slot,
    pub shape: Shape,
    /// Its model, effort and thinking budget now.
    pub settings: Settings,
    pub session_id: SessionId,
    /// Turns written to this child.
    pub turns: u32,
    /// Where it logs to: the request that started it.
    request_id: String,
    started: Instant,
    /// The functions it offers the model and its output schema.
    pub tools: Arc<ToolSpec>,
    /// Where its calls of client functions arrive; dropped after the child.
    pub bridge: Option<Bridge>,
}

/// Everything needed to start a child.
pub struct StartSpec<'a> {
    pub cli: &'a Path,
    pub config: &'a Config,
    pub invocation: Invocation,
    pub work_dir: &'a Path,
    pub session_id: &'a SessionId,
    pub shape: Shape,
    /// What its turns run with: the model it is started with, the rest set
    /// before its first turn.
    pub settings: Settings,
    /// The login's configuration directory (`CLAUDE_CONFIG_DIR`), when not
    /// the CLI's default.
    pub config_dir: Option<PathBuf>,
    pub request_id: &'a str,
    /// Keep stdin open after the first turn, so the child can stay warm.
    pub keep_open: bool,
    pub tools: Arc<ToolSpec>,
    /// The bridge `invocation` names in its `--mcp-config`.
    pub bridge: Option<Bridge>,
}

impl CliProcess {
    /// Starts a child in its session's directory and writes its first turn.
    pub fn start(
        spec: StartSpec,
        supervisor: &Arc<Supervisor>,
        slot: Slot,
    ) -> Result<CliProcess, ApiError> {
        let StartSpec {
            cli,
            config,
            invocation,
            work_dir,
            session_id,
            shape,
            settings,
            config_dir,
            request_id,
            keep_open,
            tools,
            bridge,
        } = spec;
        let mut env = config.child_env.0.clone();
        env.push((
            "CLAUDE_CODE_MAX_RETRIES".into(),
            config.claude_max_retries.to_string(),
        ));
        // The copies the CLI makes of images (under `claude-<uid>/`) go away
        // with the session. Its own directory, not a new one in it: a mkdir
        // per run costs 50 to 90 µs here, a third of the server's share.
        env.retain(|(k, _)| k != "TMPDIR");
        if let Some(dir) = &config_dir {
            env.retain(|(k, _)| k != "CLAUDE_CONFIG_DIR");
            env.push(("CLAUDE_CONFIG_DIR".into(), dir.display().to_string()));
        }
        env.push(("TMPDIR".into(), work_dir.display().to_string()));
        if bridge.is_some() {
            // The CLI's own wait for a tool must never be the shorter one:
            // the client has its TOOL_RESULT_TIMEOUT_MS, then the turn its
            // REQUEST_TIMEOUT_MS.
            let wait = config.tool_result_timeout + config.request_timeout + EXIT_AFTER_EOF;
            let ms = wait.as_millis().min(i32::MAX as u128);
            env.push(("MCP_TOOL_TIMEOUT".into(), ms.to_string()));
        }
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
        let stop = watch.stopper();
        let stderr = StderrReader::start(pipes.stderr, move || stop(StopReason::OutputLimit));
        // A spare is started without a turn.
        let turns = u32::from(!invocation.stdin.is_empty());
        let stdin: Stdin = Arc::new(Mutex::new(pipes.stdin));
        if keep_open {
            watch.set_interrupter(interrupter(stdin.clone()));
        }
        let process = CliProcess {
            child,
            reaped: false,
            watch: Some(watch),
            lines: Some(StdoutLines::start(pipes.stdout, STDOUT_LIMIT)),
            stderr: Some(stderr),
            stdin,
            keep_open,
            _slot: slot,
            shape,
            settings,
            session_id: session_id.clone(),
            turns,
            request_id: request_id.to_string(),
            started: Instant::now(),
            tools,
            bridge,
        };
        // Settings beyond the model go ahead of the first turn; the CLI
        // applies them before it reads the turn (their answers are read
        // past with the turn's output).
        let mut first = String::new();
        if !invocation.stdin.is_empty() {
            for change in changes(&Settings::started(settings.model), &settings) {
                first.push_str(&change.line);
            }
        }
        first.push_str(&invocation.stdin);
        write_line(&process.stdin, first, !keep_open);
        Ok(process)
    }

    /// True for a child started to stay up between turns.
    pub fn keeps_open(&self) -> bool {
        self.keep_open
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True when this child can take a turn of `shape` offering `tools`:
    /// the same shape, or one that differs only in its functions while the
    /// child has a bridge, which then lists the new ones (the CLI is told,
    /// and asks for the list again before the turn is written).
    pub fn fits(&mut self, shape: &Shape, tools: &ToolSpec) -> bool {
        if self.shape == *shape {
            return true;
        }
        let same_but_functions =
            self.shape.system == shape.system && self.shape.schema == shape.schema;
        let Some(bridge) = self.bridge.as_ref().filter(|_| same_but_functions) else {
            return false;
        };
        if !bridge.replace_tools(tools.mcp_tools(), RELIST_WAIT) {
            return false;
        }
        std::thread::sleep(RELIST_SETTLE);
        self.tools = Arc::new(tools.clone());
        self.shape = shape.clone();
        true
    }

    /// Tells an idle child the settings of its next turn (`wanted`) where
    /// they differ from its own, and waits up to `wait` for its answers.
    /// False when it cannot run the turn as asked (it refused the model,
    /// or did not answer): close it and start one that can.
    pub fn settle(&mut self, wanted: &Settings, wait: Duration) -> bool {
        let changes = changes(&self.settings, wanted);
        if changes.is_empty() {
            return true;
        }
        if self.exited() || self.stdin.lock().is_none() {
            return false;
        }
        let lines: String = changes.iter().map(|c| c.line.as_str()).collect();
        write_line(&self.stdin, lines, false);
        let until = Instant::now() + wait;
        let mut waiting = changes;
        while !waiting.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            let Some(LineRead::Line(line)) = self.next_line_within(left) else {
                log::warn!(
                    "claude: pid {} did not answer a change of its settings",
                    self.pid()
                );
                return false;
            };
            let Some((id, error)) = answer_of(line) else {
                continue;
            };
            let Some(at) = waiting.iter().position(|c| c.id == id) else {
                continue;
            };
            let change = waiting.swap_remove(at);
            match (change.what, error) {
                (Setting::Model, Some(code)) => {
                    log::info!(
                        "claude: pid {} refused model {} ({code})",
                        self.pid(),
                        wanted.model
                    );
                    return false;
                }
                (what, Some(code)) => {
                    log::warn!("claude: pid {} refused {what:?} ({code})", self.pid());
                }
                (Setting::Model, None) => self.settings.model = wanted.model,
                (Setting::Effort, None) => self.settings.effort = wanted.effort,
                (Setting::Budget, None) => self.settings.budget = wanted.budget,
            }
        }
        true
    }

    /// Gives an idle child its next turn, due by `deadline`. False when the
    /// child cannot take it (it was signalled, or has exited): close it.
    pub fn next_turn(&mut self, line: String, deadline: Instant) -> bool {
        let armed = self.watch.as_ref().is_some_and(|w| w.rearm(deadline));
        if !armed || self.exited() || self.stdin.lock().is_none() {
            return false;
        }
        self.turns += 1;
        if let Some(lines) = &self.lines {
            lines.set_budget(STDOUT_LIMIT);
        }
        write_line(&self.stdin, line, false);
        true
    }

    /// Carries on a turn that waited for tool results, due by `deadline`.
    /// False when the child cannot (it was signalled, or has exited).
    pub fn continue_turn(&mut self, deadline: Instant) -> bool {
        let armed = self.watch.as_ref().is_some_and(|w| w.rearm(deadline));
        if !armed || self.exited() {
            return false;
        }
        if let Some(lines) = &self.lines {
            lines.set_budget(STDOUT_LIMIT);
        }
        true
    }

    /// After a turn has ended: no deadline until the next one. False when
    /// the child was signalled meanwhile and must be closed.
    pub fn rest(&self) -> bool {
        // Idle children are closed by `warm`, which owns that clock.
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        self.watch.as_ref().is_some_and(|w| w.rearm(far))
    }

    /// True when the child is gone (a zombie, or no longer there). Read
    /// from /proc, which does not reap it: its pid cannot be reused while
    /// the watch may still signal it.
    pub fn exited(&self) -> bool {
        let stat = match std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) {
            Ok(stat) => stat,
            Err(_) => return true,
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        matches!(state, Some("Z" | "X") | None)
    }

    /// Resident memory of the child, in bytes (0 when unknown).
    pub fn rss_bytes(&self) -> u64 {
        let Ok(statm) = std::fs::read_to_string(format!("/proc/{}/statm", self.child.id())) else {
            return 0;
        };
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }

    pub fn next_line(&mut self) -> LineRead<'_> {
        match self.lines.as_mut() {
            Some(lines) => lines.next_line(),
            None => LineRead::Eof,
        }
    }

    /// The next line, or `None` when the child wrote none within `wait`.
    pub fn next_line_within(&mut self, wait: Duration) -> Option<LineRead<'_>> {
        match self.lines.as_mut() {
            Some(lines) => lines.next_line_within(wait),
            None => Some(LineRead::Eof),
        }
    }

    /// True when more output is already read: the next line will not wait.
    pub fn output_pending(&self) -> bool {
        self.lines.as_ref().is_some_and(|l| l.has_buffered())
    }

    /// True once stderr went over its limit: its thread has stopped the
    /// child, and no more of stdout is read.
    pub fn stderr_flooded(&self) -> bool {
        self.stderr.as_ref().is_some_and(StderrReader::flooded)
    }

    /// Why the child was told to stop or interrupted, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        self.watch.as_ref().and_then(Watch::reason)
    }

    /// SIGTERM now, SIGKILL after the grace.
    pub fn stop(&self, reason: StopReason) {
        if let Some(watch) = &self.watch {
            watch.stop(reason);
        }
    }

    /// Ends the current turn early: an interrupt for a child kept open,
    /// SIGTERM for one that is not.
    pub fn interrupt(&self, reason: StopReason) {
        if let Some(watch) = &self.watch {
            watch.interrupt(reason);
        }
    }
}

#[path = "process_end.rs"]
mod end;
pub use end::Reaped;

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
