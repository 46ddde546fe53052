//! A request's hold on one session while its CLI runs: it keeps the
//! session busy, and how it ends (dropped, or forgotten) tells the registry
//! whether the session is free again or gone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::registry::Registry;
use crate::claude::request::history::HistoryDigest;
use crate::config::Secret;
use crate::http::ClientWatch;
use crate::session_id::SessionId;
use crate::turn_event::{ContextUse, TokenCounts};

/// The right to run one request on a session. Dropping it frees the
/// session and records the time of use.
pub struct SessionLease {
    registry: Arc<Registry>,
    id: SessionId,
    work_dir: PathBuf,
    created: bool,
    /// Set once the registry has been told how the lease ended.
    settled: bool,
}

impl SessionLease {
    pub(super) fn new(
        registry: &Arc<Registry>,
        id: SessionId,
        work_dir: PathBuf,
        created: bool,
    ) -> SessionLease {
        SessionLease {
            registry: Arc::clone(registry),
            id,
            work_dir,
            created,
            settled: false,
        }
    }

    /// The session id: what goes to the CLI and back to the client.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The directory the CLI must run in for this session.
    /// The login the session runs on (`None`: the first).
    pub fn account(&self) -> Option<String> {
        self.registry.account_of(self.id.as_str())
    }

    /// The session runs on `account` from now on (its transcript was
    /// carried there).
    pub fn move_to(&self, account: &str) {
        self.registry.move_to(self.id.as_str(), account);
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// True when this request started the session (`--session-id`), false
    /// when it resumes one (`--resume`).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The client has been told the session (an answer that carries its id
    /// went out) and the CLI has it on disk: from now on the session is
    /// continued, not created, even by the request that holds this lease.
    pub fn mark_known(&mut self) {
        self.created = false;
    }

    /// `key` as the registry knows owners (its keyed fingerprint).
    pub fn fingerprint(&self, key: Option<&Secret>) -> Option<String> {
        self.registry.fingerprint(key)
    }

    /// The CLI has answered; it is only exiting now. A resume of the
    /// session waits for this lease to end rather than being refused.
    pub fn answered(&self) {
        self.registry.mark_exiting(self.id.as_str());
    }

    /// While this turn runs, `client` tells whether its client is still
    /// there: a turn for the session that finds the client gone waits for
    /// this one to end (within a second) rather than being refused.
    pub fn watch_client(&self, client: Arc<ClientWatch>) {
        self.registry.watch_client(self.id.as_str(), client);
    }

    /// After an answer: the conversation as the client now holds it, so
    /// that the client resending it lands here.
    pub fn remember_history(&self, digest: HistoryDigest) {
        self.registry.remember_history(self.id.as_str(), digest);
    }

    /// The session has given one more answer, of `tokens`, leaving its
    /// context as `context` says.
    pub fn count_turn(&self, tokens: Option<&TokenCounts>, context: ContextUse) {
        self.registry.count_turn(self.id.as_str(), tokens, context);
    }

    /// The CLI's running total after this turn; gives the turn's share.
    pub fn record_cost(&self, total_usd: f64) -> f64 {
        self.registry.record_cost(self.id.as_str(), total_usd)
    }

    /// Drops the session and its work directory: the CLI does not know it
    /// (or never got to create it), so a later resume must be a clean 404.
    pub fn forget(mut self) {
        self.settled = true;
        self.registry.forget(self.id.as_str());
    }
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        if !self.settled {
            self.settled = true;
            self.registry.release(self.id.as_str());
        }
    }
}

impl fmt::Debug for SessionLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLease")
            .field("id", &self.id)
            .field("work_dir", &self.work_dir)
            .field("created", &self.created)
            .finish()
    }
}
