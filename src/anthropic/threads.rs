//! Which session answered a `msg_…` id, so that a request naming it in
//! `thread: {type: "continue", previous_message_id}` (the Anthropic SDK's
//! tool runner sends only its new `tool_result` blocks that way) continues
//! that session, as `previous_response_id` does on the Responses API.
//! In memory, owner-scoped, bounded in count and age; an id whose session
//! has ended is unknown.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const MAX_MESSAGES: usize = 50_000;

pub struct MessageThreads {
    inner: Mutex<Inner>,
    max_age: Duration,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Answered>,
    order: VecDeque<String>,
}

struct Answered {
    owner: Option<String>,
    session: String,
    at: Instant,
}

impl MessageThreads {
    pub fn new(max_age: Duration) -> MessageThreads {
        MessageThreads {
            inner: Mutex::new(Inner::default()),
            max_age,
        }
    }

    /// Notes that message `id` was answered on `session` for `owner`.
    pub fn note(&self, id: &str, owner: Option<String>, session: &str) {
        let mut inner = self.inner.lock();
        while let Some(oldest) = inner.order.front() {
            let old = inner
                .by_id
                .get(oldest)
                .is_none_or(|a| a.at.elapsed() > self.max_age);
            if !old && inner.order.len() < MAX_MESSAGES {
                break;
            }
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_id.remove(&oldest);
            }
        }
        let answered = Answered {
            owner,
            session: session.to_string(),
            at: Instant::now(),
        };
        if inner.by_id.insert(id.to_string(), answered).is_none() {
            inner.order.push_back(id.to_string());
        }
    }

    /// The session that answered `id`, when `owner` may continue it and
    /// it still `lives`.
    pub fn session_of(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let inner = self.inner.lock();
        let answered = inner.by_id.get(id)?;
        let visible = answered.owner.as_deref() == owner
            && answered.at.elapsed() <= self.max_age
            && lives(&answered.session);
        visible.then(|| answered.session.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_its_session_for_its_owner_only() {
        let threads = MessageThreads::new(Duration::from_secs(60));
        threads.note("msg_a", Some("owner-1".into()), "s1");
        let all = |_: &str| true;
        assert_eq!(
            threads.session_of("msg_a", Some("owner-1"), all),
            Some("s1".into())
        );
        assert_eq!(threads.session_of("msg_a", Some("owner-2"), all), None);
        assert_eq!(threads.session_of("msg_a", None, all), None);
        assert_eq!(threads.session_of("msg_b", Some("owner-1"), all), None);
        // A session that has ended takes its messages with it.
        assert_eq!(
            threads.session_of("msg_a", Some("owner-1"), |_| false),
            None
        );
    }

    #[test]
    fn old_entries_leave() {
        let threads = MessageThreads::new(Duration::ZERO);
        threads.note("msg_a", None, "s1");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(threads.session_of("msg_a", None, |_| true), None);
        threads.note("msg_b", None, "s2");
        assert_eq!(threads.inner.lock().by_id.len(), 1);
    }
}
