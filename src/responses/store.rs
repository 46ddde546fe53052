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

use std::path::PathBuf;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::saved;
use crate::chains::{Chains, Kept, Limits};

const MAX_RESPONSES: usize = 10_000;
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A longer chain than chat requests allow messages is not replayed.
const MAX_CHAIN: usize = 200;

/// One response as kept: its owner, its session, the response it replied
/// to, the chat messages its request added, its answer as a chat message,
/// and the response object, for `GET`.
pub type Stored = Kept<Value>;

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
    chains: Mutex<Chains<Value>>,
    /// The sessions' working directories, where each keeps its responses.
    disk: Option<PathBuf>,
}

fn limits(max_age: Duration) -> Limits {
    Limits {
        count: MAX_RESPONSES,
        bytes: MAX_BYTES,
        max_age,
        max_chain: MAX_CHAIN,
    }
}

impl ResponseStore {
    /// A store in memory only.
    pub fn new(max_age: Duration) -> ResponseStore {
        ResponseStore {
            chains: Mutex::new(Chains::new(limits(max_age))),
            disk: None,
        }
    }

    /// A store that keeps each response in its session's directory under
    /// `work_dir` too, with what is there read back.
    pub fn on_disk(max_age: Duration, work_dir: PathBuf) -> ResponseStore {
        let now = saved::now_secs();
        let mut chains = Chains::new(limits(max_age));
        let (kept, deleted) = saved::read_all(&work_dir);
        for (id, at, stored) in kept {
            let age = Duration::from_secs(now.saturating_sub(at));
            let Some(kept_at) = Instant::now().checked_sub(age).filter(|_| age <= max_age) else {
                continue;
            };
            chains.insert(&id, stored, kept_at);
        }
        // Forgotten as they were: a deleted latest leaves its session none.
        for id in deleted {
            chains.forget(&id);
        }
        ResponseStore {
            chains: Mutex::new(chains),
            disk: Some(work_dir),
        }
    }

    /// Keeps response `id`, which is now its session's latest.
    pub fn keep(&self, id: &str, stored: Stored) {
        if let Some(root) = &self.disk {
            saved::append(root, id, saved::now_secs(), &stored);
        }
        self.chains.lock().insert(id, stored, Instant::now());
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
        let chains = self.chains.lock();
        let stored = chains.visible(id, owner, lives)?;
        if chains.is_latest(id, &stored.session) {
            return Some(Previous::Latest {
                session: stored.session.clone(),
                answer: stored.answer.clone(),
            });
        }
        Some(Previous::Older {
            history: chains.history(id)?,
        })
    }

    /// The response object of `id` for `owner`, while its session lives.
    pub fn get(
        &self,
        id: &str,
        owner: Option<&str>,
        lives: impl Fn(&str) -> bool,
    ) -> Option<Value> {
        let chains = self.chains.lock();
        Some(chains.visible(id, owner, lives)?.extra.clone())
    }

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
        let chains = self.chains.lock();
        let stored = chains.visible(&format!("resp_{hex}"), owner, lives)?;
        let output = stored.extra.get("output")?.as_array()?;
        output.iter().find(|item| item["id"] == item_id).cloned()
    }

    /// Forgets `id` for `owner`; false when it was not theirs to forget.
    /// A fork past it is refused from then on (its history has a hole).
    pub fn delete(&self, id: &str, owner: Option<&str>, lives: impl Fn(&str) -> bool) -> bool {
        let mut chains = self.chains.lock();
        let Some(stored) = chains.visible(id, owner, lives) else {
            return false;
        };
        if let Some(root) = &self.disk {
            saved::append_deletion(root, &stored.session, id);
        }
        chains.forget(id);
        true
    }

    pub fn len(&self) -> usize {
        self.chains.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
