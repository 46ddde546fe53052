//! Where a request's turn begins, in this order: the CLI present, the conversation it continues found (see `resolve`: a turn
//! waiting for tool results goes to `follow_up`; else a session lease, by
//! header, by resent history, or new; owner checked, busy refused), then
//! the CLI process that takes it: the session's warm one or a spare if it
//! fits, else a new one (`cold_start`). What the turn then does is `turn`.

use crate::claude::child::process::Shape;
use crate::claude::engine::cold_start::{cli_missing, warm_or_cold};
use crate::claude::engine::resolve::{resolve, Conversation, Places};
use crate::claude::engine::turn::{watch_client, Turn};
use crate::claude::engine::TurnRequest;
use crate::claude::engine::{accounts, follow_up};
use crate::claude::request::prompt::check_transcript;
use crate::claude::sessions::SessionLease;
use crate::claude::ClaudeBackend;
use crate::error::ApiError;

/// Checks the request, leases its session and puts the turn to a CLI
/// child. A session this turn created is forgotten again if no child
/// takes the turn.
pub(in crate::claude) fn begin(
    backend: &ClaudeBackend,
    request: &TurnRequest,
) -> Result<Turn, ApiError> {
    let chat = &request.chat;
    if backend.cli.is_none() {
        return Err(cli_missing());
    }
    let store = backend.sessions()?;
    let live = |name: &str, first: bool| store.live_on(name, first);
    let allowed = backend
        .config
        .accounts_for(request.incoming.api_key.as_ref());
    let place = || accounts::place(backend, allowed, live);
    let first_account = backend.config.first_account();
    let places = Places {
        store: &store,
        waiting: &backend.waiting,
        warm: &backend.warm,
        match_history: backend.config.claude_match_history,
        place: &place,
        first_account,
    };
    let shape = Shape::new(chat.system.as_deref(), &chat.tools);
    let (lease, spare, history) = match resolve(places, request, &shape)? {
        (Conversation::Waiting(waiting), history) => {
            return follow_up::carry_on(backend, request.incoming, chat, waiting, history);
        }
        (Conversation::Session { lease, spare }, history) => (lease, spare, history),
    };
    watch_client(&lease, request.incoming);
    if lease.created() {
        if let Err(e) = check_transcript(chat) {
            if let Some(spare) = spare {
                spare.close();
            }
            forget_if_new(lease);
            return Err(e);
        }
    }
    // A session whose account has no allowance left moves to one that has
    // (its process, of the old login, closed), or the turn is refused.
    let (account, moved) = if lease.created() {
        (accounts::of_session(backend, &lease), false)
    } else {
        accounts::keep_or_move(backend, &lease, allowed, live)?
    };
    let candidate = match spare {
        Some(spare) => Some(spare),
        None if !lease.created() && !moved => backend.warm.take(lease.id()),
        None => None,
    };
    match warm_or_cold(backend, request.incoming, chat, &lease, &account, candidate) {
        Ok(taken) => Ok(Turn::assemble(
            backend,
            request.incoming,
            chat,
            taken,
            lease,
            &account,
            history,
        )),
        Err(e) => {
            forget_if_new(lease);
            Err(e)
        }
    }
}

fn forget_if_new(lease: SessionLease) {
    if lease.created() {
        lease.forget();
    }
}
