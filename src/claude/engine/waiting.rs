//! Turns that stopped for client function calls: the CLI child waits on
//! its bridge, the session stays leased to the turn, and the client's next
//! request, found by the ids of the calls it answers (or its session, or
//! the history it resends), takes the turn back and carries it on.
//!
//! A waiting turn is the first thing given up: after
//! `TOOL_RESULT_TIMEOUT_MS`; when its key has more than
//! `MAX_TOOL_WAITS_PER_KEY` turns waiting, or more than `MAX_TOOL_WAITS`
//! wait in all (the oldest goes); and when a new turn needs a process slot
//! and none is free (see `cold_start`). Its calls are then answered with an
//! error and the turn is ended, its child put away or closed. The calls'
//! ids are remembered with their session, so that results which come
//! later still continue that conversation (see `resolve`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::claude::child::process::CliProcess;
use crate::claude::request::history::HistoryDigest;
use crate::claude::sessions::SessionLease;
use crate::error::ApiError;
use crate::metrics::GiveUp;
use crate::ratelimit::KeySlot;
use crate::session_id::SessionId;

/// How long a given-up call's id is remembered.
const EXPIRED_MEMORY: Duration = Duration::from_secs(3600);
/// At most this many given-up ids are remembered.
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

/// What becomes of a turn given up in the background, and why.
pub type Retire = Box<dyn Fn(Waiting, GiveUp) + Send + Sync>;

/// How many turns may wait at once.
#[derive(Debug, Clone, Copy)]
pub struct WaitLimits {
    pub total: usize,
    pub per_key: usize,
}

/// A call whose turn was given up: the session a late result continues.
struct GivenUp {
    at: Instant,
    session: SessionId,
    owner: Option<String>,
}

pub struct WaitingTurns {
    entries: Mutex<Vec<Waiting>>,
    given_up: Mutex<HashMap<String, GivenUp>>,
    limits: WaitLimits,
    retire: Retire,
    wake: Condvar,
    stop: AtomicBool,
}

impl WaitingTurns {
    /// The table, and a thread that hands turns past their deadline to
    /// `retire`; turns over `limits` go there too.
    pub fn start(limits: WaitLimits, retire: Retire) -> Arc<WaitingTurns> {
        let table = Arc::new(WaitingTurns {
            entries: Mutex::new(Vec::new()),
            given_up: Mutex::new(HashMap::new()),
            limits,
            retire,
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let watched = table.clone();
        let _ = thread::Builder::new()
            .name("tool-waits".into())
            .stack_size(128 * 1024)
            .spawn(move || watched.expire_loop());
        table
    }

    /// Parks `waiting`; the oldest turns over the limits (its key's first,
    /// then all) are given up.
    pub fn park(&self, waiting: Waiting) {
        let owner = waiting.owner.clone();
        let mut over = Vec::new();
        {
            let mut entries = self.entries.lock();
            entries.push(waiting);
            while entries.iter().filter(|w| w.owner == owner).count() > self.limits.per_key {
                match oldest(&entries, |w| w.owner == owner) {
                    Some(i) => over.push((entries.remove(i), GiveUp::KeyLimit)),
                    None => break,
                }
            }
            while entries.len() > self.limits.total {
                match oldest(&entries, |_| true) {
                    Some(i) => over.push((entries.remove(i), GiveUp::TotalLimit)),
                    None => break,
                }
            }
            self.wake.notify_one();
        }
        for (turn, cause) in over {
            self.remember_given_up(&turn, Instant::now());
            (self.retire)(turn, cause);
        }
    }

    /// The turn that has waited longest, taken out to be given up by the
    /// caller (a new turn needs its process slot).
    pub fn give_up_oldest(&self) -> Option<Waiting> {
        let turn = {
            let mut entries = self.entries.lock();
            let index = oldest(&entries, |_| true)?;
            entries.remove(index)
        };
        self.remember_given_up(&turn, Instant::now());
        Some(turn)
    }

    /// The session of a call whose turn was given up, for `owner`: late
    /// results continue it.
    pub fn given_up_session(&self, id: &str, owner: Option<&str>) -> Option<SessionId> {
        let given_up = self.given_up.lock();
        let entry = given_up.get(id)?;
        (entry.owner.as_deref() == owner).then(|| entry.session.clone())
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
            if self.given_up.lock().contains_key(id) {
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

    fn expire_loop(&self) {
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
                    self.remember_given_up(&turn, now);
                    (self.retire)(turn, GiveUp::Timeout);
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

    fn remember_given_up(&self, turn: &Waiting, now: Instant) {
        let mut given_up = self.given_up.lock();
        given_up.retain(|_, g| now.duration_since(g.at) < EXPIRED_MEMORY);
        for id in &turn.calls {
            if given_up.len() >= EXPIRED_MAX {
                break;
            }
            let entry = GivenUp {
                at: now,
                session: turn.lease.id().clone(),
                owner: turn.owner.clone(),
            };
            given_up.insert(id.clone(), entry);
        }
    }
}

/// The index of the turn that has waited longest among those `matching`
/// (all wait equally long, so the earliest deadline).
fn oldest(entries: &[Waiting], matching: impl Fn(&Waiting) -> bool) -> Option<usize> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, w)| matching(w))
        .min_by_key(|(_, w)| w.deadline)
        .map(|(i, _)| i)
}

impl Drop for WaitingTurns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}
