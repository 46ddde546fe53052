//! The session store's tests, by what they cover, and their helpers.

use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

mod expiry;
mod files;
mod history;
mod leases;
mod listing;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const KEY_A: &str = "sk-cca-aaaaaaaaaaaaaaaaaaaaaaaa1111";
const KEY_B: &str = "sk-cca-bbbbbbbbbbbbbbbbbbbbbbbb2222";

/// A state dir and a work dir under the system temp dir, removed on drop.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = std::env::temp_dir().join(format!(
            "cca-sessions-test-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        Dirs { root }
    }
    fn state(&self) -> PathBuf {
        self.root.join("state")
    }
    fn work(&self) -> PathBuf {
        self.root.join("work")
    }
    fn registry(&self) -> PathBuf {
        self.state().join(REGISTRY_FILE)
    }
    fn open(&self) -> SessionStore {
        self.open_with(HOUR, DAY)
    }
    fn open_with(&self, ttl: Duration, max_age: Duration) -> SessionStore {
        match SessionStore::open(&self.state(), &self.work(), ttl, max_age) {
            Ok(store) => store,
            Err(e) => panic!("open failed: {e}"),
        }
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn key(k: &str) -> Secret {
    Secret::new(k)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).map(|m| m.permissions().mode()).unwrap() & 0o777
}

/// Creates a session, frees it again and writes the registry, as the
/// sweeper's next tick would; returns its id.
fn new_session(store: &SessionStore, owner: Option<&Secret>) -> SessionId {
    let lease = store.create(owner, "sonnet", "default").unwrap();
    assert!(lease.created());
    let id = lease.id().clone();
    drop(lease);
    store.flush();
    id
}
