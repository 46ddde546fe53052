//! Splits an upstream SSE body into events without re-encoding them.
//!
//! An event is the run of lines before a blank line. [`EventReader`] hands
//! each one out as a slice of its own buffer, lines exactly as sent minus
//! the line break that ends the last one, so the relay can write it on
//! unchanged. One buffer serves the whole stream: it grows only for an
//! event larger than it, and consumed bytes are shifted out only when the
//! free space runs out, so a steady stream allocates nothing per event.
//!
//! Lines may end in `\n` or `\r\n`. A bare `\r` as line end (allowed by the
//! SSE grammar, sent by no OpenAI-compatible server we know) is not split.

use std::io::{self, Read};

/// Buffer size a stream starts with; most chat chunks are far smaller, and
/// an open stream keeps its buffer for as long as it lasts.
const INITIAL_BUFFER: usize = 4 * 1024;
/// One event larger than this ends the stream as broken: no chat chunk
/// comes near it, and it keeps a bad upstream from growing memory unbounded.
pub const MAX_EVENT: usize = 4 * 1024 * 1024;

/// One event's lines, and whether another whole event is already read
/// (so the relay can hold this one and send both in one write).
pub struct Event<'a> {
    pub lines: &'a [u8],
    pub more_buffered: bool,
}

pub struct EventReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// First byte not handed out yet.
    start: usize,
    /// End of the bytes read so far.
    end: usize,
    /// Where the search for the next blank line resumes, so bytes already
    /// searched are not searched again after each read.
    scan: usize,
    /// The end of the event at `start` (content end, next start), when it
    /// has already been found.
    found: Option<(usize, usize)>,
}

impl<R: Read> EventReader<R> {
    pub fn new(inner: R) -> Self {
        EventReader {
            inner,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            scan: 0,
            found: None,
        }
    }

    /// The next event's lines, `Ok(None)` when the body ended cleanly
    /// between events, and `UnexpectedEof` when it ended inside one.
    pub fn next_event(&mut self) -> io::Result<Option<Event<'_>>> {
        loop {
            self.skip_blank_lines();
            let found = match self.found.take() {
                Some(found) => Some(found),
                None => find_event_end(&self.buf[..self.end], self.scan),
            };
            if let Some((content_end, next)) = found {
                let event = self.start..content_end;
                self.start = next;
                self.scan = next;
                // Looking for the following event now is what tells the
                // relay whether to hold this one; the result is kept, so
                // each byte is still searched once.
                self.skip_blank_lines();
                self.found = find_event_end(&self.buf[..self.end], self.scan);
                if self.found.is_none() {
                    self.scan = self.end.saturating_sub(2).max(self.start);
                }
                return Ok(Some(Event {
                    lines: &self.buf[event],
                    more_buffered: self.found.is_some(),
                }));
            }
            // A '\n' in the last two bytes may still become a blank line.
            self.scan = self.end.saturating_sub(2).max(self.start);
            self.make_room()?;
            let n = self.inner.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return if self.buf[self.start..self.end]
                    .iter()
                    .all(u8::is_ascii_whitespace)
                {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the body ended inside an event",
                    ))
                };
            }
            self.end += n;
        }
    }

    /// Reads what is left of the body (at most `limit` bytes), so a
    /// connection whose body ended normally can be reused. Gives up quietly:
    /// a body that does not end here is dropped with its connection.
    pub fn drain(mut self, limit: usize) {
        let mut total = 0;
        while total <= limit {
            match self.inner.read(&mut self.buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    }

    /// Blank lines between events carry nothing; dropping them here keeps
    /// them from reading as the end of an empty event.
    fn skip_blank_lines(&mut self) {
        loop {
            let rest = &self.buf[self.start..self.end];
            if rest.first() == Some(&b'\n') {
                self.start += 1;
            } else if rest.starts_with(b"\r\n") {
                self.start += 2;
            } else {
                break;
            }
        }
        self.scan = self.scan.max(self.start);
    }

    fn make_room(&mut self) -> io::Result<()> {
        if self.end < self.buf.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scan -= self.start;
            self.start = 0;
            return Ok(());
        }
        if self.buf.len() >= MAX_EVENT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an event exceeded the size limit",
            ));
        }
        let grown = (self.buf.len() * 2).min(MAX_EVENT);
        self.buf.resize(grown, 0);
        Ok(())
    }
}

