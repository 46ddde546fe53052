//! The bound on live `claude` children: at most `max` slots, a FIFO queue
//! of waiters with a deadline, and a guard that gives the slot back on every
//! path out of a request (return, error, panic unwinding).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capacity {
    pub active: usize,
    pub max: usize,
    pub queued: usize,
}

struct State {
    active: usize,
    queue: VecDeque<u64>,
}

pub struct ProcessSlots {
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
    next_ticket: AtomicU64,
}

/// Holds one slot; dropping it frees the slot and wakes the next waiter.
/// How often a queued request looks for something to give way.
pub const RELIEVE_EVERY: Duration = Duration::from_millis(100);

pub struct Slot {
    pool: Arc<ProcessSlots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock();
        state.active = state.active.saturating_sub(1);
        drop(state);
        self.pool.freed.notify_all();
    }
}

impl ProcessSlots {
    pub fn new(max: usize) -> Arc<ProcessSlots> {
        Arc::new(ProcessSlots {
            max,
            state: Mutex::new(State {
                active: 0,
                queue: VecDeque::new(),
            }),
            freed: Condvar::new(),
            next_ticket: AtomicU64::new(0),
        })
    }

    pub fn capacity(&self) -> Capacity {
        let state = self.state.lock();
        Capacity {
            active: state.active,
            max: self.max,
            queued: state.queue.len(),
        }
    }

    /// Waits up to `wait` for a slot, first come first served. `None` when
    /// the wait ran out.
    pub fn acquire(self: &Arc<Self>, wait: Duration) -> Option<Slot> {
        self.acquire_relieved(wait, || false)
    }

    /// [`ProcessSlots::acquire`], calling `relieve` every
    /// [`RELIEVE_EVERY`] while queued, without the queue's lock and keeping
    /// the place in it: a process that became idle, or a turn that began to
    /// wait for tool results, after the caller last looked can still give
    /// way.
    pub fn acquire_relieved(
        self: &Arc<Self>,
        wait: Duration,
        mut relieve: impl FnMut() -> bool,
    ) -> Option<Slot> {
        let deadline = Instant::now() + wait;
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock();
        if state.queue.is_empty() && state.active < self.max {
            state.active += 1;
            return Some(Slot { pool: self.clone() });
        }
        state.queue.push_back(ticket);
        loop {
            if state.queue.front() == Some(&ticket) && state.active < self.max {
                state.queue.pop_front();
                state.active += 1;
                drop(state);
                // The next in line may also fit (several slots freed at once).
                self.freed.notify_all();
                return Some(Slot { pool: self.clone() });
            }
            let now = Instant::now();
            if now >= deadline {
                state.queue.retain(|t| *t != ticket);
                drop(state);
                self.freed.notify_all();
                return None;
            }
            let timed_out = self
                .freed
                .wait_until(&mut state, deadline.min(now + RELIEVE_EVERY))
                .timed_out();
            let mine = state.queue.front() == Some(&ticket) && state.active < self.max;
            if timed_out && !mine {
                drop(state);
                relieve();
                state = self.state.lock();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released() {
        let pool = ProcessSlots::new(2);
        let a = pool.acquire(Duration::ZERO).unwrap();
        let _b = pool.acquire(Duration::ZERO).unwrap();
        assert!(pool.acquire(Duration::from_millis(20)).is_none());
        assert_eq!(pool.capacity().active, 2);
        drop(a);
        assert!(pool.acquire(Duration::ZERO).is_some());
        assert_eq!(pool.capacity().queued, 0);
    }

    #[test]
    fn a_queued_request_takes_what_gives_way_while_it_waits() {
        let pool = ProcessSlots::new(1);
        let held = Mutex::new(pool.acquire(Duration::ZERO));
        let looks = std::sync::atomic::AtomicUsize::new(0);
        let started = Instant::now();
        // Nothing gives way at first; the third look frees the slot.
        let slot = pool.acquire_relieved(Duration::from_secs(10), || {
            looks.fetch_add(1, Ordering::Relaxed) >= 2 && held.lock().take().is_some()
        });
        assert!(slot.is_some());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            pool.capacity(),
            Capacity {
                active: 1,
                max: 1,
                queued: 0
            }
        );
    }

    #[test]
    fn waiters_are_served_in_order() {
        let pool = ProcessSlots::new(1);
        let held = pool.acquire(Duration::ZERO).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..3 {
            let (waiter, order) = (pool.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let slot = waiter.acquire(Duration::from_secs(5)).unwrap();
                order.lock().push(i);
                drop(slot);
            }));
            while pool.capacity().queued < i + 1 {
                std::thread::yield_now();
            }
        }
        drop(held);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2]);
    }
}
