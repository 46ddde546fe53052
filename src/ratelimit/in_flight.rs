//! Concurrency per server key: how many requests each key has in flight,
//! and the [`KeySlot`] guard that gives a slot back when dropped.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// Keys are tracked by digest, so the table never holds a secret.
pub(super) fn key_id(key: &Secret) -> [u8; 32] {
    Sha256::digest(key.expose().as_bytes()).into()
}

/// Concurrency counts per key digest; a key with nothing in flight has no
/// entry, so the table is as large as the set of keys in use.
pub(super) struct InFlight {
    pub(super) limit: u32,
    pub(super) counts: Mutex<HashMap<[u8; 32], u32>>,
}

/// One request's hold on a key's concurrency slot. Dropping it frees the
/// slot, so the slot comes back however the request ends, a panic included.
pub struct KeySlot {
    pub(super) owner: Arc<InFlight>,
    pub(super) key: [u8; 32],
}

/// Takes key slots for work that outlives its request (a CLI waiting for
/// the results of the tool calls it asked for).
#[derive(Clone)]
pub struct KeyHolder(pub(super) Arc<InFlight>);

impl KeyHolder {
    /// One more slot of `key`, past the limit if need be: the work was
    /// admitted already, and the key may start nothing new meanwhile.
    /// `None` when the limit is off.
    pub fn hold(&self, key: &Secret) -> Option<KeySlot> {
        if self.0.limit == 0 {
            return None;
        }
        let id = key_id(key);
        *self.0.counts.lock().entry(id).or_insert(0) += 1;
        Some(KeySlot {
            owner: self.0.clone(),
            key: id,
        })
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}
