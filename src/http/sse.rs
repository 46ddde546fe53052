//! Writes one SSE response straight to the client's socket: the status line
//! and headers, one chunked frame per event flushed at once, an error event
//! when a stream breaks, and `data: [DONE]` exactly once at the end.
//!
//! tiny_http's own response path buffers and copies to the end before
//! flushing, so streaming responses take the raw writer instead. A failed
//! write or flush is how a client that went away shows up; after the first
//! one the writer is `broken` and every later call is a cheap no-op.

use std::io::{self, Write};

pub struct SseWriter {
    out: Box<dyn Write + Send>,
    frame: Vec<u8>,
    done: bool,
    broken: bool,
    events: usize,
    /// The stream is relayed as its source wrote it: no `[DONE]` of ours.
    no_done: bool,
}

impl SseWriter {
    /// Prepares the response head (status 200, chunked). It leaves with
    /// the first send or [`SseWriter::flush`]: a caller about to wait for
    /// its first event flushes first, so the client sees the stream open
    /// either way, and one that has events ready sends them with the head
    /// in one write.
    pub fn start(out: Box<dyn Write + Send>, headers: &[(String, String)]) -> Self {
        let mut head = Vec::with_capacity(1024);
        head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
                || name.eq_ignore_ascii_case("connection")
            {
                continue;
            }
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(
            b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n\r\n",
        );
        SseWriter {
            out,
            frame: head,
            done: false,
            broken: false,
            events: 0,
            no_done: false,
        }
    }

    /// [`SseWriter::finish`] ends the stream without a `data: [DONE]` of
    /// its own: for a relay whose source says when it is done, if at all.
    pub fn without_done(&mut self) {
        self.no_done = true;
    }

    /// True once a write failed: the client is gone.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub fn events_sent(&self) -> usize {
        self.events
    }

    /// One `data:` event carrying `payload` (a JSON document), sent now.
    pub fn data(&mut self, payload: &[u8]) -> io::Result<()> {
        self.frame_event(&[b"data: ", payload, b"\n\n"], true)
    }

    /// The same event, held until [`SseWriter::flush`] or the next sent
    /// event: for a caller that knows more events are already waiting, so a
    /// burst goes out in one write instead of one per event.
    pub fn data_deferred(&mut self, payload: &[u8]) -> io::Result<()> {
        self.frame_event(&[b"data: ", payload, b"\n\n"], false)
    }

    /// Sends whatever events are held.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.send_pending()
    }

    /// One event given as its raw lines (without the blank line that ends
    /// it), as an upstream sent it.
    pub fn raw_event(&mut self, lines: &[u8]) -> io::Result<()> {
        self.frame_event(&[lines, b"\n\n"], true)
    }

    /// [`SseWriter::raw_event`], held like [`SseWriter::data_deferred`].
    pub fn raw_event_deferred(&mut self, lines: &[u8]) -> io::Result<()> {
        self.frame_event(&[lines, b"\n\n"], false)
    }

    /// A comment line (`: text`), held like [`SseWriter::data_deferred`]:
    /// clients skip it, a person reading the stream sees it.
    pub fn comment_deferred(&mut self, text: &str) -> io::Result<()> {
        self.frame_event(&[b": ", text.as_bytes(), b"\n\n"], false)
    }

    /// The error event a broken stream ends with, held: it leaves with the
    /// `[DONE]` that [`SseWriter::finish`] adds.
    pub fn error(&mut self, message: &str) -> io::Result<()> {
        let body = serde_json::json!({
            "error": {
                "message": format!("Stream interrupted: {message}"),
                "type": "server_error",
                "param": null,
                "code": "stream_error",
            }
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.data_deferred(&bytes)
    }

    /// `data: [DONE]` (once, however often this is called) and the chunked
    /// terminator.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.no_done {
            self.frame.extend_from_slice(b"0\r\n\r\n");
            return self.send_pending();
        }
        self.frame_parts(&[b"data: [DONE]\n\n"], true, true)
    }

    fn frame_event(&mut self, parts: &[&[u8]], send: bool) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.events += 1;
        self.frame_parts(parts, false, send)
    }

    /// Appends the chunk to one buffer (after any held ones) so each send is
    /// one write and one flush, with no allocation once the buffer has grown.
    fn frame_parts(&mut self, parts: &[&[u8]], last: bool, send: bool) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let _ = write!(self.frame, "{len:x}\r\n");
        for part in parts {
            self.frame.extend_from_slice(part);
        }
        self.frame.extend_from_slice(b"\r\n");
        if last {
            self.frame.extend_from_slice(b"0\r\n\r\n");
        }
        if send {
            self.send_pending()
        } else {
            Ok(())
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.frame.is_empty() {
            return Ok(());
        }
        let result = self
            .out
            .write_all(&self.frame)
            .and_then(|_| self.out.flush());
        self.frame.clear();
        if result.is_err() {
            self.broken = true;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Everything written, one entry per `write` call.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<Vec<u8>>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn writes(&self) -> Vec<String> {
            let writes = self.0.lock().unwrap();
            writes
                .iter()
                .map(|w| String::from_utf8(w.clone()).unwrap())
                .collect()
        }
    }

    #[test]
    fn frames_events_and_done_once() {
        let sink = Shared::default();
        let mut sse = SseWriter::start(Box::new(sink.clone()), &[]);
        sse.data(b"{\"a\":1}").unwrap();
        sse.finish().unwrap();
        sse.finish().unwrap();
        sse.data(b"late").unwrap();
        let text = sink.writes().concat();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Transfer-Encoding: chunked\r\n"));
        assert!(text.contains("f\r\ndata: {\"a\":1}\n\n\r\n"));
        assert_eq!(text.matches("[DONE]").count(), 1);
        assert!(text.ends_with("0\r\n\r\n"));
        assert!(!text.contains("late"));
    }

    #[test]
    fn the_head_and_held_events_leave_in_one_write_in_order() {
        let sink = Shared::default();
        let mut sse = SseWriter::start(Box::new(sink.clone()), &[]);
        sse.data_deferred(b"1").unwrap();
        sse.data_deferred(b"2").unwrap();
        assert!(sink.writes().is_empty(), "held until flushed");
        sse.flush().unwrap();
        sse.data(b"3").unwrap();
        let writes = sink.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes[0].starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(writes[0].ends_with("\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n"));
        assert_eq!(writes[1], "9\r\ndata: 3\n\n\r\n");
    }

    #[test]
    fn a_flush_with_nothing_held_still_sends_the_head() {
        let sink = Shared::default();
        let mut sse = SseWriter::start(Box::new(sink.clone()), &[("X-A".into(), "b".into())]);
        sse.flush().unwrap();
        let writes = sink.writes();
        assert_eq!(writes.len(), 1);
        assert!(writes[0].contains("X-A: b\r\n"));
        assert!(writes[0].ends_with("\r\n\r\n"));
    }
}
