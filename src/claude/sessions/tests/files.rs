//! What is kept on disk: the registry file, the key, the directories.

use super::*;

#[test]
fn ownership_survives_a_restart() {
    let dirs = Dirs::new();
    let a = key(KEY_A);
    let (owned, open) = {
        let store = dirs.open();
        (new_session(&store, Some(&a)), new_session(&store, None))
    };
    let store = dirs.open();
    assert_eq!(store.len(), 2);
    assert_eq!(
        store
            .resume(&owned, Some(&key(KEY_B)), "sonnet")
            .unwrap_err(),
        ApiError::SessionNotFound {
            id: owned.to_string()
        }
    );
    assert_eq!(
        store.resume(&owned, None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound {
            id: owned.to_string()
        }
    );
    drop(store.resume(&owned, Some(&a), "sonnet").unwrap());
    drop(store.resume(&open, None, "sonnet").unwrap());
}

#[test]
fn registry_file_holds_fingerprints_not_keys() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let id = new_session(&store, Some(&key(KEY_A)));
    let text = fs::read_to_string(dirs.registry()).unwrap();
    assert!(!text.contains(KEY_A));
    assert!(!text.contains("aaaaaaaaaaaa"), "no part of the key either");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &doc["sessions"][0];
    assert_eq!(entry["id"], id.as_str());
    let owner = entry["owner"].as_str().unwrap();
    assert_eq!(owner.len(), 64);
    assert!(owner.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(entry["model"], "sonnet");
    assert!(entry["created_ms"].as_u64().unwrap() > 0);
    assert_eq!(mode(&dirs.registry()), 0o600);
    assert!(!dirs.state().join("sessions.json.tmp").exists());
}

#[test]
fn fingerprints_differ_between_servers() {
    // The same key under another server's secret gives another fingerprint,
    // so a copied registry does not open sessions elsewhere.
    let (one, two) = (Dirs::new(), Dirs::new());
    let a = key(KEY_A);
    let f1 = one.open().registry.fingerprint(Some(&a));
    let f2 = two.open().registry.fingerprint(Some(&a));
    assert!(f1.is_some() && f2.is_some());
    assert_ne!(f1, f2);
    assert_eq!(
        one.open().registry.fingerprint(Some(&a)),
        f1,
        "stable across opens"
    );
}

#[test]
fn directories_and_key_file_are_private() {
    let dirs = Dirs::new();
    let store = dirs.open();
    assert_eq!(mode(&dirs.state()), 0o700);
    assert_eq!(mode(&dirs.work()), 0o700);
    let key_file = dirs.state().join(KEY_FILE);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(fs::read(&key_file).unwrap().len(), 32);
    let lease = store.create(None, "sonnet", "default").unwrap();
    assert!(lease.work_dir().is_dir());
    assert_eq!(mode(lease.work_dir()), 0o700);
}

#[test]
fn a_damaged_key_file_stops_startup_with_a_clear_message() {
    let dirs = Dirs::new();
    drop(dirs.open());
    fs::write(dirs.state().join(KEY_FILE), b"short").unwrap();
    let err = SessionStore::open(&dirs.state(), &dirs.work(), HOUR, DAY).unwrap_err();
    assert!(err.contains("fingerprint.key"), "{err}");
    assert!(err.contains("expected 32 bytes, found 5"), "{err}");
}

#[test]
fn corrupt_registry_is_moved_aside_and_the_store_starts_empty() {
    let dirs = Dirs::new();
    {
        let store = dirs.open();
        new_session(&store, None);
    }
    fs::write(dirs.registry(), b"{\"version\":1,\"sessions\":[{").unwrap();
    let store = dirs.open();
    assert!(store.is_empty());
    assert!(!dirs.registry().exists());
    let aside: Vec<String> = fs::read_dir(dirs.state())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sessions.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = fs::read(dirs.state().join(&aside[0])).unwrap();
    assert_eq!(kept, b"{\"version\":1,\"sessions\":[{");
    // And it works from there on.
    new_session(&store, None);
    assert_eq!(dirs.open().len(), 1);
}

#[test]
fn missing_registry_is_an_empty_store() {
    let dirs = Dirs::new();
    let store = dirs.open();
    assert!(store.is_empty());
    assert!(!dirs.registry().exists(), "nothing written before a change");
}

#[test]
fn entries_with_bad_ids_are_skipped_on_load() {
    let dirs = Dirs::new();
    let good = uuid::Uuid::new_v4().to_string();
    fs::create_dir_all(dirs.state()).unwrap();
    let doc = serde_json::json!({"version": 1, "sessions": [
        {"id": good, "owner": null, "created_ms": 1, "last_used_ms": 1, "model": "sonnet"},
        {"id": "../escape", "owner": null, "created_ms": 1, "last_used_ms": 1, "model": "sonnet"},
    ]});
    fs::write(dirs.registry(), doc.to_string()).unwrap();
    let store = dirs.open();
    assert_eq!(store.len(), 1);
}

#[test]
fn with_auth_off_a_session_left_on_disk_is_adopted() {
    let dirs = Dirs::new();
    let id = new_session(&dirs.open(), None);
    fs::remove_file(dirs.registry()).unwrap();
    let store = dirs.open();
    assert!(store.is_empty());
    let lease = store.resume(&id, None, "sonnet").unwrap();
    assert!(!lease.created());
    assert_eq!(store.len(), 1);
    assert_eq!(
        store.resume(&id, None, "sonnet").unwrap_err(),
        ApiError::SessionBusy
    );
}

#[test]
fn with_auth_on_a_session_left_on_disk_is_not_found() {
    let dirs = Dirs::new();
    let a = key(KEY_A);
    let id = new_session(&dirs.open(), Some(&a));
    fs::remove_file(dirs.registry()).unwrap();
    let store = dirs.open();
    assert_eq!(
        store.resume(&id, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: id.to_string() }
    );
    assert!(store.is_empty());
    assert!(dirs.work().join(id.as_str()).exists(), "left for the sweep");
}

#[test]
fn resume_recreates_a_vanished_work_dir() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let id = new_session(&store, None);
    fs::remove_dir_all(dirs.work()).unwrap();
    let lease = store.resume(&id, None, "sonnet").unwrap();
    assert!(lease.work_dir().is_dir());
    assert_eq!(mode(lease.work_dir()), 0o700);
}
