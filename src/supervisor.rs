//! The one thread that watches every live `claude` child: its deadline, the
//! SIGTERM → SIGKILL escalation, and the drain's "stop everything".
//!
//! Workers own their `Child` and reap it; they register its process group
//! here and hold a [`Watch`] until the child is reaped. Signals always go to
//! the whole group (`kill(-pgid, …)`), so whatever the CLI started dies with
//! it. An entry leaves the registry when its `Watch` is dropped, which the
//! worker does only after `wait()` returned, so a signal is never sent to a
//! reaped (and possibly reused) process group.
//!
//! A child that stays up between turns (a warm CLI) is given an
//! interrupter: its turn's deadline, or a client that went away, then
//! writes an interrupt to it instead of a SIGTERM, and SIGKILL follows only
//! if the turn has not ended within the grace. The turn's end re-arms the
//! entry ([`Watch::rearm`]) unless a signal was already sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Why a child was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Timeout,
    ClientGone,
    Shutdown,
    AuthFailed,
    OutputLimit,
}

/// Asks a child to end its turn; false when the request could not be made
/// (the child is then signalled instead). Called under the supervisor's
/// lock, so it must not block.
pub type Interrupter = Box<dyn Fn() -> bool + Send>;

struct Entry {
    pgid: i32,
    deadline: Instant,
    reason: Option<StopReason>,
    kill_at: Option<Instant>,
    interrupter: Option<Interrupter>,
    /// A SIGTERM or SIGKILL went to the group: it is not to be reused.
    signalled: bool,
}

impl Entry {
    /// Ends the current turn for `reason`: an interrupt where the child
    /// takes one, else SIGTERM; SIGKILL after `grace` either way.
    fn end_turn(&mut self, reason: StopReason, now: Instant, grace: Duration) {
        self.reason = Some(reason);
        self.kill_at = Some(now + grace);
        let interrupted = self
            .interrupter
            .as_ref()
            .is_some_and(|interrupt| interrupt());
        if !interrupted {
            self.signal(libc::SIGTERM);
        }
    }

    fn signal(&mut self, signal: i32) {
        self.signalled = true;
        signal_group(self.pgid, signal);
    }
}

struct State {
    entries: HashMap<u64, Entry>,
    next_id: u64,
    /// The deadline the thread sleeps until (`None`: until woken).
    sleeping_until: Option<Instant>,
}

pub struct Supervisor {
    state: Mutex<State>,
    wake: Condvar,
    grace: Duration,
    stop: AtomicBool,
}

/// A registered child. Dropping it unregisters the child: do that only
/// after the child has been reaped.
pub struct Watch {
    id: u64,
    supervisor: Arc<Supervisor>,
}

impl Watch {
    /// Why the child was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        self.supervisor
            .state
            .lock()
            .entries
            .get(&self.id)
            .and_then(|e| e.reason)
    }

    /// SIGTERM now, SIGKILL after the grace period unless it exits first.
    pub fn stop(&self, reason: StopReason) {
        self.supervisor.stop_one(self.id, reason);
    }

    /// Brings the deadline forward to `at` (never back): a child that has
    /// answered gets a short while to exit, not the rest of its request time.
    pub fn deadline_by(&self, at: Instant) {
        self.supervisor.deadline_by(self.id, at);
    }

    /// Ends the child's turn for `reason`: an interrupt if it has an
    /// interrupter, else SIGTERM; SIGKILL after the grace.
    pub fn interrupt(&self, reason: StopReason) {
        self.supervisor.interrupt_one(self.id, reason);
    }

    /// From now on the turn's end is asked for, not forced (see
    /// [`Interrupter`]).
    pub fn set_interrupter(&self, interrupter: Interrupter) {
        if let Some(entry) = self.supervisor.state.lock().entries.get_mut(&self.id) {
            entry.interrupter = Some(interrupter);
        }
    }

    /// A new turn (or a rest until `deadline`) for a child whose turn has
    /// ended: the stop reason and any pending SIGKILL are cleared. False,
    /// and nothing changed, when the child was already signalled.
    pub fn rearm(&self, deadline: Instant) -> bool {
        let mut state = self.supervisor.state.lock();
        let Some(entry) = state.entries.get_mut(&self.id) else {
            return false;
        };
        if entry.signalled {
            return false;
        }
        entry.reason = None;
        entry.kill_at = None;
        entry.deadline = deadline;
        let sooner = state.sleeping_until.is_none_or(|t| deadline < t);
        drop(state);
        if sooner {
            self.supervisor.wake.notify_one();
        }
        true
    }

    /// SIGKILL to the group now.
    pub fn kill_now(&self) {
        let mut state = self.supervisor.state.lock();
        if let Some(entry) = state.entries.get_mut(&self.id) {
            entry.reason.get_or_insert(StopReason::Shutdown);
            entry.kill_at = None;
            entry.signal(libc::SIGKILL);
        }
    }

    /// The same as [`Watch::stop`], for another thread (a no-op once the
    /// child is unregistered).
    pub fn stopper(&self) -> impl Fn(StopReason) + Send + 'static {
        let (supervisor, id) = (self.supervisor.clone(), self.id);
        move |reason| supervisor.stop_one(id, reason)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // No wake-up: a deadline gone only makes the thread's next wake-up
        // find nothing to do.
        self.supervisor.state.lock().entries.remove(&self.id);
    }
}

