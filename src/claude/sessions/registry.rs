//! The registry behind the store and every lease: which sessions exist,
//! whose they are (as fingerprints), which are busy or only waiting for
//! their CLI to exit, when each was made and last used, which conversation
//! digest leads to each, what each has cost, and when the registry file
//! needs writing. All of it under one lock. What concerns the
//! conversations themselves (their digests, their running cost) is in
//! `conversations`.

mod conversations;
mod listing;
mod saved;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::{Condvar, Mutex};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::disk::Record;
use super::millis;
use super::work_dirs::WorkDirs;
use crate::claude::request::history::HistoryDigest;
use crate::config::Secret;
use crate::http::ClientWatch;
use crate::session_id::SessionId;
use crate::turn_event::{ContextUse, TokenCounts};
use conversations::to_hex;
pub(super) use listing::Removal;
pub use listing::SessionInfo;

pub(super) struct Registry {
    pub(super) dirs: WorkDirs,
    registry_path: PathBuf,
    /// HMAC keyed with this server's secret, cloned for each fingerprint.
    fingerprint_mac: Hmac<Sha256>,
    ttl_ms: u64,
    max_age_ms: u64,
    state: Mutex<State>,
    /// Signalled when a session whose CLI was exiting is free again.
    exited: Condvar,
    /// Resumes waiting on `exited` right now.
    waiting: AtomicUsize,
    /// Serializes writers of the registry file and remembers which
    /// generation the file holds, so a burst of changes is written once.
    written: Mutex<u64>,
    /// Added to the wall clock; only tests move it.
    clock_skew_ms: AtomicU64,
}

struct State {
    sessions: HashMap<Arc<str>, Entry>,
    /// Bumped on every change that belongs in the file.
    generation: u64,
    /// Owner fingerprints and model names, one copy each: there are only as
    /// many as keys and models, shared by every session.
    names: HashSet<Arc<str>>,
    /// The session each remembered conversation continues.
    by_history: HashMap<HistoryDigest, Arc<str>>,
}

impl State {
    fn name(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.names.get(text) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(text);
        self.names.insert(name.clone());
        name
    }

    /// Removes a session and the conversation digest that leads to it.
    fn remove(&mut self, id: &str) -> bool {
        let Some(entry) = self.sessions.remove(id) else {
            return false;
        };
        if let Some(digest) = entry.history {
            self.unindex(&digest, id);
        }
        self.generation += 1;
        true
    }
}

struct Entry {
    owner: Option<Arc<str>>,
    created_ms: u64,
    last_used_ms: u64,
    model: Arc<str>,
    busy: bool,
    /// Busy, but its CLI has answered and is only exiting (or the client
    /// of its turn has gone, and the turn is ending).
    exiting: bool,
    /// The client of the turn that holds the session, while it waits for
    /// its answer.
    client: Option<Arc<ClientWatch>>,
    history: Option<HistoryDigest>,
    /// The CLI's running total after the session's last turn.
    cost_usd: f64,
    /// Answers the session has given.
    turns: u64,
    /// The tokens of those answers, added up.
    tokens: TokenCounts,
    /// How full its context is, and its compactions.
    context: ContextUse,
    /// The login it runs on (`CLAUDE_ACCOUNTS`); `None` is the first.
    account: Option<Arc<str>>,
}

impl Entry {
    /// True when the session is busy but about to be free: its CLI has
    /// answered and is exiting, or the client of its turn has gone (the
    /// turn notices that itself within `claude::CLIENT_TICK` and ends).
    fn freeing(&mut self) -> bool {
        if !self.exiting && self.client.as_ref().is_some_and(|c| c.departed()) {
            self.exiting = true;
        }
        self.exiting
    }
}

/// Outcome of looking a session up for a caller, decided under the lock.
pub(super) enum Lookup {
    Taken,
    Busy,
    /// Busy until its CLI, which has answered, exits.
    Exiting,
    /// Unknown to the registry (it may still exist on disk).
    Absent,
    /// Expired, or owned by someone else: the caller is told it does not exist.
    Hidden,
}

