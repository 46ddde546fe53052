//! Reading a child's stdout line by line and its stderr alongside, on the
//! worker's own thread, within the output limits.
//!
//! Stderr must be read while stdout is (a child blocked on a full stderr
//! pipe would never finish its stdout), but a thread per child for that
//! costs more than the rest of a request's bookkeeping. So whenever the
//! stdout buffer runs dry, `poll` waits on both pipes and stderr is read as
//! it comes; only its first few kilobytes are kept, the rest is counted.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, RawFd};

/// Stderr beyond this is refused (the child is stopped).
pub const STDERR_LIMIT: usize = 1024 * 1024;
/// How much of stderr is kept for error messages and the log.
const STDERR_KEEP: usize = 4096;

pub enum LineRead<'a> {
    Line(&'a [u8]),
    Eof,
    /// Stdout went over its budget.
    OverLimit,
    /// Stderr went over its limit.
    StderrFlood,
    Error(io::Error),
}

/// What a child wrote to stderr: the start of it, and whether it said too
/// much.
#[derive(Default)]
pub struct StderrTail {
    pub text: String,
    pub over_limit: bool,
}

struct Stderr {
    file: File,
    kept: Vec<u8>,
    total: usize,
    done: bool,
    flood_reported: bool,
}

impl Stderr {
    /// One read; marks `done` at end of file.
    fn read_some(&mut self) {
        let mut buf = [0u8; 8192];
        match self.file.read(&mut buf) {
            Ok(0) => self.done = true,
            Ok(n) => {
                self.total += n;
                let room = STDERR_KEEP.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.done = true,
        }
    }

    fn over_limit(&self) -> bool {
        self.total > STDERR_LIMIT
    }
}

/// Splits stdout into lines without ever holding more than the remaining
/// budget, however long a line is, and keeps stderr moving meanwhile.
pub struct LineReader<R> {
    inner: BufReader<R>,
    budget: usize,
    line: Vec<u8>,
    stderr: Option<Stderr>,
    stdout_fd: Option<RawFd>,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, budget: usize) -> Self {
        LineReader {
            inner: BufReader::with_capacity(16 * 1024, inner),
            budget,
            line: Vec::with_capacity(4096),
            stderr: None,
            stdout_fd: None,
        }
    }

    /// True when more output is already read and waiting to be split.
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }

    pub fn next_line(&mut self) -> LineRead<'_> {
        self.line.clear();
        loop {
            if self.inner.buffer().is_empty() {
                if let (Some(fd), Some(stderr)) = (self.stdout_fd, self.stderr.as_mut()) {
                    if let Some(flood) = poll_both(fd, stderr) {
                        return flood;
                    }
                }
            }
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

impl LineReader<File> {
    /// A reader for a child's stdout that also reads its stderr.
    pub fn with_stderr(stdout: File, budget: usize, stderr: File) -> Self {
        let stdout_fd = stdout.as_raw_fd();
        let mut reader = LineReader::new(stdout, budget);
        reader.stdout_fd = Some(stdout_fd);
        reader.stderr = Some(Stderr {
            file: stderr,
            kept: Vec::new(),
            total: 0,
            done: false,
            flood_reported: false,
        });
        reader
    }

    /// Reads stderr to its end (the child has finished or is being
    /// stopped) and gives what was kept. Drops stdout first, so a child
    /// still writing there gets EPIPE instead of blocking.
    pub fn finish_stderr(self) -> StderrTail {
        let LineReader { inner, stderr, .. } = self;
        drop(inner);
        let Some(mut stderr) = stderr else {
            return StderrTail::default();
        };
        while !stderr.done && !stderr.over_limit() {
            stderr.read_some();
        }
        StderrTail {
            text: String::from_utf8_lossy(&stderr.kept).into_owned(),
            over_limit: stderr.over_limit(),
        }
    }
}

/// Polls stdout and stderr until stdout has something to read (or has
/// ended), reading stderr whenever it is ready.
fn poll_both(stdout: RawFd, stderr: &mut Stderr) -> Option<LineRead<'static>> {
    while !stderr.done {
        let mut fds = [
            libc::pollfd {
                fd: stdout,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stderr.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries on open descriptors.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if fds[1].revents != 0 {
            stderr.read_some();
            if stderr.over_limit() && !stderr.flood_reported {
                stderr.flood_reported = true;
                return Some(LineRead::StderrFlood);
            }
        }
        if fds[0].revents != 0 {
            return None;
        }
    }
    None
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
}
