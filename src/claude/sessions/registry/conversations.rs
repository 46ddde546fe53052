//! What the registry knows of each session's conversation: the digest of
//! it as its client holds it (see `claude::history`), the index from that
//! digest back to the session, and the CLI's running cost of it.

use std::sync::Arc;

use super::{Registry, State};
use crate::claude::request::history::{HistoryDigest, HistoryHasher};
use crate::session_id::SessionId;

impl State {
    /// Drops `digest` from the index if it still leads to `id`.
    pub(super) fn unindex(&mut self, digest: &HistoryDigest, id: &str) {
        if self.by_history.get(digest).is_some_and(|s| &**s == id) {
            self.by_history.remove(digest);
        }
    }
}

impl Registry {
    /// A hasher for conversations of `owner` (a fingerprint), keyed with
    /// this server's secret.
    pub(in crate::claude::sessions) fn history_hasher(
        &self,
        owner: Option<&str>,
        model: &str,
        system: Option<&str>,
    ) -> HistoryHasher {
        HistoryHasher::new(&self.fingerprint_mac, owner, model, system)
    }

    /// The session whose remembered conversation is `digest`, if any.
    pub(in crate::claude::sessions) fn session_of_history(
        &self,
        digest: &HistoryDigest,
    ) -> Option<SessionId> {
        let id = self.state.lock().by_history.get(digest)?.clone();
        Some(SessionId::from_registry(id))
    }

    /// The session has been taken to continue the conversation `digest`:
    /// the digest is used up, so a conversation continues on one session
    /// only, whoever resends it next.
    pub(in crate::claude::sessions) fn consume_history(&self, digest: &HistoryDigest, id: &str) {
        let mut state = self.state.lock();
        state.unindex(digest, id);
        if let Some(entry) = state.sessions.get_mut(id) {
            entry.history = None;
            state.generation += 1;
        }
    }

    /// After a turn's answer: the conversation as its client now holds it.
    pub(in crate::claude::sessions) fn remember_history(&self, id: &str, digest: HistoryDigest) {
        let mut state = self.state.lock();
        let Some(entry) = state.sessions.get_mut(id) else {
            return;
        };
        let old = entry.history.replace(digest);
        if let Some(old) = old {
            state.unindex(&old, id);
        }
        state.by_history.insert(digest, Arc::from(id));
        state.generation += 1;
    }

    /// Records the CLI's running total after a turn and gives the turn's
    /// share of it. A total below the last one (a session the CLI could
    /// not carry over) counts whole.
    pub(in crate::claude::sessions) fn record_cost(&self, id: &str, total_usd: f64) -> f64 {
        let mut state = self.state.lock();
        let Some(entry) = state.sessions.get_mut(id) else {
            return total_usd;
        };
        let before = std::mem::replace(&mut entry.cost_usd, total_usd);
        state.generation += 1;
        if total_usd >= before {
            total_usd - before
        } else {
            total_usd
        }
    }
}

/// Hex, as the registry file and the owner fingerprints hold digests.
pub(super) fn to_hex(digest: &HistoryDigest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn from_hex(text: &str) -> Option<HistoryDigest> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}
