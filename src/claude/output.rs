//! Reading a child's output within its limits: stdout split into lines on
//! the caller's thread, stderr on a small thread of its own per child.
//!
//! Stderr must be read while stdout is (a child blocked on a full stderr
//! pipe would never finish its stdout). Its thread keeps the first few
//! kilobytes for error messages and the log, counts the rest, and reports a
//! flood once the count passes [`STDERR_LIMIT`].

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

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
    budget: usize,
    line: Vec<u8>,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, budget: usize) -> Self {
        LineReader {
            inner: BufReader::with_capacity(16 * 1024, inner),
            budget,
            line: Vec::with_capacity(4096),
        }
    }

    /// A new budget, for the next turn of a child that takes several.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// True when more output is already read and waiting to be split.
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
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
            if take > self.budget {
                return LineRead::OverLimit;
            }
            self.budget -= take;
            self.line.extend_from_slice(&available[..take]);
            self.inner.consume(take);
            if complete {
                return LineRead::Line(&self.line);
            }
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