impl Registry {
    /// A registry holding `records` (the ones with a valid id).
    pub(super) fn new(
        dirs: WorkDirs,
        registry_path: PathBuf,
        fingerprint_mac: Hmac<Sha256>,
        ttl: Duration,
        max_age: Duration,
        records: Vec<Record>,
    ) -> Registry {
        let state = State::from_records(records);
        Registry {
            dirs,
            registry_path,
            fingerprint_mac,
            ttl_ms: millis(ttl),
            max_age_ms: millis(max_age),
            state: Mutex::new(state),
            exited: Condvar::new(),
            waiting: AtomicUsize::new(0),
            written: Mutex::new(0),
            clock_skew_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0);
        wall.saturating_add(self.clock_skew_ms.load(Ordering::Relaxed))
    }

    #[cfg(test)]
    pub(super) fn advance_clock(&self, by: Duration) {
        self.clock_skew_ms.fetch_add(millis(by), Ordering::Relaxed);
    }

    fn is_expired(&self, entry: &Entry, now: u64) -> bool {
        now.saturating_sub(entry.last_used_ms) > self.ttl_ms
            || now.saturating_sub(entry.created_ms) > self.max_age_ms
    }

    /// Hex HMAC-SHA256 of the key under this server's secret; `None` when
    /// auth is off.
    pub(super) fn fingerprint(&self, owner: Option<&Secret>) -> Option<String> {
        let secret = owner?;
        let mut mac = self.fingerprint_mac.clone();
        mac.update(secret.expose().as_bytes());
        Some(to_hex(&mac.finalize().into_bytes().into()))
    }

    /// Enters a session just created for `owner`, already busy.
    pub(super) fn insert_new(
        &self,
        id: &SessionId,
        owner: Option<&str>,
        model: &str,
        account: &str,
    ) {
        let now = self.now_ms();
        let mut state = self.state.lock();
        let entry = Entry {
            owner: owner.map(|o| state.name(o)),
            created_ms: now,
            last_used_ms: now,
            model: state.name(model),
            busy: true,
            exiting: false,
            client: None,
            history: None,
            cost_usd: 0.0,
            turns: 0,
            tokens: TokenCounts::default(),
            context: ContextUse::default(),
            account: Some(state.name(account)),
        };
        state.sessions.insert(id.shared(), entry);
        state.generation += 1;
    }

    /// Marks the session busy for this caller if the caller may have it.
    /// An expired session met here is removed at once, directory included;
    /// the caller persists that.
    pub(super) fn take(
        &self,
        id: &SessionId,
        owner: &Option<String>,
        model: &str,
        now: u64,
    ) -> Lookup {
        let id = id.as_str();
        let mut state = self.state.lock();
        let model = state.name(model);
        let Some(entry) = state.sessions.get_mut(id) else {
            return Lookup::Absent;
        };
        if !same_owner(&entry.owner, owner) {
            return Lookup::Hidden;
        }
        if self.is_expired(entry, now) {
            if !entry.busy {
                state.remove(id);
                drop(state);
                self.dirs.remove(id);
            }
            return Lookup::Hidden;
        }
        if entry.busy {
            return if entry.freeing() {
                Lookup::Exiting
            } else {
                Lookup::Busy
            };
        }
        entry.busy = true;
        entry.last_used_ms = now;
        entry.model = model;
        state.generation += 1;
        Lookup::Taken
    }

    /// True when `id` is a live session of `owner` (busy or not).
    pub(super) fn knows(&self, id: &SessionId, owner: &Option<String>, now: u64) -> bool {
        let state = self.state.lock();
        state
            .sessions
            .get(id.as_str())
            .is_some_and(|entry| same_owner(&entry.owner, owner) && !self.is_expired(entry, now))
    }