/// Finds the first blank line at or after `from`: returns where the
/// event's content ends (before its last line break) and where the next
/// event starts (after the blank line).
fn find_event_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
        i += offset;
        let next = match buf.get(i + 1) {
            Some(b'\n') => Some(i + 2),
            Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => Some(i + 3),
            _ => None,
        };
        if let Some(next) = next {
            let content_end = if i > 0 && buf[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            return Some((content_end, next));
        }
        i += 1;
    }
    None
}

/// True for the upstream's own end marker (`data: [DONE]`), which the
/// relay swallows because the pipeline sends its own exactly once.
pub fn is_done_marker(event: &[u8]) -> bool {
    // Checked on every event, so the cheap length test comes first.
    if event.len() > 32 {
        return false;
    }
    match event.strip_prefix(b"data:") {
        Some(rest) => rest.trim_ascii() == b"[DONE]",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the input in pieces of `step` bytes, as a network would.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn split(data: &[u8], step: usize) -> (Vec<String>, io::Result<()>) {
        let mut reader = EventReader::new(Trickle { data, step });
        let mut out = Vec::new();
        loop {
            match reader.next_event() {
                Ok(Some(ev)) => out.push(String::from_utf8_lossy(ev.lines).into_owned()),
                Ok(None) => return (out, Ok(())),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    /// `more_buffered` of each event, for input arriving `step` bytes a read.
    fn held(data: &[u8], step: usize) -> Vec<bool> {
        let mut reader = EventReader::new(Trickle { data, step });
        let mut out = Vec::new();
        while let Ok(Some(ev)) = reader.next_event() {
            out.push(ev.more_buffered);
        }
        out
    }

    #[test]
    fn an_event_is_marked_held_only_when_the_next_has_fully_arrived() {
        let input = b"data: a\n\n\r\ndata: b\n\ndata: c\n\n";
        assert_eq!(held(input, 4096), [true, true, false]);
        // One byte a read: the next event is never complete yet.
        assert_eq!(held(input, 1), [false, false, false]);
        // "data: b" arrives whole with "data: a", but "data: c" does not.
        assert_eq!(held(input, 21), [true, false, false]);
    }

    #[test]
    fn splits_events_whatever_the_read_sizes() {
        let input = b"data: {\"a\":1}\n\nevent: x\ndata: {\"b\": 2}\n\n: ping\n\ndata: [DONE]\n\n";
        for step in [1, 2, 3, 7, 64, 4096] {
            let (events, end) = split(input, step);
            assert!(end.is_ok(), "step {step}");
            assert_eq!(
                events,
                [
                    "data: {\"a\":1}",
                    "event: x\ndata: {\"b\": 2}",
                    ": ping",
                    "data: [DONE]"
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn crlf_lines_and_extra_blank_lines() {
        let input = b"\r\ndata: 1\r\n\r\n\n\ndata: 2\r\nid: 7\r\n\r\n";
        for step in [1, 2, 5, 100] {
            let (events, end) = split(input, step);
            assert!(end.is_ok());
            assert_eq!(events, ["data: 1", "data: 2\r\nid: 7"], "step {step}");
        }
    }

    #[test]
    fn ending_inside_an_event_is_an_error() {
        let (events, end) = split(b"data: 1\n\ndata: {\"half", 3);
        assert_eq!(events, ["data: 1"]);
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let (events, end) = split(b"data: 1\n\n\n", 3);
        assert_eq!(events, ["data: 1"]);
        assert!(end.is_ok());
    }

    #[test]
    fn events_larger_than_the_buffer() {
        let big = "x".repeat(INITIAL_BUFFER * 3);
        let input = format!("data: 1\n\ndata: {big}\n\ndata: 3\n\n");
        let (events, end) = split(input.as_bytes(), 1000);
        assert!(end.is_ok());
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].len(), big.len() + 6);
        assert_eq!(events[2], "data: 3");
    }

    #[test]
    fn an_oversized_event_is_refused() {
        let input = vec![b'x'; MAX_EVENT + 10];
        let (events, end) = split(&input, 64 * 1024);
        assert!(events.is_empty());
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn done_marker() {
        assert!(is_done_marker(b"data: [DONE]"));
        assert!(is_done_marker(b"data:[DONE]"));
        assert!(is_done_marker(b"data: [DONE] "));
        assert!(!is_done_marker(b"data: {\"content\":\"[DONE]\"}"));
        assert!(!is_done_marker(b"event: done"));
    }
}
