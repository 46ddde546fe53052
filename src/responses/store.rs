//! The responses this server gave, kept so that `previous_response_id`
//! can name them and `GET /v1/responses/{id}` can return them: each with
//! its owner, its session, the response before it, the chat messages its
//! request added and the answer as a chat message. Walking the chain of
//! `previous` gives a conversation's whole history, which is how a fork
//! (a reply to an older response) starts its own session.
//!
//! Kept in memory, for no longer than a session can live, and within a
//! count and a byte budget (oldest first out); and, when the server runs,
//! on disk with its session (see `saved`), read back at start. A response
//! whose session has ended is gone too, whatever this table still holds.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::saved;

const MAX_RESPONSES: usize = 10_000;
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A longer chain than chat requests allow messages is not replayed.
const MAX_CHAIN: usize = 200;

/// One response as kept.
pub struct Stored {
    /// The owner's fingerprint (see `SessionStore::owner_fingerprint`).
    pub owner: Option<String>,
    pub session: String,
    /// The response this one replied to.
    pub previous: Option<String>,
    /// The chat messages this request added (no system message).
    pub input: Vec<Value>,
    /// The answer as a chat assistant message.
    pub output: Value,
    /// The response object, for `GET`.
    pub response: Value,
}

/// What `previous_response_id` leads to.
#[derive(Debug, PartialEq)]
pub enum Previous {
    /// The latest response of its session: the session continues. The
    /// answer (a chat message) comes along for the function results that
    /// may answer its calls.
    Latest { session: String, answer: Value },
    /// An older one: a new session starts from the history up to it.
    Older { history: Vec<Value> },
}

pub struct ResponseStore {
    inner: Mutex<Inner>,
    max_age: Duration,
    /// The sessions' working directories, where each keeps its responses.
    disk: Option<PathBuf>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    /// Ids in the order they were kept (oldest first).
    order: VecDeque<String>,
    bytes: usize,
    /// Each session's latest response.
    latest: HashMap<String, String>,
}

struct Entry {
    stored: Stored,
    kept_at: Instant,
    bytes: usize,
}

impl ResponseStore {
    /// A store in memory only.
    pub fn new(max_age: Duration) -> ResponseStore {
        ResponseStore {
            inner: Mutex::new(Inner::default()),
            max_age,
            disk: None,
        }
    }

    /// A store that keeps each response in its session's directory under
    /// `work_dir` too, with what is there read back.
    pub fn on_disk(max_age: Duration, work_dir: PathBuf) -> ResponseStore {
        let now = saved::now_secs();
        let mut inner = Inner::default();
        let (kept, deleted) = saved::read_all(&work_dir);
        for (id, at, stored) in kept {
            let age = Duration::from_secs(now.saturating_sub(at));
            let Some(kept_at) = Instant::now().checked_sub(age).filter(|_| age <= max_age) else {
                continue;
            };
            inner.insert(&id, stored, kept_at, max_age);
        }
        // Forgotten as they were: a deleted latest leaves its session none.
        for id in deleted {
            inner.forget(&id);
        }
        ResponseStore {
            inner: Mutex::new(inner),
            max_age,
            disk: Some(work_dir),
        }
    }

    /// Keeps response `id`, which is now its session's latest.
    pub fn keep(&self, id: &str, stored: Stored) {
        if let Some(root) = &self.disk {
            saved::append(root, id, saved::now_secs(), &stored);
        }
        self.inner
            .lock()
            .insert(id, stored, Instant::now(), self.max_age);
    }

    /// Where `previous_response_id` leads, for `owner`; `lives` says
    /// whether a session still exists. `None`: not one of `owner`'s, or
    /// gone.
    pub fn previous(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<Previous> {
        let inner = self.inner.lock();
        let entry = inner.visible(id, owner, &lives)?;
        let session = &entry.stored.session;
        if inner.latest.get(session).is_some_and(|latest| latest == id) {
            return Some(Previous::Latest {
                session: session.clone(),
                answer: entry.stored.output.clone(),
            });
        }
        let mut chain = vec![&entry.stored];
        while let Some(previous) = &chain[chain.len() - 1].previous {
            if chain.len() >= MAX_CHAIN {
                return None;
            }
            // A link that is gone would leave a hole in the history.
            chain.push(&inner.by_id.get(previous)?.stored);
        }
        let history = chain
            .iter()
            .rev()
            .flat_map(|s| s.input.iter().chain(std::iter::once(&s.output)))
            .cloned()
            .collect();
        Some(Previous::Older { history })
    }

    /// The response object of `id` for `owner`, while its session lives.
    pub fn get(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<Value> {
        let inner = self.inner.lock();
        Some(inner.visible(id, owner, &lives)?.stored.response.clone())
    }

    /// Forgets `id` for `owner`; false when it was not theirs to forget.
    /// A fork past it is refused from then on (its history has a hole).
    /// The output item `item_id` of a kept response (`msg_<hex>_<n>`,
    /// `fc_<hex>_<n>`: its response is `resp_<hex>`), for an
    /// `item_reference` that names it.
    pub fn item(
        &self,
        item_id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<Value> {
        let (_, rest) = item_id.split_once('_')?;
        let (hex, _) = rest.rsplit_once('_')?;
        let inner = self.inner.lock();
        let entry = inner.visible(&format!("resp_{hex}"), owner, &lives)?;
        let output = entry.stored.response.get("output")?.as_array()?;
        output.iter().find(|item| item["id"] == item_id).cloned()
    }

    pub fn delete(&self, id: &str, owner: Option<&str>, lives: impl Fn(&str) -> bool) -> bool {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.visible(id, owner, &lives) else {
            return false;
        };
        if let Some(root) = &self.disk {
            saved::append_deletion(root, &entry.stored.session, id);
        }
        inner.forget(id);
        true
    }

    pub fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn insert(&mut self, id: &str, stored: Stored, kept_at: Instant, max_age: Duration) {
        let bytes = size_of(&stored);
        self.forget_old(max_age, bytes);
        self.latest.insert(stored.session.clone(), id.to_string());
        self.bytes += bytes;
        self.order.push_back(id.to_string());
        let entry = Entry {
            stored,
            kept_at,
            bytes,
        };
        self.by_id.insert(id.to_string(), entry);
    }

    fn visible(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: &impl Fn(&str) -> bool,
    ) -> Option<&Entry> {
        let entry = self.by_id.get(id)?;
        (entry.stored.owner.as_deref() == owner && lives(&entry.stored.session)).then_some(entry)
    }

    /// Makes room for `incoming` bytes: responses past their age, then the
    /// oldest while over a budget.
    fn forget_old(&mut self, max_age: Duration, incoming: usize) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .by_id
                .get(oldest)
                .is_none_or(|e| e.kept_at.elapsed() > max_age);
            let over = self.order.len() >= MAX_RESPONSES || self.bytes + incoming > MAX_BYTES;
            if !expired && !over {
                break;
            }
            let Some(id) = self.order.pop_front() else {
                break;
            };
            self.forget(&id);
        }
    }

    /// Drops `id` (its place in `order` is skipped when reached).
    fn forget(&mut self, id: &str) {
        if let Some(entry) = self.by_id.remove(id) {
            self.bytes -= entry.bytes;
            let session = &entry.stored.session;
            if self.latest.get(session).is_some_and(|latest| latest == id) {
                self.latest.remove(session);
            }
        }
    }
}

/// Roughly what a response holds in memory: its JSON text.
fn size_of(stored: &Stored) -> usize {
    let json_len = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
    stored.input.iter().map(json_len).sum::<usize>()
        + json_len(&stored.output)
        + json_len(&stored.response)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
