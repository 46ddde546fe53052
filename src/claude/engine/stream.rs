//! The body of a Claude Code stream after its head: the events read before
//! the head, then whatever the CLI still writes, then the ending (the final
//! events and the turn's cost as a comment, or a stop and an error event),
//! each written in the words of the API that was called (see [`Wire`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::claude::engine::run::Progress;
use crate::claude::engine::turn::{Turn, TurnCost};
use crate::claude::engine::watching::Waited;
use crate::claude::reading::chunks::ChatChunks;
use crate::dialect::{Dialect, DialectEvents};
use crate::error::ApiError;
use crate::http::{Afterwards, SseWriter, StreamBody};
use crate::session_id::SessionId;
use crate::turn_event::{Answer, Stop, TurnEvent};

/// The rest of a stream after its head: queued events, then the turn's
/// remaining output (none when the turn was already over, its cost known
/// and its whole answer in `answer`).
pub(in crate::claude) struct ClaudeStream {
    pub(in crate::claude) turn: Option<Turn>,
    pub(in crate::claude) pending: Vec<TurnEvent>,
    pub(in crate::claude) cost: Option<TurnCost>,
    pub(in crate::claude) wire: Wire,
    pub(in crate::claude) answer: Option<Answer>,
    /// `STREAM_KEEPALIVE_MS`, and since when the client has had nothing.
    pub(in crate::claude) keepalive: Option<Duration>,
    pub(in crate::claude) quiet_since: Instant,
}

/// How a turn's events reach the client: as `chat.completion.chunk`s, or
/// in another API's events (see `dialect`).
pub(in crate::claude) enum Wire {
    Chat(ChatChunks),
    Dialect(Box<dyn DialectEvents>),
}

impl Wire {
    pub(in crate::claude) fn new(
        dialect: Option<&Arc<dyn Dialect>>,
        session: &SessionId,
        chat: ChatChunks,
    ) -> Wire {
        match dialect {
            None => Wire::Chat(chat),
            Some(dialect) => Wire::Dialect(dialect.clone().events(session)),
        }
    }

    /// Queues events for the next write; false once the client is gone.
    fn send(&mut self, sse: &mut SseWriter, events: &[TurnEvent]) -> bool {
        match self {
            Wire::Chat(chunks) => events
                .iter()
                .filter_map(|e| chunks.encode(e))
                .all(|c| sse.data_deferred(&c).is_ok()),
            Wire::Dialect(dialect) => events
                .iter()
                .flat_map(|e| dialect.event(e))
                .all(|e| sse.raw_event_deferred(&e).is_ok()),
        }
    }

    /// A keep-alive after a silence: this API's own event, or a comment.
    fn keep_alive(&mut self, sse: &mut SseWriter) {
        let event = match self {
            Wire::Chat(_) => None,
            Wire::Dialect(events) => events.keep_alive(),
        };
        let _ = match event {
            Some(event) => sse.raw_event_deferred(&event),
            None => sse.comment_deferred("keep-alive"),
        };
    }

    /// The answer is whole: another API's stream ends with its own events.
    fn answered(&mut self, sse: &mut SseWriter, answer: &Answer) {
        if let Wire::Dialect(events) = self {
            for event in events.answered(answer) {
                let _ = sse.raw_event_deferred(&event);
            }
        }
    }

    /// The turn broke after the stream began: what the model said, then
    /// the error in this stream's own terms.
    fn broke(&mut self, sse: &mut SseWriter, held: &[TurnEvent], error: &ApiError) {
        self.send(sse, held);
        match self {
            Wire::Chat(chunks) => {
                if let Some(finish) = chunks.encode(&TurnEvent::Stopped(Stop::EndTurn)) {
                    let _ = sse.data_deferred(&finish);
                }
                let _ = sse.error(&error.message());
            }
            Wire::Dialect(events) => {
                for event in events.failed(error) {
                    let _ = sse.raw_event_deferred(&event);
                }
            }
        }
    }
}

