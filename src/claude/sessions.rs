//! The session registry of Claude Code mode. It owns which sessions exist,
//! which API key each belongs to, whether one is busy with a request, and
//! when one expires.
//!
//! A session's CLI children run in `<work_dir>/<id>`: the CLI files a
//! conversation under the directory it was started in, so the directory is
//! derived from the id alone and resume still works after a restart. Owners
//! are stored as an HMAC of the key under a secret of this server, never as
//! the key. The registry is written to `<state_dir>/sessions.json` after each
//! change so that, after a restart, a key still reaches only its own
//! sessions.
//!
//! A request holds a [`SessionLease`] while it runs; the lease is what makes
//! the session busy, and dropping it frees the session again. A lease whose
//! CLI has answered but not yet exited is marked so: a resume then waits
//! for it (the client already has the answer) instead of being refused.

mod disk;
mod spares;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::{Condvar, Mutex};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::ApiError;
use disk::Record;
use spares::Spares;

const REGISTRY_FILE: &str = "sessions.json";
/// How long a resume waits for the previous run's CLI to exit after its
/// answer; by then that CLI is being stopped.
const EXITING_WAIT: Duration = super::run::EXIT_AFTER_ANSWER;
const KEY_FILE: &str = "fingerprint.key";

/// The registry. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct SessionStore {
    inner: Arc<Inner>,
}

struct Inner {
    work_dir: PathBuf,
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
    /// Directories for new sessions, made ahead of the requests.
    spares: Arc<Spares>,
}

struct State {
    sessions: HashMap<Arc<str>, Entry>,
    /// Bumped on every change that belongs in the file.
    generation: u64,
    /// Owner fingerprints and model names, one copy each: there are only as
    /// many as keys and models, shared by every session.
    names: HashSet<Arc<str>>,
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
}

struct Entry {
    owner: Option<Arc<str>>,
    created_ms: u64,
    last_used_ms: u64,
    model: Arc<str>,
    busy: bool,
    /// Busy, but its CLI has answered and is only exiting.
    exiting: bool,
}

