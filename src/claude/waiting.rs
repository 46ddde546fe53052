//! Turns that stopped for client function calls: the CLI child waits on
//! its bridge, the session stays leased to the turn, and the client's next
//! request, found by the ids of the calls it answers (or its session, or
//! the history it resends), takes the turn back and carries it on.
//!
//! A turn waits at most `TOOL_RESULT_TIMEOUT_MS`. Then its calls are
//! answered with an error, their ids are remembered as expired (a late
//! result gets `tool_call_expired`, not `invalid_tool_call_id`), and the
//! turn is ended and its child put away, on a thread of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::history::HistoryDigest;
use super::process::CliProcess;
use super::sessions::SessionLease;
use super::SessionId;
use crate::error::ApiError;
use crate::ratelimit::KeySlot;

/// How long an expired call's id is remembered.
const EXPIRED_MEMORY: Duration = Duration::from_secs(3600);
/// At most this many expired ids are remembered.
const EXPIRED_MAX: usize = 10_000;

/// A turn waiting for the results of its calls.
pub struct Waiting {
    pub process: CliProcess,
    pub lease: SessionLease,
    /// The owner's fingerprint: only the key that started the turn may
    /// carry it on.
    pub owner: Option<String>,
    /// The ids of the calls the client was given.
    pub calls: Vec<String>,
    /// The conversation as the client holds it, the calls included.
    pub digest: Option<HistoryDigest>,
    pub deadline: Instant,
    /// A slot of the owner's key (`MAX_CONCURRENT_PER_KEY`) held meanwhile.
    pub key_slot: Option<KeySlot>,
}

/// What becomes of a turn that waited too long.
pub type Retire = Box<dyn Fn(Waiting) + Send + Sync>;

pub struct WaitingTurns {
    entries: Mutex<Vec<Waiting>>,
    expired: Mutex<HashMap<String, Instant>>,
    wake: Condvar,
    stop: AtomicBool,
}

impl WaitingTurns {
    /// The table, and a thread that hands turns past their deadline to
    /// `retire` (with their calls already answered with an error).
    pub fn start(retire: Retire) -> Arc<WaitingTurns> {
        let table = Arc::new(WaitingTurns {
            entries: Mutex::new(Vec::new()),
            expired: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let watched = table.clone();
        let _ = thread::Builder::new()
            .name("tool-waits".into())
            .stack_size(128 * 1024)
            .spawn(move || watched.expire_loop(&retire));
        table
    }

    pub fn park(&self, waiting: Waiting) {
        let mut entries = self.entries.lock();
        entries.push(waiting);
        self.wake.notify_one();
    }

    /// How many turns wait right now.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// The turn that waits for the calls `ids` answer, for `owner`. Every
    /// id must be one of that turn's; an id nothing waits for is refused,
    /// as is a turn of another owner (which is not told apart from none).
    pub fn take_by_calls(&self, ids: &[&str], owner: Option<&str>) -> Result<Waiting, ApiError> {
        let mut entries = self.entries.lock();
        let found = ids.first().and_then(|first| {
            entries
                .iter()
                .position(|w| w.calls.iter().any(|c| c == first))
        });
        let unknown = |id: &str| {
            if self.expired.lock().contains_key(id) {
                ApiError::ToolCallExpired { id: id.to_string() }
            } else {
                ApiError::InvalidToolCallId { id: id.to_string() }
            }
        };
        let Some(index) = found else {
            return Err(unknown(ids.first().copied().unwrap_or("")));
        };
        let entry = &entries[index];
        if entry.owner.as_deref() != owner {
            return Err(ApiError::InvalidToolCallId {
                id: ids[0].to_string(),
            });
        }
        if let Some(stray) = ids.iter().find(|id| !entry.calls.iter().any(|c| c == *id)) {
            return Err(unknown(stray));
        }
        Ok(entries.remove(index))
    }

    /// The waiting turn of session `id`, for `owner`.
    pub fn take_by_session(&self, id: &SessionId, owner: Option<&str>) -> Option<Waiting> {
        self.take_where(|w| w.lease.id() == id && w.owner.as_deref() == owner)
    }

    /// The waiting turn whose conversation `digest` names (the digest
    /// covers the owner).
    pub fn take_by_digest(&self, digest: &HistoryDigest) -> Option<Waiting> {
        self.take_where(|w| w.digest.as_ref() == Some(digest))
    }

    fn take_where(&self, matches: impl Fn(&Waiting) -> bool) -> Option<Waiting> {
        let mut entries = self.entries.lock();
        let index = entries.iter().position(matches)?;
        Some(entries.remove(index))
    }

    /// Every waiting turn, for the drain: their children are closed and
    /// their sessions freed by the caller.
    pub fn take_all(&self) -> Vec<Waiting> {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        std::mem::take(&mut *self.entries.lock())
    }

    fn expire_loop(&self, retire: &Retire) {
        let mut entries = self.entries.lock();
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let (due, waiting): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut *entries)
                .into_iter()
                .partition(|w| w.deadline <= now);
            *entries = waiting;
            if !due.is_empty() {
                drop(entries);
                for turn in due {
                    self.remember_expired(&turn.calls, now);
                    retire(turn);
                }
                entries = self.entries.lock();
                continue;
            }
            let next = entries.iter().map(|w| w.deadline).min();
            match next {
                Some(at) => {
                    self.wake.wait_until(&mut entries, at);
                }
                None => self.wake.wait(&mut entries),
            }
        }
    }

    fn remember_expired(&self, ids: &[String], now: Instant) {
        let mut expired = self.expired.lock();
        expired.retain(|_, at| now.duration_since(*at) < EXPIRED_MEMORY);
        for id in ids {
            if expired.len() >= EXPIRED_MAX {
                break;
            }
            expired.insert(id.clone(), now);
        }
    }
}

impl Drop for WaitingTurns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}
