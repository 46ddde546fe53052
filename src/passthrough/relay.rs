//! Relays an upstream SSE stream to the client event by event.
//!
//! Each event goes out as soon as its blank line has been read, exactly as
//! the upstream wrote it (so `usage` chunks, tool-call deltas and fields
//! this server has never heard of pass untouched). The upstream's own
//! `data: [DONE]` is swallowed: the pipeline sends the one the client sees.
//! The idle limit lives in the agent (`timeout_per_read` on the request),
//! so a silent upstream surfaces here as a read error.

use std::io::Read;

use serde_json::json;

use super::events::{is_done_marker, EventReader};
use super::upstream::classify_io;
use crate::http::{Afterwards, SseWriter, StreamBody};

/// How much of a body left after `[DONE]` is read so that its connection
/// can go back to the pool; past this it is dropped with the connection.
const DRAIN_LIMIT: usize = 64 * 1024;

pub struct UpstreamStream<R> {
    events: EventReader<R>,
    request_id: String,
    /// Every event as the upstream wrote it, its `[DONE]` (if any)
    /// included, and none added; the end of the body ends the stream.
    exact: bool,
}

impl<R: Read> UpstreamStream<R> {
    /// The chat relay: the upstream's `[DONE]` is replaced by the server's.
    pub fn new(body: R, request_id: String) -> Self {
        UpstreamStream {
            events: EventReader::new(body),
            request_id,
            exact: false,
        }
    }

    /// Any other route's stream (the Responses API, say, ends without a
    /// `[DONE]`): relayed exactly.
    pub fn exact(body: R, request_id: String) -> Self {
        UpstreamStream {
            exact: true,
            ..UpstreamStream::new(body, request_id)
        }
    }

    fn log_break(&self, cause: &str, relayed: usize) {
        log::warn!(
            "{}",
            json!({
                "event": "upstream_stream_broken",
                "request_id": self.request_id,
                "cause": cause,
                "events_relayed": relayed,
            })
        );
    }
}

impl<R: Read + Send + 'static> StreamBody for UpstreamStream<R> {
    fn write_events(mut self: Box<Self>, sse: &mut SseWriter) -> Option<Afterwards> {
        let mut relayed = 0usize;
        if self.exact {
            sse.without_done();
        }
        // The head goes out now: a slow first event must not keep the
        // client from seeing that the stream is open.
        if sse.flush().is_err() {
            return None;
        }
        loop {
            match self.events.next_event() {
                Ok(Some(event)) if !self.exact && is_done_marker(event.lines) => {
                    // The rest of the upstream body (normally nothing) is
                    // read once the client has its [DONE], so that the
                    // upstream connection can go back to the pool.
                    let events = self.events;
                    return Some(Box::new(move || events.drain(DRAIN_LIMIT)));
                }
                Ok(Some(event)) => {
                    // Events that arrived together leave together; one that
                    // arrived alone leaves at once.
                    let sent = if event.more_buffered {
                        sse.raw_event_deferred(event.lines)
                    } else {
                        sse.raw_event(event.lines)
                    };
                    if sent.is_err() {
                        // The client left. Returning drops the upstream body
                        // half-read, which closes its connection instead of
                        // pooling it.
                        log::debug!(
                            "{}",
                            json!({"event": "client_gone", "request_id": self.request_id})
                        );
                        return None;
                    }
                    relayed += 1;
                }
                Ok(None) if self.exact => return None,
                Ok(None) => {
                    self.log_break("eof_before_done", relayed);
                    let _ =
                        sse.error("the OpenAI upstream ended the stream before it was complete");
                    return None;
                }
                Err(e) => {
                    let (api, cause) = classify_io(&e);
                    self.log_break(cause, relayed);
                    let message = if api.status() == 504 {
                        "the OpenAI upstream sent nothing for too long"
                    } else {
                        "the connection to the OpenAI upstream broke"
                    };
                    let _ = sse.error(message);
                    return None;
                }
            }
        }
    }
}