/// Outcome of looking a session up for a caller, decided under the lock.
enum Lookup {
    Taken,
    Busy,
    /// Busy until its CLI, which has answered, exits.
    Exiting,
    /// Unknown to the registry (it may still exist on disk).
    Absent,
    /// Expired, or owned by someone else: the caller is told it does not exist.
    Hidden,
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
        let mut state = State {
            sessions: HashMap::new(),
            generation: 0,
            names: HashSet::new(),
        };
        for record in disk::load_registry(&registry_path) {
            match parse_session_id(&record.id) {
                Ok(id) if *id == *record.id => {
                    let entry = Entry {
                        owner: record.owner.map(|o| state.name(&o)),
                        created_ms: record.created_ms,
                        last_used_ms: record.last_used_ms,
                        model: state.name(&record.model),
                        busy: false,
                        exiting: false,
                    };
                    state.sessions.insert(Arc::from(id), entry);
                }
                _ => log::warn!("session registry: skipping an entry with an invalid id"),
            }
        }
        Ok(SessionStore {
            inner: Arc::new(Inner {
                work_dir: work_dir.to_path_buf(),
                registry_path,
                fingerprint_mac,
                ttl_ms: millis(ttl),
                max_age_ms: millis(max_age),
                state: Mutex::new(state),
                exited: Condvar::new(),
                waiting: AtomicUsize::new(0),
                written: Mutex::new(0),
                clock_skew_ms: AtomicU64::new(0),
                spares: Spares::new(work_dir),
            }),
        })
    }

    /// Starts a new session with a fresh server-generated id, bound to
    /// `owner`, and returns it already leased to the caller.
    pub fn create(&self, owner: Option<&Secret>, model: &str) -> Result<SessionLease, ApiError> {
        let inner = &self.inner;
        let owner = inner.fingerprint(owner);
        let register = |id: &str| {
            let now = inner.now_ms();
            let mut state = inner.state.lock();
            let entry = Entry {
                owner: owner.as_deref().map(|o| state.name(o)),
                created_ms: now,
                last_used_ms: now,
                model: state.name(model),
                busy: true,
                exiting: false,
            };
            state.sessions.insert(Arc::from(id), entry);
            state.generation += 1;
        };
        let (id, dir) = match inner.spares.take(register) {
            Some(ready) => ready,
            None => {
                let (id, dir) = inner.make_fresh_dir()?;
                register(&id);
                (id, dir)
            }
        };
        // Written by the sweeper within a tick (and on shutdown), which
        // keeps the file write and its fsync off the request path.
        Ok(SessionLease::new(inner, id, dir, true))
    }

    /// Leases an existing session for `owner`. The id must be a UUID v4
    /// (any letter case; the lease carries it in lower case). Unknown,
    /// expired and foreign sessions all give the same `SessionNotFound`, so
    /// a caller cannot learn whether someone else's id exists.
    pub fn resume(
        &self,
        id: &str,
        owner: Option<&Secret>,
        model: &str,
    ) -> Result<SessionLease, ApiError> {
        let id = parse_session_id(id)?;
        let inner = &self.inner;
        let owner = inner.fingerprint(owner);
        let now = inner.now_ms();
        let mut lookup = inner.take(&id, &owner, model, now);
        if matches!(lookup, Lookup::Exiting) {
            inner.wait_exited(&id, Instant::now() + EXITING_WAIT);
            lookup = inner.take(&id, &owner, model, inner.now_ms());
        }
        // With auth off a session left on disk by a lost registry is anyone's,
        // as it was before: adopt it. With auth on its owner is unknowable.
        if matches!(lookup, Lookup::Absent) && owner.is_none() && !inner.spares.holds(&id) {
            if let Some(created_ms) = inner.orphan_created_ms(&id, now) {
                let mut state = inner.state.lock();
                if !state.sessions.contains_key(id.as_str()) {
                    let entry = Entry {
                        owner: None,
                        created_ms,
                        last_used_ms: now,
                        model: state.name(model),
                        busy: false,
                        exiting: false,
                    };
                    state.sessions.insert(Arc::from(id.as_str()), entry);
                    state.generation += 1;
                    log::info!("session registry: adopted a session found on disk");
                }
                drop(state);
                lookup = inner.take(&id, &owner, model, now);
            }
        }
        match lookup {
            Lookup::Taken => {}
            Lookup::Busy | Lookup::Exiting => return Err(ApiError::SessionBusy),
            Lookup::Absent | Lookup::Hidden => {
                inner.persist();
                return Err(ApiError::SessionNotFound { id });
            }
        }
        let dir = inner.work_dir.join(&id);
        let lease = SessionLease::new(inner, id, dir, false);
        // The directory can vanish under us (a tmp cleaner); the CLI then
        // reports the conversation unknown, which the caller handles.
        if let Err(e) = disk::create_private_dir(&lease.work_dir) {
            log::warn!("session work dir {}: {e}", lease.work_dir.display());
            return Err(work_dir_error());
        }
        Ok(lease)
    }

    /// Removes sessions idle longer than the TTL or older than the maximum
    /// age, with their work directories, and work directories of sessions
    /// the registry does not know that are past the maximum age. Busy
    /// sessions are left to finish. Returns how many sessions went.
    pub fn sweep(&self) -> usize {
        let inner = &self.inner;
        let now = inner.now_ms();
        let expired: Vec<Arc<str>> = {
            let mut state = inner.state.lock();
            let expired: Vec<Arc<str>> = state
                .sessions
                .iter()
                .filter(|(_, e)| !e.busy && inner.is_expired(e, now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                state.sessions.remove(&**id);
            }
            if !expired.is_empty() {
                state.generation += 1;
            }
            expired
        };
        for id in &expired {
            inner.remove_dir(id);
        }
        let orphans = inner.sweep_orphan_dirs(now);
        // Also writes the last-used times that finished requests left
        // behind (see `release`); a no-op when nothing changed.
        inner.persist();
        let removed = expired.len() + orphans;
        if removed > 0 {
            log::info!("session sweep removed {removed} session(s)");
        }
        removed
    }

    /// Writes pending registry changes now (a no-op when the file is
    /// current). The sweeper calls this every tick; shutdown calls it last.
    pub fn flush(&self) {
        self.inner.persist();
    }

    /// Stops making directories ahead and removes the unused ones (end of
    /// drain; dropping the store does it too).
    pub fn close(&self) {
        self.inner.spares.close();
    }

    /// Resumes waiting for the previous CLI of their session to exit.
    pub fn waiting_for_exit(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Sessions in the registry.
    pub fn len(&self) -> usize {
        self.inner.state.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions currently leased by a request.
    pub fn busy_count(&self) -> usize {
        let state = self.inner.state.lock();
        state.sessions.values().filter(|e| e.busy).count()
    }

    #[cfg(test)]
    fn advance_clock(&self, by: Duration) {
        self.inner
            .clock_skew_ms
            .fetch_add(millis(by), Ordering::Relaxed);
    }
}

impl Drop for SessionStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("work_dir", &self.inner.work_dir)
            .field("sessions", &self.len())
            .finish()
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0);
        wall.saturating_add(self.clock_skew_ms.load(Ordering::Relaxed))
    }

    fn is_expired(&self, entry: &Entry, now: u64) -> bool {
        now.saturating_sub(entry.last_used_ms) > self.ttl_ms
            || now.saturating_sub(entry.created_ms) > self.max_age_ms
    }

    /// Hex HMAC-SHA256 of the key under this server's secret; `None` when
    /// auth is off.
    fn fingerprint(&self, owner: Option<&Secret>) -> Option<String> {
        let secret = owner?;
        let mut mac = self.fingerprint_mac.clone();
        mac.update(secret.expose().as_bytes());
        let digest = mac.finalize().into_bytes();
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Marks the session busy for this caller if the caller may have it.
    /// An expired session met here is removed at once, directory included;
    /// the caller persists that.
    fn take(&self, id: &str, owner: &Option<String>, model: &str, now: u64) -> Lookup {
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
                state.sessions.remove(id);
                state.generation += 1;
                drop(state);
                self.remove_dir(id);
            }
            return Lookup::Hidden;
        }
        if entry.busy {
            return if entry.exiting {
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

    /// Creates `<work_dir>/<new id>`. Creating the last component alone
    /// fails on an existing directory, which proves the id unused.
    fn make_fresh_dir(&self) -> Result<(String, PathBuf), ApiError> {
        // The root may have been removed since startup.
        if let Err(e) = disk::create_private_dir(&self.work_dir) {
            log::warn!("work directory {}: {e}", self.work_dir.display());
            return Err(work_dir_error());
        }
        for _ in 0..3 {
            let id = uuid::Uuid::new_v4().hyphenated().to_string();
            let dir = self.work_dir.join(&id);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    log::warn!("session work dir {}: {e}", dir.display());
                    return Err(work_dir_error());
                }
            }
        }
        Err(work_dir_error())
    }

    /// When `<work_dir>/<id>` is a real directory within the maximum age,
    /// its creation time (best known); otherwise `None`, and an expired one
    /// is removed.
    fn orphan_created_ms(&self, id: &str, now: u64) -> Option<u64> {
        let meta = fs::symlink_metadata(self.work_dir.join(id)).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let created_ms = meta
            .created()
            .or_else(|_| meta.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(millis)
            .unwrap_or(now)
            .min(now);
        if now - created_ms > self.max_age_ms {
            self.remove_dir(id);
            return None;
        }
        Some(created_ms)
    }

    /// Removes work directories named like a session, unknown to the
    /// registry, and unchanged for longer than the maximum age: a session
    /// that old would have expired whatever its last use. Other names are
    /// left alone; the work directory may be shared.
    fn sweep_orphan_dirs(&self, now: u64) -> usize {
        let Ok(entries) = fs::read_dir(&self.work_dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if parse_session_id(name).ok().as_deref() != Some(name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(millis)
                .unwrap_or(now);
            if !meta.is_dir() || now.saturating_sub(modified_ms) <= self.max_age_ms {
                continue;
            }
            let known = self
                .spares
                .unless_spare(name, || self.state.lock().sessions.contains_key(name));
            if known != Some(false) {
                continue;
            }
            self.remove_dir(name);
            removed += 1;
        }
        removed
    }

    fn remove_dir(&self, id: &str) {
        let dir = self.work_dir.join(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                log::warn!("could not remove session work dir {}: {e}", dir.display());
            }
            _ => {}
        }
    }

    /// Writes the registry if it changed since the last write. The file is
    /// written outside the registry lock; the write lock makes writers take
    /// turns, and each one snapshots only once it has its turn, so the last
    /// write always carries the latest state.
    fn persist(&self) {
        let mut written = self.written.lock();
        let (generation, records) = {
            let state = self.state.lock();
            if state.generation == *written {
                return;
            }
            // Reference counts, not copies: the lock is held only for this,
            // and a large registry costs no string allocations to save.
            let records: Vec<Record> = state
                .sessions
                .iter()
                .map(|(id, e)| Record {
                    id: id.clone(),
                    owner: e.owner.clone(),
                    created_ms: e.created_ms,
                    last_used_ms: e.last_used_ms,
                    model: e.model.clone(),
                })
                .collect();
            (state.generation, records)
        };
        match disk::write_registry(&self.registry_path, records) {
            Ok(()) => *written = generation,
            Err(e) => log::warn!(
                "could not write session registry {}: {e}",
                self.registry_path.display()
            ),
        }
    }

    /// Until the lease is dropped, a resume waits instead of being refused.
    fn mark_exiting(&self, id: &str) {
        if let Some(entry) = self.state.lock().sessions.get_mut(id) {
            entry.exiting = true;
        }
    }

    /// Waits (up to `deadline`) while the session's CLI is exiting.
    fn wait_exited(&self, id: &str, deadline: Instant) {
        let mut state = self.state.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while state.sessions.get(id).is_some_and(|e| e.busy && e.exiting) {
            if self.exited.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    fn release(&self, id: &str) {
        let now = self.now_ms();
        let was_exiting = {
            let mut state = self.state.lock();
            let Some(entry) = state.sessions.get_mut(id) else {
                return;
            };
            entry.busy = false;
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

    fn forget(&self, id: &str) {
        let removed = {
            let mut state = self.state.lock();
            let removed = state.sessions.remove(id).is_some();
            if removed {
                state.generation += 1;
            }
            removed
        };
        self.remove_dir(id);
        if removed {
            self.persist();
        }
    }
}

/// The right to run one request on a session. Dropping it frees the
/// session and records the time of use.
pub struct SessionLease {
    store: Arc<Inner>,
    id: String,
    work_dir: PathBuf,
    created: bool,
    /// Set once the registry has been told how the lease ended.
    settled: bool,
}

impl SessionLease {
    fn new(store: &Arc<Inner>, id: String, work_dir: PathBuf, created: bool) -> SessionLease {
        SessionLease {
            store: Arc::clone(store),
            id,
            work_dir,
            created,
            settled: false,
        }
    }

    /// The session id, lower case: what goes to the CLI and back to the client.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory the CLI must run in for this session.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// True when this request started the session (`--session-id`), false
    /// when it resumes one (`--resume`).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The CLI has answered; it is only exiting now. A resume of the
    /// session waits for this lease to end rather than being refused.
    pub fn answered(&self) {
        self.store.mark_exiting(&self.id);
    }

    /// Drops the session and its work directory: the CLI does not know it
    /// (or never got to create it), so a later resume must be a clean 404.
    pub fn forget(mut self) {
        self.settled = true;
        self.store.forget(&self.id);
    }
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        if !self.settled {
            self.settled = true;
            self.store.release(&self.id);
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

/// How often pending registry changes are written: new sessions reach the
/// disk within this long (and at shutdown), and a busy server writes the
/// file at most this often instead of once per request.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Runs [`SessionStore::sweep`] every `every` until `stop` is set, looking
/// at `stop` at least every 100 ms so shutdown does not wait on it. `None`
/// if the thread could not be started (logged; sessions then expire only
/// when resumed).
pub fn spawn_sweeper(
    store: Arc<SessionStore>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    let tick = every.min(Duration::from_millis(100));
    let spawned = std::thread::Builder::new()
        .name("session-sweeper".into())
        .spawn(move || {
            let mut next = Instant::now() + every;
            let mut next_flush = Instant::now() + FLUSH_EVERY;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                let now = Instant::now();
                if now >= next && !stop.load(Ordering::Relaxed) {
                    store.sweep();
                    next = now + every;
                    next_flush = now + FLUSH_EVERY;
                } else if now >= next_flush {
                    store.flush();
                    next_flush = now + FLUSH_EVERY;
                }
            }
            store.flush();
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            log::error!("could not start the session sweeper: {e}");
            None
        }
    }
}

/// Checks a client-supplied session id: the hyphenated form of a UUID
/// version 4 with the RFC 4122 variant, in either letter case. Returns it in
/// lower case, the form the server hands out and names directories with.
pub fn parse_session_id(raw: &str) -> Result<String, ApiError> {
    // The uuid crate also takes braced, URN and unhyphenated forms; a
    // session id is only ever sent back in the form we gave out.
    let hyphens_ok = raw.len() == 36
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) == (b == b'-'));
    if !hyphens_ok {
        return Err(ApiError::InvalidSessionId);
    }
    let uuid = uuid::Uuid::parse_str(raw).map_err(|_| ApiError::InvalidSessionId)?;
    if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
        return Err(ApiError::InvalidSessionId);
    }
    Ok(uuid.hyphenated().to_string())
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

fn work_dir_error() -> ApiError {
    ApiError::InternalError {
        message: "Could not prepare a working directory for the Claude session.".into(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
