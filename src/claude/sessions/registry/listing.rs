//! What the session endpoints (`/v1/sessions`) read of the registry and do
//! to it: an owner's live sessions, one of them, the count of a session's
//! answers, and the removal of an idle one. Owners are checked as
//! everywhere else: an expired session or another owner's is not there.

use super::{same_owner, Entry, Registry};
use crate::session_id::SessionId;
use crate::turn_event::{ContextUse, TokenCounts};

/// One session as its owner may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub last_used_ms: u64,
    pub model: String,
    /// Answers the session has given.
    pub turns: u64,
    /// The tokens of those answers, added up.
    pub tokens: TokenCounts,
    /// How full its context is, and its compactions.
    pub context: ContextUse,
    /// The login it runs on; `None` is the first.
    pub account: Option<String>,
    /// A turn in progress or waiting for tool results (not one whose
    /// answer has gone out and whose CLI is only exiting).
    pub busy: bool,
}

/// What a removal found, decided under the lock.
pub(in crate::claude::sessions) enum Removal {
    Removed,
    Busy,
    /// Busy until its CLI, which has answered, exits.
    Exiting,
    /// Unknown, expired, or someone else's.
    Absent,
}

impl Registry {
    /// `owner`'s live sessions, the most recently created first.
    pub(in crate::claude::sessions) fn list(
        &self,
        owner: &Option<String>,
        now: u64,
    ) -> Vec<SessionInfo> {
        let mut found: Vec<SessionInfo> = {
            let state = self.state.lock();
            state
                .sessions
                .iter()
                .filter(|(_, e)| same_owner(&e.owner, owner) && !self.is_expired(e, now))
                .map(|(id, e)| info(id, e))
                .collect()
        };
        found.sort_by(|a, b| (b.created_ms, a.id.as_str()).cmp(&(a.created_ms, b.id.as_str())));
        found
    }

    /// Session `id` if it is a live one of `owner`.
    pub(in crate::claude::sessions) fn info(
        &self,
        id: &SessionId,
        owner: &Option<String>,
        now: u64,
    ) -> Option<SessionInfo> {
        let state = self.state.lock();
        let (id, entry) = state.sessions.get_key_value(id.as_str())?;
        (same_owner(&entry.owner, owner) && !self.is_expired(entry, now)).then(|| info(id, entry))
    }

    /// One more answer given by session `id`, with its tokens, and how
    /// full it left the context.
    pub(in crate::claude::sessions) fn count_turn(
        &self,
        id: &str,
        tokens: Option<&TokenCounts>,
        context: ContextUse,
    ) {
        let mut state = self.state.lock();
        if let Some(entry) = state.sessions.get_mut(id) {
            entry.turns += 1;
            if let Some(tokens) = tokens {
                entry.tokens.add(tokens);
            }
            if context.tokens > 0 {
                entry.context.tokens = context.tokens;
            }
            entry.context.compactions += context.compactions;
            state.generation += 1;
        }
    }

    /// The login session `id` runs on (`None`: the first).
    pub(in crate::claude::sessions) fn account_of(&self, id: &str) -> Option<String> {
        let state = self.state.lock();
        let entry = state.sessions.get(id)?;
        entry.account.as_deref().map(str::to_string)
    }

    /// Session `id` runs on `account` from now on.
    pub(in crate::claude::sessions) fn move_to(&self, id: &str, account: &str) {
        let mut state = self.state.lock();
        let name = state.name(account);
        if let Some(entry) = state.sessions.get_mut(id) {
            entry.account = Some(name);
            state.generation += 1;
        }
    }

    /// Live sessions on `account` (`first`: whether it is the first, which
    /// also has the sessions recorded without one).
    pub(in crate::claude::sessions) fn live_on(&self, account: &str, first: bool) -> usize {
        let state = self.state.lock();
        let on = |e: &Entry| match &e.account {
            Some(a) => &**a == account,
            None => first,
        };
        state.sessions.values().filter(|e| on(e)).count()
    }

    /// Removes session `id` of `owner` from the registry, unless a request
    /// holds it. The caller removes its directory (once its warm child,
    /// whose bridge socket is in there, is closed); the registry file is
    /// written at once.
    pub(in crate::claude::sessions) fn remove_idle(
        &self,
        id: &SessionId,
        owner: &Option<String>,
        now: u64,
    ) -> Removal {
        let id = id.as_str();
        {
            let mut state = self.state.lock();
            let Some(entry) = state.sessions.get_mut(id) else {
                return Removal::Absent;
            };
            if !same_owner(&entry.owner, owner) || self.is_expired(entry, now) {
                return Removal::Absent;
            }
            if entry.busy {
                return if entry.freeing() {
                    Removal::Exiting
                } else {
                    Removal::Busy
                };
            }
            state.remove(id);
        }
        self.persist();
        Removal::Removed
    }
}

fn info(id: &std::sync::Arc<str>, entry: &Entry) -> SessionInfo {
    SessionInfo {
        id: SessionId::from_registry(id.clone()),
        created_ms: entry.created_ms,
        last_used_ms: entry.last_used_ms,
        model: entry.model.to_string(),
        turns: entry.turns,
        tokens: entry.tokens,
        context: entry.context,
        account: entry.account.as_deref().map(str::to_string),
        busy: entry.busy && !entry.exiting,
    }
}
