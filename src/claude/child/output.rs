//! Reading a child's output within its limits: stdout split into lines on
//! a small thread of its own per child and handed over one line at a time,
//! so that a stream can wait for the next one with a time limit (to send a
//! keep-alive while the model thinks); stderr on another small thread.
//!
//! Stderr must be read while stdout is (a child blocked on a full stderr
//! pipe would never finish its stdout). Its thread keeps the first few
//! kilobytes for error messages and the log, counts the rest, and reports a
//! flood once the count passes [`STDERR_LIMIT`].

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};

/// Stderr beyond this is refused (the child is stopped).
pub const STDERR_LIMIT: usize = 1024 * 1024;
/// How much of stderr is kept for error messages and the log.
const STDERR_KEEP: usize = 4096;

pub enum LineRead<'a> {
    Line(&'a [u8]),
    Eof,
    /// Stdout went over its budget.
    OverLimit,
    Error(io::Error),
}

/// Splits stdout into lines without ever holding more than the remaining
/// budget, however long a line is.
pub struct LineReader<R> {
    inner: BufReader<R>,
    budget: Arc<AtomicUsize>,
    line: Vec<u8>,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, budget: usize) -> Self {
        Self::sharing(inner, Arc::new(AtomicUsize::new(budget)))
    }

    /// A reader whose budget someone else may renew.
    fn sharing(inner: R, budget: Arc<AtomicUsize>) -> Self {
        LineReader {
            inner: BufReader::with_capacity(16 * 1024, inner),
            budget,
            line: Vec::with_capacity(4096),
        }
    }

    pub fn next_line(&mut self) -> LineRead<'_> {
        self.line.clear();
        loop {
            let available = match self.inner.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return LineRead::Error(e),
            };
            if available.is_empty() {
                return if self.line.is_empty() {
                    LineRead::Eof
                } else {
                    LineRead::Line(&self.line)
                };
            }
            let (take, complete) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if take > self.budget.load(Ordering::SeqCst) {
                return LineRead::OverLimit;
            }
            self.budget.fetch_sub(take, Ordering::SeqCst);
            self.line.extend_from_slice(&available[..take]);
            self.inner.consume(take);
            if complete {
                return LineRead::Line(&self.line);
            }
        }
    }
}

/// What the stdout thread hands over.
enum Pumped {
    Line(Vec<u8>),
    Eof,
    OverLimit,
    Error(io::Error),
}

/// Lines read ahead, at most: a child that writes faster than the client
/// reads waits on its pipe, as it would without the thread.
const LINES_AHEAD: usize = 64;

/// A child's stdout, split into lines on a thread of its own
/// (`cli-stdout`) within a budget renewed each turn.
pub struct StdoutLines {
    lines: Receiver<Pumped>,
    budget: Arc<AtomicUsize>,
    /// The line last handed out, and whether stdout is over.
    line: Vec<u8>,
    ended: Option<Pumped>,
}

impl StdoutLines {
    pub fn start(stdout: impl Read + Send + 'static, budget: usize) -> StdoutLines {
        let budget = Arc::new(AtomicUsize::new(budget));
        let (tx, lines) = bounded(LINES_AHEAD);
        let mut reader = LineReader::sharing(stdout, budget.clone());
        let spawned = thread::Builder::new()
            .name("cli-stdout".into())
            .stack_size(64 * 1024)
            .spawn(move || loop {
                let (pumped, last) = match reader.next_line() {
                    LineRead::Line(line) => (Pumped::Line(line.to_vec()), false),
                    LineRead::Eof => (Pumped::Eof, true),
                    LineRead::OverLimit => (Pumped::OverLimit, true),
                    LineRead::Error(e) => (Pumped::Error(e), true),
                };
                // Nobody reads any more: the process was dropped.
                if tx.send(pumped).is_err() || last {
                    break;
                }
            });
        // Without the thread the receiver sees its sender gone: end of
        // output, and the pipe is dropped with the closure.
        if let Err(e) = spawned {
            log::warn!("cannot read the claude CLI's stdout: {e}");
        }
        StdoutLines {
            lines,
            budget,
            line: Vec::new(),
            ended: None,
        }
    }

    /// A new budget, for the next turn of a child that takes several.
    pub fn set_budget(&self, budget: usize) {
        self.budget.store(budget, Ordering::SeqCst);
    }

    /// True when the next line is already read.
    pub fn has_buffered(&self) -> bool {
        !self.lines.is_empty()
    }