impl Supervisor {
    /// Starts the supervisor thread. `grace` is the SIGTERM → SIGKILL gap.
    pub fn start(grace: Duration) -> Arc<Supervisor> {
        let supervisor = Arc::new(Supervisor {
            state: Mutex::new(State {
                entries: HashMap::new(),
                next_id: 0,
                sleeping_until: None,
            }),
            wake: Condvar::new(),
            grace,
            stop: AtomicBool::new(false),
        });
        let watcher = supervisor.clone();
        let spawned = thread::Builder::new()
            .name("supervisor".into())
            .stack_size(128 * 1024)
            .spawn(move || watcher.run());
        if let Err(e) = spawned {
            log::error!("cannot start the supervisor thread: {e}");
        }
        supervisor
    }

    pub fn watch(self: &Arc<Self>, pid: u32, deadline: Instant) -> Watch {
        let mut state = self.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.entries.insert(
            id,
            Entry {
                pgid: pid as i32,
                deadline,
                reason: None,
                kill_at: None,
                interrupter: None,
                signalled: false,
            },
        );
        // Waking the thread costs two context switches per request; it is
        // only needed when this deadline comes before the one it sleeps to.
        let sooner = state.sleeping_until.is_none_or(|t| deadline < t);
        drop(state);
        if sooner {
            self.wake.notify_one();
        }
        Watch {
            id,
            supervisor: self.clone(),
        }
    }

    fn deadline_by(&self, id: u64, at: Instant) {
        let mut state = self.state.lock();
        let Some(entry) = state.entries.get_mut(&id) else {
            return;
        };
        if at >= entry.deadline {
            return;
        }
        entry.deadline = at;
        let sooner = state.sleeping_until.is_none_or(|t| at < t);
        drop(state);
        if sooner {
            self.wake.notify_one();
        }
    }

    pub fn live(&self) -> usize {
        self.state.lock().entries.len()
    }

    /// SIGTERM to every child (the drain); SIGKILL follows after the grace.
    pub fn stop_all(&self, reason: StopReason) {
        let mut state = self.state.lock();
        let now = Instant::now();
        for entry in state.entries.values_mut() {
            if !entry.signalled {
                entry.reason.get_or_insert(reason);
                entry.kill_at = Some(now + self.grace);
                entry.signal(libc::SIGTERM);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// SIGKILL to every child now.
    pub fn kill_all(&self) {
        let mut state = self.state.lock();
        for entry in state.entries.values_mut() {
            entry.reason.get_or_insert(StopReason::Shutdown);
            entry.kill_at = None;
            entry.signal(libc::SIGKILL);
        }
    }

    /// Ends the supervisor thread (server shutdown).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn stop_one(&self, id: u64, reason: StopReason) {
        let mut state = self.state.lock();
        if let Some(entry) = state.entries.get_mut(&id) {
            if !entry.signalled {
                entry.reason.get_or_insert(reason);
                entry.kill_at = Some(Instant::now() + self.grace);
                entry.signal(libc::SIGTERM);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    fn interrupt_one(&self, id: u64, reason: StopReason) {
        let mut state = self.state.lock();
        if let Some(entry) = state.entries.get_mut(&id) {
            if entry.reason.is_none() {
                entry.end_turn(reason, Instant::now(), self.grace);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut state = self.state.lock();
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            for entry in state.entries.values_mut() {
                if entry.reason.is_none() && entry.deadline <= now {
                    entry.end_turn(StopReason::Timeout, now, self.grace);
                }
                if let Some(kill_at) = entry.kill_at {
                    if kill_at <= now {
                        entry.signal(libc::SIGKILL);
                        entry.kill_at = None;
                    }
                }
                let due = entry
                    .kill_at
                    .or(entry.reason.is_none().then_some(entry.deadline));
                if let Some(due) = due {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
            state.sleeping_until = next;
            match next {
                Some(at) => {
                    self.wake.wait_until(&mut state, at);
                }
                None => self.wake.wait(&mut state),
            }
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals that process group; the
    // group belongs to a child we spawned and have not reaped yet.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc != 0 {
        log::debug!("signal {signal} to process group {pgid} failed");
    }
}

/// Default SIGTERM → SIGKILL gap.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Command;

    /// A `sleep 30` in a group of its own, watched with a far deadline.
    fn watched_sleep(supervisor: &Arc<Supervisor>) -> (std::process::Child, Watch) {
        let child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let watch = supervisor.watch(child.id(), Instant::now() + Duration::from_secs(300));
        (child, watch)
    }

    #[test]
    fn a_deadline_brought_forward_stops_the_child_then() {
        let supervisor = Supervisor::start(Duration::from_secs(5));
        let (mut child, watch) = watched_sleep(&supervisor);
        watch.deadline_by(Instant::now() + Duration::from_millis(50));
        // Never pushed back again.
        watch.deadline_by(Instant::now() + Duration::from_secs(600));
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert_eq!(watch.reason(), Some(StopReason::Timeout));
        drop(watch);
        supervisor.shutdown();
    }

    #[test]
    fn a_child_with_an_interrupter_is_asked_first_and_killed_after_the_grace() {
        use std::sync::atomic::AtomicUsize;
        let supervisor = Supervisor::start(Duration::from_millis(300));
        let (mut child, watch) = watched_sleep(&supervisor);
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        watch.set_interrupter(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            true
        }));
        // A turn that ends in time: the entry is re-armed, nothing is sent.
        assert!(watch.rearm(Instant::now() + Duration::from_secs(300)));
        let started = Instant::now();
        watch.deadline_by(Instant::now() + Duration::from_millis(50));
        // `sleep` ignores the interrupt, so the SIGKILL after the grace ends it.
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(watch.reason(), Some(StopReason::Timeout));
        assert!(
            !watch.rearm(Instant::now() + Duration::from_secs(300)),
            "killed: not reusable"
        );
        drop(watch);
        supervisor.shutdown();
    }
}
