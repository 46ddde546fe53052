use super::*;
use std::os::unix::fs::PermissionsExt;

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

/// Creates a session and frees it again; returns its id.
/// Creates a session and writes the registry, as the sweeper's next tick
/// would.
fn new_session(store: &SessionStore, owner: Option<&Secret>) -> String {
    let lease = store.create(owner, "sonnet").unwrap();
    assert!(lease.created());
    let id = lease.id().to_string();
    drop(lease);
    store.flush();
    id
}

#[test]
fn created_session_resumes_for_its_owner_only() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let id = new_session(&store, Some(&a));
    assert_eq!(parse_session_id(&id).unwrap(), id, "server ids are v4");

    let lease = store.resume(&id, Some(&a), "sonnet").unwrap();
    assert_eq!(lease.id(), id);
    assert!(!lease.created());
    assert_eq!(lease.work_dir(), dirs.work().join(&id));
    drop(lease);

    for (name, owner) in [("other key", Some(key(KEY_B))), ("no key", None)] {
        let err = store.resume(&id, owner.as_ref(), "sonnet").unwrap_err();
        assert_eq!(err, ApiError::SessionNotFound { id: id.clone() }, "{name}");
    }
    // The same answer as for an id nobody ever had.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        store.resume(&unknown, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: unknown }
    );
}

#[test]
fn ownerless_session_is_anyones_while_auth_is_off() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let id = new_session(&store, None);
    drop(store.resume(&id, None, "sonnet").unwrap());
    drop(store.resume(&id, None, "opus").unwrap());
    // Turning auth on does not hand it to the first key that asks.
    assert_eq!(
        store.resume(&id, Some(&key(KEY_A)), "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id }
    );
}

#[test]
fn malformed_ids_are_rejected_before_any_lookup() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let v4 = uuid::Uuid::new_v4().hyphenated().to_string();
    let bad = [
        "".to_string(),
        "not-a-uuid".to_string(),
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8".to_string(), // v1
        "00000000-0000-0000-0000-000000000000".to_string(), // nil
        "3f2a7c1e-5b4d-4e8a-cc3b-2d1e0f9a8b7c".to_string(), // v4 nibble, wrong variant
        v4.replace('-', ""),                                // simple form
        format!("{{{v4}}}"),                                // braced
        format!("urn:uuid:{v4}"),
        format!("{v4} "),
        "../../../../etc/passwd-aaaaaaaaaaaaaaaaaaaaaa".to_string(),
        "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7g".to_string(),
    ];
    for raw in bad {
        assert_eq!(
            store.resume(&raw, Some(&key(KEY_A)), "sonnet").unwrap_err(),
            ApiError::InvalidSessionId,
            "{raw:?}"
        );
    }
}

#[test]
fn upper_case_id_is_accepted_and_normalized() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let id = new_session(&store, Some(&a));
    let lease = store
        .resume(&id.to_uppercase(), Some(&a), "sonnet")
        .unwrap();
    assert_eq!(lease.id(), id);
    assert_eq!(lease.work_dir(), dirs.work().join(&id));
}

