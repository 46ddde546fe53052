//! Which conversation a request continues, decided in one place from the
//! clues a request can carry, in this order:
//!
//! 1. tool results: the waiting turn whose calls they answer (by id; a
//!    legacy `function` result, which has none, by the clues below), also
//!    when a new question follows them; or, when that turn was given up,
//!    its session, which the results reach as text (see `prompt`);
//! 2. the `X-Claude-Session-ID` header: that session;
//! 3. the history it resends: the session that answered it (see `history`);
//! 4. none of these: a new session.
//!
//! A session whose turn waits for tool results is held by that turn, so
//! clues 2 and 3 look for a waiting turn first: the request then takes the
//! turn over (and with it the session) rather than queueing behind it.
//! Ownership is checked on every path; another key's session or calls look
//! like none at all.

use crate::claude::child::process::{CliProcess, Shape};
use crate::claude::child::warm::{Spare, WarmProcesses};
use crate::claude::engine::waiting::{Waiting, WaitingTurns};
use crate::claude::engine::TurnRequest;
use crate::claude::request::history::HistoryHasher;
use crate::claude::sessions::{SessionLease, SessionStore};
use crate::error::ApiError;
use crate::session_id::SessionId;

/// Where a request goes.
pub(in crate::claude) enum Conversation {
    /// A turn that waits for tool results (these, or a new question).
    Waiting(Waiting),
    /// A session leased to this request; a spare child comes with a new
    /// session when one of the turn's shape was ready.
    Session {
        lease: SessionLease,
        spare: Option<CliProcess>,
    },
}

/// Where a conversation can be found: the sessions, the turns waiting for
/// tool results, and the spare processes a new session can take.
pub(in crate::claude) struct Places<'a> {
    pub store: &'a SessionStore,
    pub waiting: &'a WaitingTurns,
    pub warm: &'a WarmProcesses,
    /// `CLAUDE_MATCH_HISTORY`: whether a resent history finds its session.
    pub match_history: bool,
    /// The account a new session goes to (see `accounts::place`).
    pub place: &'a dyn Fn() -> Result<String, ApiError>,
    /// The account the spares run on.
    pub first_account: &'a str,
}

/// The conversation `request` continues, and the hasher of its history as
/// the client holds it (every turn of the request, for the answer to be
/// added to), when history matching is on.
pub(in crate::claude) fn resolve(
    places: Places,
    request: &TurnRequest,
    shape: &Shape,
) -> Result<(Conversation, Option<HistoryHasher>), ApiError> {
    let Places {
        store,
        waiting,
        warm,
        match_history,
        place,
        first_account,
    } = places;
    let chat = &request.chat;
    let key = request.incoming.api_key.as_ref();
    let owner = store.owner_fingerprint(key);
    let results = chat.tool_results();
    // The history before the clue it must match: before the results, or
    // before the new user message.
    let prefix = chat.turns.len() - results.len().max(1);
    let mut history =
        match_history.then(|| store.history_hasher(key, chat.cli_model, chat.system.as_deref()));
    let prefix_digest = history.as_mut().and_then(|hasher| {
        chat.turns[..prefix].iter().for_each(|t| hasher.turn(t));
        (prefix > 0).then(|| hasher.digest())
    });
    if let Some(hasher) = &mut history {
        chat.turns[prefix..].iter().for_each(|t| hasher.turn(t));
    }

    let ids: Vec<&str> = results
        .iter()
        .filter_map(|r| r.tool_call_id.as_deref())
        .collect();
    if !results.is_empty() && ids.len() == results.len() {
        let found = match waiting.take_by_calls(&ids, owner.as_deref()) {
            Ok(found) => found,
            Err(error) => {
                if let Some(session) = given_up(waiting, &ids, owner.as_deref()) {
                    let lease = store.resume(&session, key, chat.cli_model)?;
                    return Ok((Conversation::Session { lease, spare: None }, history));
                }
                // Behind a load balancer the session may live on another
                // instance: a 404 sends the request on to the next one.
                let elsewhere = matches!(error, ApiError::InvalidToolCallId { .. })
                    && request
                        .session_id
                        .as_ref()
                        .is_some_and(|id| !store.knows(id, key));
                if elsewhere {
                    let id = request.session_id.as_ref().map(|id| id.to_string());
                    return Err(ApiError::SessionNotFound {
                        id: id.unwrap_or_default(),
                    });
                }
                return Err(error);
            }
        };
        return Ok((Conversation::Waiting(found), history));
    }
    // Results followed by a new question: the turn they answer finishes
    // with them, then the question is asked (see `follow_up`).
    let answered: Vec<&str> = chat
        .results_before_question()
        .iter()
        .map_while(|r| r.tool_call_id.as_deref())
        .collect();
    if !answered.is_empty() && answered.len() == chat.results_before_question().len() {
        if let Ok(found) = waiting.take_by_calls(&answered, owner.as_deref()) {
            return Ok((Conversation::Waiting(found), history));
        }
        if let Some(session) = given_up(waiting, &answered, owner.as_deref()) {
            let lease = store.resume(&session, key, chat.cli_model)?;
            return Ok((Conversation::Session { lease, spare: None }, history));
        }
    }
    let found = match (&request.session_id, &prefix_digest) {
        (Some(id), _) => waiting.take_by_session(id, owner.as_deref()),
        (None, Some(digest)) => waiting.take_by_digest(digest),
        (None, None) => None,
    };
    if let Some(found) = found {
        return Ok((Conversation::Waiting(found), history));
    }
    if !results.is_empty() {
        // Legacy function results that no waiting turn takes.
        return Err(ApiError::InvalidToolCallId {
            id: "(a function result without an id)".into(),
        });
    }
    let model = chat.cli_model;
    let lease = match (&request.session_id, &prefix_digest) {
        (Some(id), _) => Some(store.resume(id, key, model)?),
        (None, Some(digest)) => store.continue_history(digest, key, model),
        (None, None) => None,
    };
    let conversation = match lease {
        Some(lease) => Conversation::Session { lease, spare: None },
        None => {
            // A new session, on the account with the most allowance left;
            // the spares run on the first account.
            let account = place()?;
            let spare = (account == first_account)
                .then(|| warm.take_spare(shape))
                .flatten();
            match spare {
                Some(Spare { process, id, dir }) => Conversation::Session {
                    lease: store.create_with(key, model, &account, id, dir),
                    spare: Some(process),
                },
                None => Conversation::Session {
                    lease: store.create(key, model, &account)?,
                    spare: None,
                },
            }
        }
    };
    Ok((conversation, history))
}

/// The session of the given-up turn whose calls `ids` answer, when all of
/// them were its and `owner`'s.
fn given_up(waiting: &WaitingTurns, ids: &[&str], owner: Option<&str>) -> Option<SessionId> {
    let session = waiting.given_up_session(ids.first()?, owner)?;
    ids.iter()
        .all(|id| waiting.given_up_session(id, owner).as_ref() == Some(&session))
        .then_some(session)
}
