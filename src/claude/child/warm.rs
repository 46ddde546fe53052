//! The idle `claude` children kept for their sessions' next turns: at most
//! `WARM_SESSIONS` of them, none while the host is short of memory, each
//! closed after `WARM_IDLE_MS` without a turn, the least recently used
//! closed first when room is needed (for another warm child, or for a
//! process slot a new run is waiting for).
//!
//! A child here is idle: its last turn ended with a `result` and it holds
//! its process slot. [`WarmProcesses::take`] hands it to its session's next
//! turn; a child that is not taken back is closed (EOF, then SIGTERM, then
//! SIGKILL, see `process`). One thread closes the ones idle too long.
//!
//! Spares (`WARM_SPARES`) are children started ahead of any session, with
//! a fresh session id, the default model and no system prompt; a new
//! session of that shape takes one instead of waiting for a CLI to start.
//! The same thread starts them, again after each is taken, and replaces
//! them when idle too long (their directory would otherwise age out).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use std::path::PathBuf;

use crate::claude::child::process::{CliProcess, Shape};
use crate::claude::child::slots::ProcessSlots;
use crate::session_id::SessionId;

/// A child started ahead of its session, with the directory made for it.
pub struct Spare {
    pub process: CliProcess,
    pub id: SessionId,
    pub dir: PathBuf,
}

impl Spare {
    /// Closes a spare no session took, and removes its directory.
    pub fn discard(self) {
        let Spare { process, dir, .. } = self;
        process.close();
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            log::debug!("cannot remove an unused spare's directory: {e}");
        }
    }
}

/// Starts one spare, or says it cannot now (no free slot, no CLI).
pub type SpareMaker = Box<dyn Fn() -> Option<Spare> + Send + Sync>;

/// What spares are wanted, and how to make one.
pub struct SparePlan {
    pub count: usize,
    pub shape: Shape,
    pub make: SpareMaker,
}

/// How long the keeper waits before trying again to start a spare that
/// could not be started.
const SPARE_RETRY: Duration = Duration::from_secs(1);

pub struct WarmProcesses {
    max: usize,
    idle_for: Duration,
    min_free_mb: u64,
    pool: Arc<ProcessSlots>,
    /// Oldest use first: the front is the next to be evicted.
    idle: Mutex<Vec<Parked>>,
    spares: Mutex<Vec<(Spare, Instant)>>,
    spare_plan: Option<SparePlan>,
    wake: Condvar,
    closing: AtomicBool,
}

struct Parked {
    process: CliProcess,
    since: Instant,
}

/// What `/health` shows of the warm children.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct WarmStats {
    pub processes: usize,
    pub max: usize,
    pub spares: usize,
    /// Warm children and spares together.
    pub rss_bytes: u64,
}