    /// The next line, waiting as long as it takes.
    pub fn next_line(&mut self) -> LineRead<'_> {
        let pumped = match &self.ended {
            Some(_) => None,
            None => self.lines.recv().ok(),
        };
        self.hand_over(pumped)
    }

    /// The next line, or `None` when none came within `wait`.
    pub fn next_line_within(&mut self, wait: Duration) -> Option<LineRead<'_>> {
        let pumped = match &self.ended {
            Some(_) => None,
            None => match self.lines.recv_timeout(wait) {
                Ok(pumped) => Some(pumped),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        Some(self.hand_over(pumped))
    }

    /// A line read, or the end of stdout: told again on every later read
    /// (an error once, then as the end).
    fn hand_over(&mut self, pumped: Option<Pumped>) -> LineRead<'_> {
        let end = match pumped {
            Some(Pumped::Line(line)) => {
                self.line = line;
                return LineRead::Line(&self.line);
            }
            Some(end) => end,
            None => self.ended.take().unwrap_or(Pumped::Eof),
        };
        self.ended = Some(match end {
            Pumped::OverLimit => Pumped::OverLimit,
            _ => Pumped::Eof,
        });
        match end {
            Pumped::Error(e) => LineRead::Error(e),
            Pumped::OverLimit => LineRead::OverLimit,
            _ => LineRead::Eof,
        }
    }
}

/// The start of what a child wrote to stderr, and whether it said too much.
#[derive(Default)]
pub struct StderrHead {
    pub text: String,
    pub over_limit: bool,
}

/// A child's stderr, read on its own thread until it ends or floods.
pub struct StderrReader {
    thread: Option<JoinHandle<StderrHead>>,
    flooded: Arc<AtomicBool>,
}

impl StderrReader {
    /// Starts reading `stderr`. `on_flood` runs on the reading thread when
    /// the child passes [`STDERR_LIMIT`]; reading stops there, and what the
    /// child writes after that fails (EPIPE), which only hurries its end.
    pub fn start(
        stderr: impl Read + Send + 'static,
        on_flood: impl FnOnce() + Send + 'static,
    ) -> StderrReader {
        let flooded = Arc::new(AtomicBool::new(false));
        let flag = flooded.clone();
        let spawned = thread::Builder::new()
            .name("cli-stderr".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                read_head(stderr, || {
                    flag.store(true, Ordering::SeqCst);
                    on_flood();
                })
            });
        // A thread that cannot start drops the pipe with its closure: the
        // child's stderr then fails instead of filling up and blocking it.
        let thread = spawned
            .inspect_err(|e| log::warn!("cannot read the claude CLI's stderr: {e}"))
            .ok();
        StderrReader { thread, flooded }
    }

    /// True once stderr went over its limit (the run is being stopped).
    pub fn flooded(&self) -> bool {
        self.flooded.load(Ordering::SeqCst)
    }

    /// Waits for stderr to end (the child has exited or is being stopped)
    /// and gives what was kept.
    pub fn finish(self) -> StderrHead {
        self.thread
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

/// Reads to the end or to the limit, keeping the first [`STDERR_KEEP`] bytes.
fn read_head(mut stderr: impl Read, on_flood: impl FnOnce()) -> StderrHead {
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                let room = STDERR_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if total > STDERR_LIMIT {
                    on_flood();
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    StderrHead {
        text: String::from_utf8_lossy(&kept).into_owned(),
        over_limit: total > STDERR_LIMIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_and_limits() {
        struct Drip(Vec<u8>, usize);
        impl Read for Drip {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 >= self.0.len() {
                    return Ok(0);
                }
                buf[0] = self.0[self.1];
                self.1 += 1;
                Ok(1)
            }
        }
        let mut r = LineReader::new(Drip(b"{\"a\":1}\n\n{\"b\":2}".to_vec(), 0), 1000);
        assert!(matches!(r.next_line(), LineRead::Line(l) if l == b"{\"a\":1}\n"));
        assert!(matches!(r.next_line(), LineRead::Line(l) if l == b"\n"));
        assert!(matches!(r.next_line(), LineRead::Line(l) if l == b"{\"b\":2}"));
        assert!(matches!(r.next_line(), LineRead::Eof));

        let mut r = LineReader::new(&b"0123456789\n0123456789\n"[..], 15);
        assert!(matches!(r.next_line(), LineRead::Line(_)));
        assert!(matches!(r.next_line(), LineRead::OverLimit));
    }

    #[test]
    fn stderr_keeps_its_head_and_reports_a_flood_once() {
        let quiet = StderrReader::start(&b"warning: x\n"[..], || panic!("not a flood"));
        let head = quiet.finish();
        assert_eq!(head.text, "warning: x\n");
        assert!(!head.over_limit);

        let floods = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = floods.clone();
        let noisy = StderrReader::start(io::repeat(b'e'), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let head = noisy.finish();
        assert!(head.over_limit);
        assert_eq!(head.text.len(), STDERR_KEEP);
        assert_eq!(floods.load(Ordering::SeqCst), 1);
    }
}
