//! What the session endpoints use: an owner's sessions, their turn counts
//! (kept across a restart, 0 from an older registry file), and deletion
//! (refused while busy, waited for while the CLI only exits).

use super::*;
use crate::turn_event::{ContextUse, TokenCounts};

#[test]
fn each_owner_lists_and_reads_only_its_own_sessions() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let (a, b) = (key(KEY_A), key(KEY_B));
    let mine = new_session(&store, Some(&a));
    let theirs = new_session(&store, Some(&b));
    let listed: Vec<SessionId> = store.list(Some(&a)).into_iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![mine.clone()]);
    let info = store.info(&mine, Some(&a)).unwrap();
    assert_eq!(
        (info.model.as_str(), info.turns, info.busy),
        ("sonnet", 0, false)
    );
    assert!(info.created_ms > 0 && info.last_used_ms >= info.created_ms);
    assert_eq!(
        store.info(&theirs, Some(&a)).unwrap_err(),
        ApiError::SessionNotFound {
            id: theirs.to_string()
        }
    );
    assert!(
        store.list(None).is_empty(),
        "auth off sees no key's sessions"
    );
}

#[test]
fn turns_and_their_tokens_are_counted_and_kept_across_a_restart() {
    let dirs = Dirs::new();
    let turn = TokenCounts {
        input: 3,
        output: 5,
        cache_read: 100,
        cache_creation: 7,
        reasoning: 0,
    };
    let id = {
        let store = dirs.open();
        let lease = store.create(None, "sonnet", "default").unwrap();
        let first = ContextUse {
            tokens: 500,
            compactions: 0,
        };
        lease.count_turn(Some(&turn), first);
        assert!(store.info(lease.id(), None).unwrap().busy);
        let id = lease.id().clone();
        drop(lease);
        let lease = store.resume(&id, None, "sonnet").unwrap();
        // A turn that compacted the conversation: the context shrank.
        let compacted = ContextUse {
            tokens: 300,
            compactions: 1,
        };
        lease.count_turn(Some(&turn), compacted);
        drop(lease);
        store.flush();
        id
    };
    let info = dirs.open().info(&id, None).unwrap();
    assert_eq!((info.turns, info.busy), (2, false));
    let both = TokenCounts {
        input: 6,
        output: 10,
        cache_read: 200,
        cache_creation: 14,
        reasoning: 0,
    };
    assert_eq!(info.tokens, both);
    let context = ContextUse {
        tokens: 300,
        compactions: 1,
    };
    assert_eq!(info.context, context);
}

#[test]
fn a_registry_file_without_turns_loads_them_as_zero() {
    let dirs = Dirs::new();
    let id = uuid::Uuid::new_v4().to_string();
    fs::create_dir_all(dirs.state()).unwrap();
    let now = unix_ms_now();
    let doc = serde_json::json!({"version": 1, "sessions": [
        {"id": id, "owner": null, "created_ms": now, "last_used_ms": now, "model": "opus"},
    ]});
    fs::write(dirs.registry(), doc.to_string()).unwrap();
    let store = dirs.open();
    let info = store.info(&SessionId::parse(&id).unwrap(), None).unwrap();
    assert_eq!((info.turns, info.model.as_str()), (0, "opus"));
}

#[test]
fn delete_removes_an_idle_session_and_its_directory_for_its_owner_only() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let (a, b) = (key(KEY_A), key(KEY_B));
    let id = new_session(&store, Some(&a));
    let not_found = ApiError::SessionNotFound { id: id.to_string() };
    let mut closed = false;
    assert_eq!(
        store.delete(&id, Some(&b), || closed = true).unwrap_err(),
        not_found
    );
    assert!(!closed, "nothing closed for another key");
    assert!(dirs.work().join(id.as_str()).exists());
    store.delete(&id, Some(&a), || closed = true).unwrap();
    assert!(closed);
    assert!(!dirs.work().join(id.as_str()).exists());
    assert_eq!(store.delete(&id, Some(&a), || {}).unwrap_err(), not_found);
    assert_eq!(
        store.resume(&id, Some(&a), "sonnet").unwrap_err(),
        not_found
    );
    assert_eq!(dirs.open().len(), 0, "the removal was persisted");
}

#[test]
fn delete_refuses_a_busy_session_and_waits_for_one_that_only_exits() {
    let dirs = Dirs::new();
    let store = Arc::new(dirs.open());
    let lease = store.create(None, "sonnet", "default").unwrap();
    let id = lease.id().clone();
    assert_eq!(
        store.delete(&id, None, || {}).unwrap_err(),
        ApiError::SessionInUse
    );
    assert_eq!(store.len(), 1);
    lease.answered();
    assert!(!store.info(&id, None).unwrap().busy, "answered is not busy");
    let deleter = {
        let (store, id) = (store.clone(), id.clone());
        std::thread::spawn(move || store.delete(&id, None, || {}))
    };
    let parked = Instant::now() + Duration::from_secs(5);
    while store.waiting_for_exit() == 0 && Instant::now() < parked {
        std::thread::yield_now();
    }
    assert_eq!(store.waiting_for_exit(), 1);
    assert!(!deleter.is_finished());
    drop(lease);
    assert_eq!(deleter.join().unwrap(), Ok(()));
    assert!(store.is_empty());
    assert!(!dirs.work().join(id.as_str()).exists());
}

fn unix_ms_now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(millis).unwrap_or(0)
}