#[test]
fn a_busy_session_refuses_a_second_request_until_released() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let first = store.create(Some(&a), "sonnet").unwrap();
    let id = first.id().to_string();
    assert_eq!(
        store.resume(&id, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionBusy
    );
    // Busy is not revealed to another key.
    assert_eq!(
        store.resume(&id, Some(&key(KEY_B)), "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: id.clone() }
    );
    assert_eq!(store.busy_count(), 1);
    drop(first);
    assert_eq!(store.busy_count(), 0);
    let second = store.resume(&id, Some(&a), "sonnet").unwrap();
    assert_eq!(
        store.resume(&id, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionBusy
    );
    drop(second);
    drop(store.resume(&id, Some(&a), "sonnet").unwrap());
}

#[test]
fn a_resume_waits_for_a_session_whose_cli_has_answered() {
    let dirs = Dirs::new();
    let store = Arc::new(dirs.open());
    let first = store.create(None, "sonnet").unwrap();
    let id = first.id().to_string();
    first.answered();
    let waiter = {
        let (store, id) = (store.clone(), id.clone());
        std::thread::spawn(move || {
            store
                .resume(&id, None, "sonnet")
                .map(|l| l.id().to_string())
        })
    };
    // Parked on the exiting session, not refused.
    let parked = Instant::now() + Duration::from_secs(5);
    while store.waiting_for_exit() == 0 && Instant::now() < parked {
        std::thread::yield_now();
    }
    assert_eq!(store.waiting_for_exit(), 1);
    assert!(!waiter.is_finished());
    drop(first);
    assert_eq!(waiter.join().unwrap(), Ok(id.clone()));
    assert_eq!(store.waiting_for_exit(), 0);
    assert_eq!(store.busy_count(), 0);
}

#[test]
fn only_one_of_many_concurrent_resumes_wins() {
    let dirs = Dirs::new();
    let store = Arc::new(dirs.open());
    let id = new_session(&store, None);
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let (tx, rx) = crossbeam_channel::unbounded();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, id, barrier, tx) = (store.clone(), id.clone(), barrier.clone(), tx.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let outcome = store.resume(&id, None, "sonnet");
                // Hold a winning lease until every thread has answered.
                tx.send(outcome.is_ok()).unwrap();
                barrier.wait();
                drop(outcome);
            })
        })
        .collect();
    drop(tx);
    let wins: Vec<bool> = (0..8).map(|_| rx.recv().unwrap()).collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    assert_eq!(store.busy_count(), 0);
}

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
        ApiError::SessionNotFound { id: owned.clone() }
    );
    assert_eq!(
        store.resume(&owned, None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: owned.clone() }
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
    let f1 = one.open().inner.fingerprint(Some(&a));
    let f2 = two.open().inner.fingerprint(Some(&a));
    assert!(f1.is_some() && f2.is_some());
    assert_ne!(f1, f2);
    assert_eq!(
        one.open().inner.fingerprint(Some(&a)),
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
    let lease = store.create(None, "sonnet").unwrap();
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
fn sweep_drops_idle_sessions_after_the_ttl() {
    let dirs = Dirs::new();
    let store = dirs.open_with(Duration::from_secs(60), DAY);
    let idle = new_session(&store, None);
    store.advance_clock(Duration::from_secs(50));
    let used = new_session(&store, None);
    assert_eq!(store.sweep(), 0);
    store.advance_clock(Duration::from_secs(11));
    assert_eq!(store.sweep(), 1);
    assert_eq!(dirs.open().len(), 1, "the sweep was persisted");
    assert!(!dirs.work().join(&idle).exists());
    assert!(dirs.work().join(&used).exists());
    assert_eq!(
        store.resume(&idle, None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: idle }
    );
    drop(store.resume(&used, None, "sonnet").unwrap());
}

#[test]
fn sweep_drops_sessions_past_the_maximum_age_however_often_used() {
    let dirs = Dirs::new();
    let store = dirs.open_with(Duration::from_secs(60), Duration::from_secs(100));
    let id = new_session(&store, None);
    for _ in 0..3 {
        store.advance_clock(Duration::from_secs(30));
        drop(store.resume(&id, None, "sonnet").unwrap());
    }
    assert_eq!(store.sweep(), 0);
    store.advance_clock(Duration::from_secs(11));
    assert_eq!(store.sweep(), 1);
    assert!(store.is_empty());
    assert!(!dirs.work().join(&id).exists());
}

#[test]
fn sweep_leaves_a_session_with_a_request_running() {
    let dirs = Dirs::new();
    let store = dirs.open_with(Duration::from_secs(60), DAY);
    let lease = store.create(None, "sonnet").unwrap();
    store.advance_clock(Duration::from_secs(61));
    assert_eq!(store.sweep(), 0);
    assert!(lease.work_dir().exists());
    drop(lease);
    store.advance_clock(Duration::from_secs(61));
    assert_eq!(store.sweep(), 1);
}

#[test]
fn an_expired_session_is_not_found_even_before_the_sweep() {
    let dirs = Dirs::new();
    let store = dirs.open_with(Duration::from_secs(60), DAY);
    let a = key(KEY_A);
    let id = new_session(&store, Some(&a));
    store.advance_clock(Duration::from_secs(61));
    assert_eq!(
        store.resume(&id, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: id.clone() }
    );
    assert!(store.is_empty());
    assert!(!dirs.work().join(&id).exists());
}

#[test]
fn forget_removes_the_session_and_its_directory() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let lease = store.create(None, "sonnet").unwrap();
    let (id, dir) = (lease.id().to_string(), lease.work_dir().to_path_buf());
    lease.forget();
    assert!(store.is_empty());
    assert!(!dir.exists());
    // Not even adoptable from disk with auth off.
    assert_eq!(
        store.resume(&id, None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id }
    );
    assert_eq!(dirs.open().len(), 0, "the removal was persisted");
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
        ApiError::SessionNotFound { id: id.clone() }
    );
    assert!(store.is_empty());
    assert!(dirs.work().join(&id).exists(), "left for the sweep");
}

