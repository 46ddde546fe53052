//! The Messages API's answers as threads, so that a request naming one in
//! `thread: {type: "continue", previous_message_id}` goes on where it left
//! off: on the session that gave it, with the conversation up to it (for
//! the history's digest, so that the same conversation resent whole later
//! still finds its session), and with the thread's `system` and `tools`,
//! which a continuing request does not repeat (the Anthropic SDK's tool
//! runner sends its tools once, and after that only its new `tool_result`
//! blocks). In memory, owner-scoped, bounded in count, size and age; an id
//! whose session has ended is unknown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use crate::chains::{Chains, Extra, Kept, Limits};

const LIMITS: Limits = Limits {
    count: 20_000,
    bytes: 64 * 1024 * 1024,
    max_age: Duration::ZERO,
    // A longer chain is cut (its start is gone): the thread is unknown then.
    max_chain: 1_000,
};

/// What a thread was created with and a continuation does not repeat.
#[derive(Debug, Default, PartialEq)]
pub struct Created {
    /// The chat system message.
    pub system: Option<Value>,
    /// The chat tools.
    pub tools: Option<Value>,
}

/// One answer, as kept, with its thread's create-only fields.
pub type Answered = Kept<Arc<Created>>;

impl Extra for Arc<Created> {}

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
    chains: Mutex<Chains<Arc<Created>>>,
}

impl MessageThreads {
    pub fn new(max_age: Duration) -> MessageThreads {
        MessageThreads {
            chains: Mutex::new(Chains::new(Limits { max_age, ..LIMITS })),
        }
    }

    /// Keeps answer `id`.
    pub fn note(&self, id: &str, answered: Answered) {
        self.chains.lock().insert(id, answered, Instant::now());
    }

    /// Where a request continuing answer `id` goes, when `owner` may
    /// continue it and its session still `lives`.
    pub fn continuation(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<Continuation> {
        let chains = self.chains.lock();
        let answered = chains.visible(id, owner, lives)?;
        if !chains.is_latest(id, &answered.session) {
            return Some(Continuation::AlreadyContinued);
        }
        Some(Continuation::Continue {
            session: answered.session.clone(),
            history: chains.history(id)?,
            created: answered.extra.clone(),
        })
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
            extra: Arc::new(Created {
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
        assert_eq!(old.chains.lock().len(), 1);
    }
}
