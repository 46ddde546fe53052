//! Reading a request body: JSON only, within a size limit, a time limit
//! and the server's budget for bodies held in memory at once. A refused
//! body is left unread; tiny_http (patched) then drains or lingers on the
//! connection's own thread, so the client still reads its answer.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::ApiError;

/// How long a body waits for room in the budget before its request is
/// refused (429, retry shortly).
const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// Bytes of request bodies the server holds at once, across all workers:
/// a burst of large bodies waits for room, then is refused, rather than
/// take the host's memory.
pub struct BodyBudget {
    total: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// Room taken in the budget; given back when dropped.
pub struct BodyPermit {
    budget: Arc<BodyBudget>,
    held: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            total,
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Bytes held right now.
    pub fn used(&self) -> usize {
        *self.used.lock()
    }

    /// An empty permit, to grow as a body arrives.
    pub fn permit(self: &Arc<Self>) -> BodyPermit {
        BodyPermit {
            budget: self.clone(),
            held: 0,
        }
    }

    fn take(&self, bytes: usize, until: Instant) -> bool {
        let mut used = self.used.lock();
        loop {
            if used.saturating_add(bytes) <= self.total {
                *used += bytes;
                return true;
            }
            if self.freed.wait_until(&mut used, until).timed_out() {
                return false;
            }
        }
    }
}

impl BodyPermit {
    /// Holds `bytes` in all, waiting a while for the room.
    fn grow_to(&mut self, bytes: usize) -> Result<(), ApiError> {
        if bytes <= self.held {
            return Ok(());
        }
        if !self
            .budget
            .take(bytes - self.held, Instant::now() + BUDGET_WAIT)
        {
            return Err(ApiError::CapacityExceeded {
                retry_after_secs: 1,
            });
        }
        self.held = bytes;
        Ok(())
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        if self.held > 0 {
            *self.budget.used.lock() -= self.held;
            self.budget.freed.notify_all();
        }
    }
}

pub fn check_content_type(value: Option<&str>) -> Result<(), ApiError> {
    let media = value
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Reads at most `limit` bytes within `within`; a declared or actual larger
/// body is a 413 without buffering more than the limit. Each read is also
/// bounded by the socket's per-read limit, so a stalled client is noticed.
/// The body's bytes are held in `permit` as they arrive, so a client that
/// declares a large body and sends it slowly holds only what it has sent;
/// no room in the budget is a 429.
pub fn read_body(
    rq: &mut tiny_http::Request,
    limit: usize,
    within: Duration,
    permit: &mut BodyPermit,
) -> Result<Vec<u8>, ApiError> {
    if rq.body_length().is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge {
            limit,
            setting: "MAX_BODY_BYTES",
        });
    }
    let deadline = Instant::now() + within;
    let mut body = Vec::with_capacity(rq.body_length().unwrap_or(0).min(limit));
    let reader = rq.as_reader();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(body),
            Ok(n) => {
                if body.len() + n > limit {
                    return Err(ApiError::PayloadTooLarge {
                        limit,
                        setting: "MAX_BODY_BYTES",
                    });
                }
                permit.grow_to(body.len() + n)?;
                body.extend_from_slice(&chunk[..n]);
                if Instant::now() > deadline {
                    return Err(ApiError::RequestTimeout);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                return Err(ApiError::RequestTimeout)
            }
            Err(_) => {
                return Err(ApiError::InvalidJson {
                    detail: "the body could not be read".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = BodyBudget::new(100);
        let mut a = budget.permit();
        a.grow_to(60).unwrap();
        a.grow_to(40).unwrap(); // never shrinks
        let mut b = budget.permit();
        let started = Instant::now();
        assert!(matches!(
            b.grow_to(50),
            Err(ApiError::CapacityExceeded { .. })
        ));
        assert!(started.elapsed() >= BUDGET_WAIT);
        b.grow_to(40).unwrap();
        assert_eq!(budget.used(), 100);
        // Room freed while a body waits lets it go on.
        let waiter = {
            let mut c = budget.permit();
            std::thread::spawn(move || c.grow_to(50).map(|_| c))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        let c = waiter.join().unwrap().unwrap();
        assert_eq!(budget.used(), 90);
        drop((b, c));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("text/plain")).is_err());
        assert!(check_content_type(None).is_err());
    }
}