#[test]
fn sweep_removes_unknown_session_dirs_past_the_maximum_age_only() {
    let dirs = Dirs::new();
    let store = dirs.open_with(HOUR, Duration::from_secs(100));
    let orphan = dirs.work().join(uuid::Uuid::new_v4().to_string());
    let other = dirs.work().join("operator-notes");
    fs::create_dir_all(&orphan).unwrap();
    fs::create_dir_all(&other).unwrap();
    assert_eq!(store.sweep(), 0);
    store.advance_clock(Duration::from_secs(101));
    assert_eq!(store.sweep(), 1);
    assert!(!orphan.exists());
    assert!(
        other.exists(),
        "names that are not session ids are left alone"
    );
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

#[test]
fn the_sweeper_thread_sweeps_and_stops_promptly() {
    let dirs = Dirs::new();
    let store = Arc::new(dirs.open_with(Duration::from_secs(60), DAY));
    new_session(&store, None);
    store.advance_clock(Duration::from_secs(61));
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn_sweeper(store.clone(), Duration::from_millis(20), stop.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.is_empty() {
        assert!(Instant::now() < deadline, "the sweeper never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A long interval must not delay shutdown.
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let slow_stop = Arc::new(AtomicBool::new(false));
    let slow = spawn_sweeper(store, HOUR, slow_stop.clone()).unwrap();
    let asked = Instant::now();
    slow_stop.store(true, Ordering::Relaxed);
    slow.join().unwrap();
    assert!(asked.elapsed() < Duration::from_millis(500));
}

#[test]
fn leases_can_move_between_threads() {
    fn is_send<T: Send>() {}
    fn is_send_sync<T: Send + Sync>() {}
    is_send::<SessionLease>();
    is_send_sync::<SessionStore>();
}

/// Session-named directories in the work dir.
fn session_dirs(dirs: &Dirs) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dirs.work())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| parse_session_id(name).as_deref() == Ok(name.as_str()))
        .collect();
    names.sort();
    names
}

/// Waits until the maker has `n` directories beyond the sessions' own.
fn wait_for_spares(dirs: &Dirs, store: &SessionStore, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = session_dirs(dirs);
        if found.len() >= store.len() + n || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn new_sessions_run_in_directories_made_ahead_and_unused_ones_go_at_close() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let first = store.create(None, "sonnet").unwrap();
    let before = wait_for_spares(&dirs, &store, 2);
    assert!(before.len() >= 3, "no directories made ahead: {before:?}");
    let second = store.create(None, "sonnet").unwrap();
    assert!(
        before.contains(&second.id().to_string()),
        "the second session did not get a directory made ahead"
    );
    assert_eq!(mode(second.work_dir()), 0o700);
    let (first, second) = (first.id().to_string(), second.id().to_string());
    store.close();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(session_dirs(&dirs), expected, "unused spares left behind");
}

#[test]
fn a_directory_made_ahead_is_neither_swept_nor_adopted() {
    let dirs = Dirs::new();
    let store = dirs.open_with(HOUR, Duration::from_secs(100));
    let running = store.create(None, "sonnet").unwrap();
    let spares: Vec<String> = wait_for_spares(&dirs, &store, 1)
        .into_iter()
        .filter(|id| id != running.id())
        .collect();
    assert!(!spares.is_empty());
    store.advance_clock(Duration::from_secs(101));
    assert_eq!(store.sweep(), 0);
    for id in &spares {
        assert!(dirs.work().join(id).is_dir(), "a spare was swept");
    }
    assert_eq!(
        store.resume(&spares[0], None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound {
            id: spares[0].clone()
        }
    );
}