impl StreamBody for ClaudeStream {
    fn write_events(self: Box<Self>, sse: &mut SseWriter) -> Option<Afterwards> {
        let ClaudeStream {
            turn,
            pending,
            cost,
            mut wire,
            answer,
            keepalive,
            mut quiet_since,
        } = *self;
        if matches!(wire, Wire::Dialect(_)) {
            // Its last event says the response is complete.
            sse.without_done();
        }
        let mut client_gone = !wire.send(sse, &pending);
        if !pending.is_empty() {
            quiet_since = Instant::now();
        }
        let Some(mut turn) = turn else {
            if let Some(answer) = &answer {
                wire.answered(sse, answer);
            }
            send_cost(sse, cost);
            let _ = sse.flush();
            return None;
        };
        while !client_gone {
            if let Some(finished) = turn.run.take_answer() {
                // The ending leaves with `[DONE]` in one write; the child is
                // put away after it (or waits for tool results, from now).
                wire.send(sse, &finished.final_events);
                wire.answered(sse, &finished.answer);
                let concluded = turn.conclude();
                send_cost(sse, concluded.cost);
                return concluded.afterwards;
            }
            // Events go out before the worker would wait on the child again;
            // a burst the CLI wrote at once leaves in one write.
            if !turn.run.output_pending() {
                client_gone = sse.flush().is_err();
                if client_gone {
                    break;
                }
            }
            let progress = match turn.step_watching(keepalive.map(|every| quiet_since + every)) {
                Waited::Progress(progress) => progress,
                Waited::Quiet => {
                    // The model thinks, or a tool runs: something for
                    // proxies and clients with idle timeouts to see.
                    wire.keep_alive(sse);
                    client_gone = sse.flush().is_err();
                    quiet_since = Instant::now();
                    continue;
                }
                Waited::Departed => {
                    client_gone = true;
                    break;
                }
            };
            match progress {
                Progress::Events(events) => {
                    if !events.is_empty() {
                        quiet_since = Instant::now();
                    }
                    client_gone = !wire.send(sse, &events);
                }
                Progress::Ended => break,
            }
        }
        if client_gone {
            turn.abandon();
            return None;
        }
        // The ending is held: it leaves with `[DONE]` in one write.
        match turn.run.finish() {
            Ok(finished) => {
                wire.send(sse, &finished.final_events);
                wire.answered(sse, &finished.answer);
                let concluded = turn.conclude();
                send_cost(sse, concluded.cost);
                concluded.afterwards
            }
            Err(error) => {
                let held = turn.run.adapter.release_held();
                wire.broke(sse, &held, &error);
                // The client already holds the session id and the CLI has
                // the session on disk (it started answering): it is kept.
                turn.settle_kept(&error);
                None
            }
        }
    }
}

/// How a stream's wait for its head ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::claude) enum Start {
    /// The model has begun its answer.
    Committed,
    /// A keep-alive's time of silence came first: a model that thinks
    /// long before its first word starts the stream anyway, to carry it.
    Quiet,
    /// The turn is over before anything was said (an answer, an error, or
    /// a client that left: its turn is stopped and fails).
    Over,
}

/// The events a turn gives before the model commits to an answer (the
/// stream's head waits for that, so that an error before it is a plain
/// HTTP error), and why the wait ended.
pub(in crate::claude) fn until_committed(
    turn: &mut Turn,
    keepalive: Option<Duration>,
    asked: Instant,
) -> (Vec<TurnEvent>, Start) {
    let mut pending = Vec::new();
    while !turn.run.adapter.committed() {
        let progress = match turn.step_watching(keepalive.map(|every| asked + every)) {
            Waited::Progress(progress) => progress,
            Waited::Quiet => return (pending, Start::Quiet),
            Waited::Departed => {
                turn.answer_nobody();
                while let Progress::Events(_) = turn.run.step() {}
                return (pending, Start::Over);
            }
        };
        match progress {
            Progress::Events(events) => pending.extend(events),
            Progress::Ended => return (pending, Start::Over),
        }
    }
    (pending, Start::Committed)
}

fn send_cost(sse: &mut SseWriter, cost: Option<TurnCost>) {
    if let Some(cost) = cost {
        let _ = sse.comment_deferred(&cost.comment());
    }
}
