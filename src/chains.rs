//! Answers kept as chains, for the APIs that continue a conversation by an
//! answer's id (the Responses API's `previous_response_id`, the Messages
//! API's `thread`): each answer with its owner, its session, the answer its
//! request continued, the chat messages that request added and the answer
//! itself. Following the `previous` links gives a conversation's history;
//! each session's latest answer is where that session stands. Bounded in
//! count, bytes and age, oldest first out. Each store wraps one in a lock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::ApiError;
use crate::session_id::SessionId;

/// The session a request continues when it names an earlier answer kept on
/// `session` (by `param`): that session, unless `X-Claude-Session-ID`
/// names another, which is a contradiction the client must resolve.
pub fn session_of_earlier(
    header: Option<&SessionId>,
    session: &str,
    param: &str,
) -> Result<SessionId, ApiError> {
    let session = SessionId::parse(session)?;
    if header.is_some_and(|header| *header != session) {
        return Err(ApiError::InvalidValue {
            param: param.into(),
            message: format!(
                "'{param}' belongs to another session than the X-Claude-Session-ID \
                 header names; send one of them."
            ),
        });
    }
    Ok(session)
}

/// One kept answer: its owner's key fingerprint, its session, the answer
/// its request continued, the chat messages that request added (no system
/// message), the answer as a chat message, and what the API keeps besides.
pub struct Kept<X> {
    pub owner: Option<String>,
    pub session: String,
    pub previous: Option<String>,
    pub added: Vec<Value>,
    pub answer: Value,
    pub extra: X,
}

/// What an API keeps besides, and roughly what it holds in memory.
pub trait Extra {
    fn bytes(&self) -> usize {
        0
    }
}

impl Extra for Value {
    fn bytes(&self) -> usize {
        json_len(self)
    }
}

impl<X: Extra> Kept<X> {
    /// Roughly what it holds in memory: its JSON text.
    fn bytes(&self) -> usize {
        self.added.iter().map(json_len).sum::<usize>() + json_len(&self.answer) + self.extra.bytes()
    }
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map(|b| b.len()).unwrap_or(0)
}

/// How much a chain store keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub count: usize,
    pub bytes: usize,
    pub max_age: Duration,
    /// A longer history is not rebuilt.
    pub max_chain: usize,
}

pub struct Chains<X> {
    by_id: HashMap<String, Entry<X>>,
    /// Ids in the order they were kept (oldest first).
    order: VecDeque<String>,
    /// Each session's latest answer.
    latest: HashMap<String, String>,
    bytes: usize,
    limits: Limits,
}

struct Entry<X> {
    kept: Kept<X>,
    kept_at: Instant,
    bytes: usize,
}

impl<X: Extra> Chains<X> {
    pub fn new(limits: Limits) -> Chains<X> {
        Chains {
            by_id: HashMap::new(),
            order: VecDeque::new(),
            latest: HashMap::new(),
            bytes: 0,
            limits,
        }
    }

    /// Keeps answer `id` (kept at `kept_at`), now its session's latest.
    pub fn insert(&mut self, id: &str, kept: Kept<X>, kept_at: Instant) {
        let bytes = kept.bytes();
        self.forget_old(bytes);
        self.latest.insert(kept.session.clone(), id.to_string());
        self.bytes += bytes;
        self.order.push_back(id.to_string());
        let entry = Entry {
            kept,
            kept_at,
            bytes,
        };
        self.by_id.insert(id.to_string(), entry);
    }

    /// Answer `id`, when `owner` may see it, it is not too old and its
    /// session `lives`.
    pub fn visible(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<&Kept<X>> {
        let entry = self.by_id.get(id)?;
        let kept = &entry.kept;
        let visible = kept.owner.as_deref() == owner
            && entry.kept_at.elapsed() <= self.limits.max_age
            && lives(&kept.session);
        visible.then_some(kept)
    }

    /// True when `id` is where its session stands.
    pub fn is_latest(&self, id: &str, session: &str) -> bool {
        self.latest.get(session).is_some_and(|latest| latest == id)
    }

    /// The conversation up to and with answer `id`: what each request of
    /// its chain added, and each answer. `None` when a link is gone (the
    /// history would have a hole) or the chain is too long.
    pub fn history(&self, id: &str) -> Option<Vec<Value>> {
        let mut chain = vec![&self.by_id.get(id)?.kept];
        while let Some(previous) = &chain[chain.len() - 1].previous {
            if chain.len() >= self.limits.max_chain {
                return None;
            }
            chain.push(&self.by_id.get(previous)?.kept);
        }
        let history = chain
            .iter()
            .rev()
            .flat_map(|kept| kept.added.iter().chain(std::iter::once(&kept.answer)))
            .cloned()
            .collect();
        Some(history)
    }

    /// Drops `id` (its place in `order` is skipped when reached); a session
    /// whose latest it was stands nowhere then.
    pub fn forget(&mut self, id: &str) {
        if let Some(entry) = self.by_id.remove(id) {
            self.bytes -= entry.bytes;
            let session = &entry.kept.session;
            if self.is_latest(id, session) {
                self.latest.remove(session);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Makes room for `incoming` bytes: answers past their age, then the
    /// oldest while over a budget.
    fn forget_old(&mut self, incoming: usize) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .by_id
                .get(oldest)
                .is_none_or(|e| e.kept_at.elapsed() > self.limits.max_age);
            let over =
                self.order.len() >= self.limits.count || self.bytes + incoming > self.limits.bytes;
            if !expired && !over {
                break;
            }
            let Some(id) = self.order.pop_front() else {
                break;
            };
            self.forget(&id);
        }
    }
}
