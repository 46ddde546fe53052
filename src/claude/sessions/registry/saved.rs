//! The registry as it is saved in `sessions.json`: built from the records
//! read at start, and written back (outside the lock) when it changed.

use std::collections::{HashMap, HashSet};

use super::conversations::{from_hex, to_hex};
use super::{Entry, Registry, State};
use crate::claude::sessions::disk::{self, Record};
use crate::session_id::SessionId;

impl State {
    /// The state `records` describe (the ones with a valid id), all idle.
    pub(super) fn from_records(records: Vec<Record>) -> State {
        let mut state = State {
            sessions: HashMap::new(),
            generation: 0,
            names: HashSet::new(),
            by_history: HashMap::new(),
        };
        for record in records {
            if !SessionId::is_canonical(&record.id) {
                log::warn!("session registry: skipping an entry with an invalid id");
                continue;
            }
            let entry = Entry {
                owner: record.owner.map(|o| state.name(&o)),
                created_ms: record.created_ms,
                last_used_ms: record.last_used_ms,
                model: state.name(&record.model),
                busy: false,
                exiting: false,
                client: None,
                history: record.history.as_deref().and_then(from_hex),
                cost_usd: record.cost_usd,
                turns: record.turns,
                tokens: record.tokens,
                context: record.context,
                account: record.account.as_deref().map(|a| state.name(a)),
            };
            if let Some(digest) = entry.history {
                state.by_history.insert(digest, record.id.clone());
            }
            state.sessions.insert(record.id, entry);
        }
        state
    }

    /// Every session as a record. Reference counts, not copies: the lock is
    /// held only for this, and a large registry costs no string
    /// allocations to save.
    fn records(&self) -> Vec<Record> {
        self.sessions
            .iter()
            .map(|(id, e)| Record {
                id: id.clone(),
                owner: e.owner.clone(),
                created_ms: e.created_ms,
                last_used_ms: e.last_used_ms,
                model: e.model.clone(),
                history: e.history.as_ref().map(to_hex),
                cost_usd: e.cost_usd,
                turns: e.turns,
                tokens: e.tokens,
                context: e.context,
                account: e.account.clone(),
            })
            .collect()
    }
}

impl Registry {
    /// Writes the registry if it changed since the last write. The file is
    /// written outside the registry lock; the write lock makes writers take
    /// turns, and each one snapshots only once it has its turn, so the last
    /// write always carries the latest state.
    pub(in crate::claude::sessions) fn persist(&self) {
        let mut written = self.written.lock();
        let (generation, records) = {
            let state = self.state.lock();
            if state.generation == *written {
                return;
            }
            let records = state.records();
            (state.generation, records)
        };
        match disk::write_registry(&self.registry_path, records) {
            Ok(()) => *written = generation,
            Err(e) => log::warn!(
                "could not write session registry {}: {e}",
                self.registry_path.display()
            ),
        }
    }
}
