//! The body of a Claude Code stream after its head: the chunks read before
//! the head, then whatever the CLI still writes, then the ending (the final
//! chunks and the turn's cost as a comment, or a finish chunk and an error
//! event).

use super::run::Progress;
use super::turn::{Turn, TurnCost};
use crate::http::{Afterwards, SseWriter, StreamBody};

/// The rest of a stream after its head: queued chunks, then the turn's
/// remaining output (none when the turn was already over, its cost known).
pub(super) struct ClaudeStream {
    pub(super) turn: Option<Turn>,
    pub(super) pending: Vec<Vec<u8>>,
    pub(super) cost: Option<TurnCost>,
}

impl StreamBody for ClaudeStream {
    fn write_events(self: Box<Self>, sse: &mut SseWriter) -> Option<Afterwards> {
        let ClaudeStream {
            turn,
            pending,
            cost,
        } = *self;
        let mut client_gone = !send_deferred(sse, &pending);
        let Some(mut turn) = turn else {
            send_cost(sse, cost);
            let _ = sse.flush();
            return None;
        };
        while !client_gone {
            if let Some(finished) = turn.run.take_answer() {
                // The ending leaves with `[DONE]` in one write; the child is
                // put away after it (or waits for tool results, from now).
                send_deferred(sse, &finished.final_chunks);
                let cost = turn.note_answer();
                if turn.run.adapter.paused() {
                    turn.wait_for_results();
                    return None;
                }
                send_cost(sse, cost);
                return Some(turn.close_afterwards());
            }
            // Events go out before the worker would wait on the child again;
            // a burst the CLI wrote at once leaves in one write.
            if !turn.run.output_pending() {
                client_gone = sse.flush().is_err();
                if client_gone {
                    break;
                }
            }
            match turn.run.step() {
                Progress::Chunks(chunks) => client_gone = !send_deferred(sse, &chunks),
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
                send_deferred(sse, &finished.final_chunks);
                send_cost(sse, turn.note_answer());
                Some(turn.close_afterwards())
            }
            Err(error) => {
                for chunk in turn.run.adapter.release_held() {
                    let _ = sse.data_deferred(&chunk);
                }
                let _ = sse.data_deferred(&turn.meta.finish_chunk());
                let _ = sse.error(&error.message());
                // The client already holds the session id and the CLI has
                // the session on disk (it started answering): it is kept.
                turn.settle_kept();
                None
            }
        }
    }
}

/// Queues chunks for the next write; false once the client is gone.
fn send_deferred(sse: &mut SseWriter, chunks: &[Vec<u8>]) -> bool {
    chunks.iter().all(|c| sse.data_deferred(c).is_ok())
}

fn send_cost(sse: &mut SseWriter, cost: Option<TurnCost>) {
    if let Some(cost) = cost {
        let _ = sse.comment_deferred(&cost.comment());
    }
}
