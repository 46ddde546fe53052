//! The sessions of Claude Code mode: which exist, which API key each
//! belongs to, whether one is busy with a request, and when one expires.
//! [`SessionStore`] is the API; the state lives in `registry`, the
//! directories in `work_dirs`, the files in `disk`.
//!
//! A session's CLI children run in `<work_dir>/<id>`: the CLI files a
//! conversation under the directory it was started in, so the directory is
//! derived from the id alone and resume still works after a restart. Owners
//! are stored as an HMAC of the key under a secret of this server, never as
//! the key. The registry is written to `<state_dir>/sessions.json` (by the
//! sweeper, within a second of a change) so that, after a restart, a key
//! still reaches only its own sessions.
//!
//! A request holds a [`SessionLease`] while it runs; the lease is what makes
//! the session busy, and dropping it frees the session again. A lease whose
//! CLI has answered but not yet exited is marked so: a resume then waits
//! for it (the client already has the answer) instead of being refused.

mod disk;
mod lease;
mod registry;
mod sweeper;
#[cfg(test)]
mod tests;
mod work_dirs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SessionId;
use crate::claude::request::history::{HistoryDigest, HistoryHasher};
use crate::config::Secret;
use crate::error::ApiError;
pub(crate) use disk::create_private_dir;
pub use lease::SessionLease;
pub use registry::SessionInfo;
use registry::{Lookup, Registry, Removal};
#[cfg(test)]
pub use sweeper::spawn_sweeper;
pub use sweeper::sweep_until_stopped;
use work_dirs::WorkDirs;

const REGISTRY_FILE: &str = "sessions.json";
/// How long a resume waits for the previous run's CLI to exit after its
/// answer, which is as long as that CLI is given before it is stopped. The
/// real CLI needs about 0.1 s; a hook or an MCP server may hold it longer,
/// not this long.
pub const EXITING_WAIT: Duration = Duration::from_secs(10);
const KEY_FILE: &str = "fingerprint.key";

/// The session store. Cheap to share behind an `Arc`; every method takes
/// `&self`.
pub struct SessionStore {
    registry: Arc<Registry>,
}

