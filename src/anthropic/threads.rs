//! The Messages API's answers as threads, so that a request naming one in
//! `thread: {type: "continue", previous_message_id}` goes on where it left
//! off: on the session that gave it, with the conversation up to it (for
//! the history's digest, so that the same conversation resent whole later
//! still finds its session), and with the thread's `system` and `tools`,
//! which a continuing request does not repeat (the Anthropic SDK's tool
//! runner sends its tools once, and after that only its new `tool_result`
//! blocks). In memory, owner-scoped, bounded in count, size and age; an id
//! whose session has ended is unknown.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

const MAX_MESSAGES: usize = 20_000;
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A longer chain is cut (its start is gone): the thread is unknown then.
const MAX_CHAIN: usize = 1_000;

/// What a thread was created with and a continuation does not repeat.
#[derive(Debug, Default, PartialEq)]
pub struct Created {
    /// The chat system message.
    pub system: Option<Value>,
    /// The chat tools.
    pub tools: Option<Value>,
}

/// One answer, as kept.
pub struct Answered {
    pub owner: Option<String>,
    pub session: String,
    /// The message this answer's request continued.
    pub previous: Option<String>,
    /// The chat messages that request added (no system message).
    pub added: Vec<Value>,
    /// The answer, as a chat message.
    pub answer: Value,
    pub created: Arc<Created>,
}

/// Where a continuing request goes.
#[derive(Debug, PartialEq)]
pub enum Continuation {
    /// The session, the conversation up to the named answer, and the
    /// thread's create-only fields.
    Continue {
        session: String,
        history: Vec<Value>,
        created: Arc<Created>,
    },
    /// The named answer was continued already: its session has moved on.
    AlreadyContinued,
}

pub struct MessageThreads {
    inner: Mutex<Inner>,
    max_age: Duration,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    order: VecDeque<String>,
    /// Each session's latest answer.
    latest: HashMap<String, String>,
    bytes: usize,
}

struct Entry {
    answered: Answered,
    at: Instant,
    bytes: usize,
}

impl MessageThreads {
    pub fn new(max_age: Duration) -> MessageThreads {
        MessageThreads {
            inner: Mutex::new(Inner::default()),
            max_age,
        }
    }

    /// Keeps answer `id`.
    pub fn note(&self, id: &str, answered: Answered) {
        let json_len = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
        let bytes = answered.added.iter().map(json_len).sum::<usize>() + json_len(&answered.answer);
        let mut inner = self.inner.lock();
        inner.forget_old(self.max_age, bytes);
        inner
            .latest
            .insert(answered.session.clone(), id.to_string());
        inner.bytes += bytes;
        inner.order.push_back(id.to_string());
        let entry = Entry {
            answered,
            at: Instant::now(),
            bytes,
        };
        inner.by_id.insert(id.to_string(), entry);
    }

    /// Where a request continuing answer `id` goes, when `owner` may
    /// continue it and its session still `lives`.
    pub fn continuation(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<Continuation> {
        let inner = self.inner.lock();
        let entry = inner.by_id.get(id)?;
        let answered = &entry.answered;
        let visible = answered.owner.as_deref() == owner
            && entry.at.elapsed() <= self.max_age
            && lives(&answered.session);
        if !visible {
            return None;
        }
        if inner.latest.get(&answered.session).map(String::as_str) != Some(id) {
            return Some(Continuation::AlreadyContinued);
        }
        let mut chain = vec![answered];
        while let Some(previous) = &chain[chain.len() - 1].previous {
            if chain.len() >= MAX_CHAIN {
                return None;
            }
            chain.push(&inner.by_id.get(previous)?.answered);
        }
        let history = chain
            .iter()
            .rev()
            .flat_map(|a| a.added.iter().chain(std::iter::once(&a.answer)))
            .cloned()
            .collect();
        Some(Continuation::Continue {
            session: answered.session.clone(),
            history,
            created: answered.created.clone(),
        })
    }
}

impl Inner {
    fn forget_old(&mut self, max_age: Duration, incoming: usize) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .by_id
                .get(oldest)
                .is_none_or(|e| e.at.elapsed() > max_age);
            let over = self.order.len() >= MAX_MESSAGES || self.bytes + incoming > MAX_BYTES;
            if !expired && !over {
                break;
            }
            let Some(id) = self.order.pop_front() else {
                break;
            };
            if let Some(entry) = self.by_id.remove(&id) {
                self.bytes -= entry.bytes;
                let session = &entry.answered.session;
                if self.latest.get(session) == Some(&id) {
                    self.latest.remove(session);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answered(owner: &str, session: &str, previous: Option<&str>, n: u32) -> Answered {
        Answered {
            owner: Some(owner.into()),
            session: session.into(),
            previous: previous.map(String::from),
            added: vec![json!({"role": "user", "content": format!("q{n}")})],
            answer: json!({"role": "assistant", "content": format!("a{n}")}),
            created: Arc::new(Created {
                system: None,
                tools: Some(json!([{"type": "function", "function": {"name": "f"}}])),
            }),
        }
    }

    #[test]
    fn a_thread_goes_on_from_its_latest_answer_with_its_history() {
        let threads = MessageThreads::new(Duration::from_secs(60));
        threads.note("msg_1", answered("o1", "s1", None, 1));
        threads.note("msg_2", answered("o1", "s1", Some("msg_1"), 2));
        let all = |_: &str| true;
        let Some(Continuation::Continue {
            session,
            history,
            created,
        }) = threads.continuation("msg_2", Some("o1"), all)
        else {
            panic!("a continuation");
        };
        assert_eq!(session, "s1");
        let texts: Vec<&str> = history
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["q1", "a1", "q2", "a2"]);
        assert!(created.tools.is_some());
        // The older answer was continued already.
        assert_eq!(
            threads.continuation("msg_1", Some("o1"), all),
            Some(Continuation::AlreadyContinued)
        );
    }

    #[test]
    fn another_owner_an_ended_session_or_an_old_answer_see_nothing() {
        let threads = MessageThreads::new(Duration::from_secs(60));
        threads.note("msg_1", answered("o1", "s1", None, 1));
        assert_eq!(threads.continuation("msg_1", Some("o2"), |_| true), None);
        assert_eq!(threads.continuation("msg_1", None, |_| true), None);
        assert_eq!(threads.continuation("msg_1", Some("o1"), |_| false), None);
        assert_eq!(threads.continuation("msg_x", Some("o1"), |_| true), None);
        let old = MessageThreads::new(Duration::ZERO);
        old.note("msg_1", answered("o1", "s1", None, 1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(old.continuation("msg_1", Some("o1"), |_| true), None);
        old.note("msg_2", answered("o1", "s2", None, 2));
        assert_eq!(old.inner.lock().by_id.len(), 1);
    }
}