    /// Enters a session found only on disk, ownerless and idle, unless it
    /// is known by now. False when its directory is gone or past the
    /// maximum age (an expired one is removed).
    pub(super) fn adopt(&self, id: &SessionId, model: &str, now: u64) -> bool {
        let Some(created_ms) = self.dirs.created_ms(id.as_str(), now) else {
            return false;
        };
        if now - created_ms > self.max_age_ms {
            self.dirs.remove(id.as_str());
            return false;
        }
        let mut state = self.state.lock();
        if !state.sessions.contains_key(id.as_str()) {
            let entry = Entry {
                owner: None,
                created_ms,
                last_used_ms: now,
                model: state.name(model),
                busy: false,
                exiting: false,
                client: None,
                history: None,
                cost_usd: 0.0,
                turns: 0,
                tokens: TokenCounts::default(),
                context: ContextUse::default(),
                account: None,
            };
            state.sessions.insert(id.shared(), entry);
            state.generation += 1;
            log::info!("session registry: adopted a session found on disk");
        }
        true
    }

    /// Removes idle sessions past the TTL or the maximum age, and session
    /// directories nobody knows that are past the maximum age (a session
    /// that old would have expired whatever its last use). Returns how many
    /// went.
    pub(super) fn remove_expired(&self) -> usize {
        let now = self.now_ms();
        let expired: Vec<Arc<str>> = {
            let mut state = self.state.lock();
            let expired: Vec<Arc<str>> = state
                .sessions
                .iter()
                .filter(|(_, e)| !e.busy && self.is_expired(e, now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                state.remove(id);
            }
            expired
        };
        for id in &expired {
            self.dirs.remove(id);
        }
        let mut orphans = 0;
        for name in self.dirs.unchanged_for(self.max_age_ms, now) {
            if !self.state.lock().sessions.contains_key(name.as_str()) {
                self.dirs.remove(&name);
                orphans += 1;
            }
        }
        expired.len() + orphans
    }

    /// Until the lease is dropped, a resume waits instead of being refused.
    pub(super) fn mark_exiting(&self, id: &str) {
        if let Some(entry) = self.state.lock().sessions.get_mut(id) {
            entry.exiting = true;
        }
    }

    /// While the turn that holds the session runs, `client` tells whether
    /// its client is still there.
    pub(super) fn watch_client(&self, id: &str, client: Arc<ClientWatch>) {
        if let Some(entry) = self.state.lock().sessions.get_mut(id) {
            entry.client = Some(client);
        }
    }

    /// Waits (up to `deadline`) while the session's CLI is exiting.
    pub(super) fn wait_exited(&self, id: &SessionId, deadline: Instant) {
        let id = id.as_str();
        let mut state = self.state.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while state.sessions.get(id).is_some_and(|e| e.busy && e.exiting) {
            if self.exited.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    pub(super) fn release(&self, id: &str) {
        let now = self.now_ms();
        let was_exiting = {
            let mut state = self.state.lock();
            let Some(entry) = state.sessions.get_mut(id) else {
                return;
            };
            entry.busy = false;
            entry.client = None;
            entry.last_used_ms = now;
            let was_exiting = std::mem::take(&mut entry.exiting);
            state.generation += 1;
            was_exiting
        };
        if was_exiting {
            self.exited.notify_all();
        }
        // Only the last-used time changed: the sweeper writes it on its next
        // round, which keeps a disk write and fsync off every request. A
        // crash loses at most one cleanup interval of idle-time credit.
    }

    pub(super) fn forget(&self, id: &str) {
        let removed = self.state.lock().remove(id);
        self.dirs.remove(id);
        if removed {
            self.persist();
        }
    }

    pub(super) fn waiting_for_exit(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub(super) fn len(&self) -> usize {
        self.state.lock().sessions.len()
    }

    pub(super) fn busy_count(&self) -> usize {
        let state = self.state.lock();
        state.sessions.values().filter(|e| e.busy).count()
    }
}

/// Owners match when both are absent (auth off) or both are the same
/// fingerprint; auth switched on or off in between locks a session out.
fn same_owner(stored: &Option<Arc<str>>, caller: &Option<String>) -> bool {
    match (stored, caller) {
        (None, None) => true,
        (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
        _ => false,
    }
}