impl SessionStore {
    /// Opens the registry in `state_dir`, creating `state_dir` and
    /// `work_dir` (0700) if missing. A missing or corrupt registry file
    /// starts an empty registry (a corrupt one is moved aside); only an
    /// unusable directory or fingerprint key is an error.
    pub fn open(
        state_dir: &Path,
        work_dir: &Path,
        ttl: Duration,
        max_age: Duration,
    ) -> Result<SessionStore, String> {
        disk::create_private_dir(state_dir)
            .map_err(|e| format!("state directory {}: {e}", state_dir.display()))?;
        disk::create_private_dir(work_dir)
            .map_err(|e| format!("work directory {}: {e}", work_dir.display()))?;
        let key = disk::load_or_create_key(&state_dir.join(KEY_FILE))?;
        let fingerprint_mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|e| format!("fingerprint key: {e}"))?;
        let registry_path = state_dir.join(REGISTRY_FILE);
        let records = disk::load_registry(&registry_path);
        let registry = Registry::new(
            WorkDirs::new(work_dir),
            registry_path,
            fingerprint_mac,
            ttl,
            max_age,
            records,
        );
        Ok(SessionStore {
            registry: Arc::new(registry),
        })
    }

    /// Starts a new session with a fresh server-generated id, bound to
    /// `owner`, and returns it already leased to the caller.
    pub fn create(
        &self,
        owner: Option<&Secret>,
        model: &str,
        account: &str,
    ) -> Result<SessionLease, ApiError> {
        let registry = &self.registry;
        let owner = registry.fingerprint(owner);
        let (id, dir) = registry.dirs.make_fresh()?;
        registry.insert_new(&id, owner.as_deref(), model, account);
        // Written by the sweeper within a tick (and on shutdown), which
        // keeps the file write and its fsync off the request path.
        Ok(SessionLease::new(registry, id, dir, true))
    }

    /// Live sessions on `account` (`first`: the first account, which also
    /// has the sessions recorded without one).
    pub fn live_on(&self, account: &str, first: bool) -> usize {
        self.registry.live_on(account, first)
    }

    /// A fresh session id and its new directory, for a CLI started ahead
    /// of the session (a spare); nothing is registered yet.
    pub fn fresh_dir(&self) -> Result<(SessionId, PathBuf), ApiError> {
        self.registry.dirs.make_fresh()
    }

    /// Registers a new session for `owner` under an id made by
    /// [`SessionStore::fresh_dir`], leased to the caller.
    pub fn create_with(
        &self,
        owner: Option<&Secret>,
        model: &str,
        account: &str,
        id: SessionId,
        dir: PathBuf,
    ) -> SessionLease {
        let registry = &self.registry;
        let owner = registry.fingerprint(owner);
        registry.insert_new(&id, owner.as_deref(), model, account);
        SessionLease::new(registry, id, dir, true)
    }

    /// Leases an existing session for `owner`. Unknown, expired and foreign
    /// sessions all give the same `SessionNotFound`, so a caller cannot
    /// learn whether someone else's id exists.
    pub fn resume(
        &self,
        id: &SessionId,
        owner: Option<&Secret>,
        model: &str,
    ) -> Result<SessionLease, ApiError> {
        let registry = &self.registry;
        let owner = registry.fingerprint(owner);
        let now = registry.now_ms();
        let mut lookup = registry.take(id, &owner, model, now);
        if matches!(lookup, Lookup::Exiting) {
            registry.wait_exited(id, Instant::now() + EXITING_WAIT);
            lookup = registry.take(id, &owner, model, registry.now_ms());
        }
        // With auth off a session left on disk by a lost registry is anyone's,
        // as it was before: adopt it. With auth on its owner is unknowable.
        if matches!(lookup, Lookup::Absent) && owner.is_none() && registry.adopt(id, model, now) {
            lookup = registry.take(id, &owner, model, now);
        }
        match lookup {
            Lookup::Taken => {}
            Lookup::Busy | Lookup::Exiting => return Err(ApiError::SessionBusy),
            Lookup::Absent | Lookup::Hidden => {
                registry.persist();
                return Err(ApiError::SessionNotFound { id: id.to_string() });
            }
        }
        let dir = registry.dirs.path(id.as_str());
        // The lease first: if the directory cannot be made, dropping it frees
        // the session again.
        let lease = SessionLease::new(registry, id.clone(), dir, false);
        registry.dirs.ensure(lease.work_dir())?;
        Ok(lease)
    }

    /// Takes the session that answered the conversation `digest` (see
    /// `claude::history`) for `owner`, like [`SessionStore::resume`] but
    /// quietly: `None` when nothing matches, the match is busy, expired or
    /// someone else's, and the caller starts a new session instead.
    pub fn continue_history(
        &self,
        digest: &HistoryDigest,
        owner: Option<&Secret>,
        model: &str,
    ) -> Option<SessionLease> {
        let registry = &self.registry;
        let owner = registry.fingerprint(owner);
        let id = registry.session_of_history(digest)?;
        let mut lookup = registry.take(&id, &owner, model, registry.now_ms());
        if matches!(lookup, Lookup::Exiting) {
            // The previous turn has answered and is being put away.
            registry.wait_exited(&id, Instant::now() + EXITING_WAIT);
            lookup = registry.take(&id, &owner, model, registry.now_ms());
        }
        if !matches!(lookup, Lookup::Taken) {
            return None;
        }
        registry.consume_history(digest, id.as_str());
        let dir = registry.dirs.path(id.as_str());
        let lease = SessionLease::new(registry, id, dir, false);
        registry.dirs.ensure(lease.work_dir()).ok()?;
        Some(lease)
    }

    /// True when this server has session `id` for `owner`, busy or not.
    /// Nothing is leased.
    pub fn knows(&self, id: &SessionId, owner: Option<&Secret>) -> bool {
        let registry = &self.registry;
        registry.knows(id, &registry.fingerprint(owner), registry.now_ms())
    }

    /// `owner`'s live sessions, the most recently created first.
    pub fn list(&self, owner: Option<&Secret>) -> Vec<SessionInfo> {
        let registry = &self.registry;
        registry.list(&registry.fingerprint(owner), registry.now_ms())
    }

    /// Session `id` of `owner`; `SessionNotFound` for an unknown, expired
    /// or foreign one, as for a resume.
    pub fn info(&self, id: &SessionId, owner: Option<&Secret>) -> Result<SessionInfo, ApiError> {
        let registry = &self.registry;
        registry
            .info(id, &registry.fingerprint(owner), registry.now_ms())
            .ok_or_else(|| ApiError::SessionNotFound { id: id.to_string() })
    }

    /// Removes session `id` of `owner`, runs `removed` (which closes its
    /// warm child), then removes its work directory. A session a request
    /// holds is refused (`SessionInUse`), except one whose answer has gone
    /// out and whose CLI is only exiting: that one is waited for (as a
    /// resume waits) and then removed.
    pub fn delete(
        &self,
        id: &SessionId,
        owner: Option<&Secret>,
        removed: impl FnOnce(),
    ) -> Result<(), ApiError> {
        let registry = &self.registry;
        let owner = registry.fingerprint(owner);
        let mut removal = registry.remove_idle(id, &owner, registry.now_ms());
        if matches!(removal, Removal::Exiting) {
            registry.wait_exited(id, Instant::now() + EXITING_WAIT);
            removal = registry.remove_idle(id, &owner, registry.now_ms());
        }
        match removal {
            Removal::Removed => {
                removed();
                registry.dirs.remove(id.as_str());
                Ok(())
            }
            Removal::Busy | Removal::Exiting => Err(ApiError::SessionInUse),
            Removal::Absent => Err(ApiError::SessionNotFound { id: id.to_string() }),
        }
    }

    /// The owner as the registry knows it (a keyed fingerprint of the key),
    /// for tables that must check ownership too.
    pub fn owner_fingerprint(&self, owner: Option<&Secret>) -> Option<String> {
        self.registry.fingerprint(owner)
    }

    /// A hasher for `owner`'s conversations (see `claude::history`).
    pub fn history_hasher(
        &self,
        owner: Option<&Secret>,
        model: &str,
        system: Option<&str>,
    ) -> HistoryHasher {
        let owner = self.registry.fingerprint(owner);
        self.registry
            .history_hasher(owner.as_deref(), model, system)
    }

    /// Removes sessions idle longer than the TTL or older than the maximum
    /// age, with their work directories, and work directories of sessions
    /// the registry does not know that are past the maximum age. Busy
    /// sessions are left to finish. Returns how many sessions went.
    pub fn sweep(&self) -> usize {
        let removed = self.registry.remove_expired();
        // Also writes the last-used times that finished requests left
        // behind (see `Registry::release`); a no-op when nothing changed.
        self.registry.persist();
        if removed > 0 {
            log::info!("session sweep removed {removed} session(s)");
        }
        removed
    }

    /// Writes pending registry changes now (a no-op when the file is
    /// current). The sweeper calls this every tick; shutdown calls it last.
    pub fn flush(&self) {
        self.registry.persist();
    }

    /// The end of the server: the registry written.
    pub fn close(&self) {
        self.registry.persist();
    }

    /// Resumes waiting for the previous CLI of their session to exit.
    pub fn waiting_for_exit(&self) -> usize {
        self.registry.waiting_for_exit()
    }

    /// Sessions in the registry.
    pub fn len(&self) -> usize {
        self.registry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions currently leased by a request.
    pub fn busy_count(&self) -> usize {
        self.registry.busy_count()
    }

    #[cfg(test)]
    fn advance_clock(&self, by: Duration) {
        self.registry.advance_clock(by);
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("work_dir", &self.registry.dirs.root())
            .field("sessions", &self.len())
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