impl WarmProcesses {
    /// The store, and its thread that closes children idle too long.
    pub fn start(
        max: usize,
        idle_for: Duration,
        min_free_mb: u64,
        pool: Arc<ProcessSlots>,
        spare_plan: Option<SparePlan>,
    ) -> Arc<WarmProcesses> {
        // Without warm children a spare, which is one, has no sense either.
        let spare_plan = spare_plan.filter(|plan| max > 0 && plan.count > 0);
        let warm = Arc::new(WarmProcesses {
            max,
            idle_for,
            min_free_mb,
            pool,
            idle: Mutex::new(Vec::new()),
            spares: Mutex::new(Vec::new()),
            spare_plan,
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        if max > 0 {
            let keeper = warm.clone();
            let spawned = thread::Builder::new()
                .name("warm-keeper".into())
                .stack_size(128 * 1024)
                .spawn(move || keeper.close_idle_ones());
            if let Err(e) = spawned {
                log::error!("cannot start the warm-process thread: {e}");
            }
        }
        warm
    }

    /// True when children are kept at all (`WARM_SESSIONS` > 0).
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// The session's idle child, taken out of the store.
    pub fn take(&self, session: &SessionId) -> Option<CliProcess> {
        let mut idle = self.idle.lock();
        let at = idle.iter().position(|p| p.process.session_id == *session)?;
        Some(idle.remove(at).process)
    }

    /// True when an idle child is kept for `session`.
    pub fn holds(&self, session: &SessionId) -> bool {
        let idle = self.idle.lock();
        idle.iter().any(|p| p.process.session_id == *session)
    }

    /// A spare for a new session of `shape`, if one is ready. The keeper
    /// starts another in its place.
    pub fn take_spare(&self, shape: &Shape) -> Option<Spare> {
        let plan = self.spare_plan.as_ref()?;
        if plan.shape != *shape {
            return None;
        }
        let spare = loop {
            let (spare, _) = self.spares.lock().pop()?;
            if !spare.process.exited() {
                break spare;
            }
            spare.discard();
        };
        let _guard = self.idle.lock();
        self.wake.notify_one();
        Some(spare)
    }

    /// Keeps a child whose turn ended cleanly for its session's next turn,
    /// or closes it: when warm children are off, the server is draining,
    /// memory is short, a request is queued for a process slot, or the
    /// child has exited after all.
    pub fn park(&self, process: CliProcess) {
        if !self.enabled()
            || self.pool.capacity().queued > 0
            || self.memory_short()
            || process.exited()
        {
            process.close();
            return;
        }
        let (evicted, was_empty) = {
            let mut idle = self.idle.lock();
            // Checked under the lock `close_all` empties the store with, so
            // nothing is parked after it.
            if self.closing.load(Ordering::SeqCst) {
                drop(idle);
                process.close();
                return;
            }
            let was_empty = idle.is_empty();
            idle.push(Parked {
                process,
                since: Instant::now(),
            });
            let evicted = (idle.len() > self.max).then(|| idle.remove(0));
            (evicted, was_empty)
        };
        // Every child waits as long, so only a first one changes when the
        // keeper must next wake.
        if was_empty {
            self.wake.notify_one();
        }
        if let Some(oldest) = evicted {
            oldest.process.close();
        }
    }

    /// Closes the least recently used idle child (a spare when there is
    /// none), freeing its process slot. False when there is neither.
    pub fn evict_oldest(&self) -> bool {
        let oldest = {
            let mut idle = self.idle.lock();
            (!idle.is_empty()).then(|| idle.remove(0))
        };
        if let Some(oldest) = oldest {
            oldest.process.close();
            return true;
        }
        let spare = self.spares.lock().pop();
        match spare {
            Some((spare, _)) => {
                spare.discard();
                true
            }
            None => false,
        }
    }

    /// Closes every idle child and keeps none from now on (drain, shutdown).
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let all: Vec<Parked> = std::mem::take(&mut *self.idle.lock());
        close_together(all.into_iter().map(|p| p.process).collect());
        let spares = std::mem::take(&mut *self.spares.lock());
        for (spare, _) in spares {
            spare.discard();
        }
    }

    pub fn stats(&self) -> WarmStats {
        let (processes, warm_rss) = {
            let idle = self.idle.lock();
            let rss = idle.iter().map(|p| p.process.rss_bytes()).sum::<u64>();
            (idle.len(), rss)
        };
        let spares = self.spares.lock();
        WarmStats {
            processes,
            max: self.max,
            spares: spares.len(),
            rss_bytes: warm_rss
                + spares
                    .iter()
                    .map(|(s, _)| s.process.rss_bytes())
                    .sum::<u64>(),
        }
    }

    fn memory_short(&self) -> bool {
        self.min_free_mb > 0 && available_mb().is_some_and(|mb| mb < self.min_free_mb)
    }

    /// The keeper thread: closes children idle longer than `idle_for` and
    /// keeps the spares topped up.
    fn close_idle_ones(&self) {
        let mut spare_retry: Option<Instant> = None;
        while !self.closing.load(Ordering::SeqCst) {
            let now = Instant::now();
            let expired = self.take_expired(now);
            if !expired.is_empty() {
                log::debug!("closing {} idle warm CLI process(es)", expired.len());
                close_together(expired);
                continue;
            }
            if spare_retry.is_none_or(|at| at <= now) {
                spare_retry = self.top_up_spares().then(|| now + SPARE_RETRY);
            }
            let mut idle = self.idle.lock();
            // A spare taken since the top-up notified before this lock was
            // held: look again rather than sleep through it.
            let (spare_count, oldest_spare) = {
                let spares = self.spares.lock();
                (spares.len(), spares.first().map(|(_, since)| *since))
            };
            let wanted = self.spare_plan.as_ref().map_or(0, |plan| plan.count);
            if spare_count < wanted && spare_retry.is_none() {
                continue;
            }
            let due = [
                idle.first().map(|p| p.since + self.idle_for),
                oldest_spare.map(|since| since + self.idle_for),
                spare_retry,
            ]
            .into_iter()
            .flatten()
            .min();
            if self.closing.load(Ordering::SeqCst) {
                break;
            }
            match due {
                Some(due) => {
                    self.wake.wait_until(&mut idle, due);
                }
                None => self.wake.wait(&mut idle),
            }
        }
    }

    /// Children (and spares) idle for `idle_for` or longer, taken out.
    fn take_expired(&self, now: Instant) -> Vec<CliProcess> {
        let old_enough = |since: Instant| now.duration_since(since) >= self.idle_for;
        let mut expired: Vec<CliProcess> = {
            let mut idle = self.idle.lock();
            let (old, young): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|p| old_enough(p.since));
            *idle = young;
            old.into_iter().map(|p| p.process).collect()
        };
        let stale: Vec<Spare> = {
            let mut spares = self.spares.lock();
            let (old, young): (Vec<_>, Vec<_>) = std::mem::take(&mut *spares)
                .into_iter()
                .partition(|(_, since)| old_enough(*since));
            *spares = young;
            old.into_iter().map(|(spare, _)| spare).collect()
        };
        for spare in stale {
            let _ = std::fs::remove_dir_all(&spare.dir);
            expired.push(spare.process);
        }
        expired
    }

    /// Starts spares until there are as many as wanted. True when one could
    /// not be started (try again later).
    fn top_up_spares(&self) -> bool {
        let Some(plan) = &self.spare_plan else {
            return false;
        };
        while self.spares.lock().len() < plan.count {
            if self.closing.load(Ordering::SeqCst) || self.memory_short() {
                return true;
            }
            let Some(spare) = (plan.make)() else {
                return true;
            };
            let mut spares = self.spares.lock();
            // `close_all` may have emptied the list while this one started.
            if self.closing.load(Ordering::SeqCst) {
                drop(spares);
                spare.discard();
                return true;
            }
            spares.push((spare, Instant::now()));
        }
        false
    }
}

/// EOF to every child first, so they exit side by side, then each reaped.
fn close_together(mut processes: Vec<CliProcess>) {
    for process in &mut processes {
        process.send_eof();
    }
    for process in processes {
        process.close();
    }
}

/// `MemAvailable` from /proc/meminfo, in MiB.
fn available_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
