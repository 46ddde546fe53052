//! Expiry: the TTL, the maximum age, the sweep and its thread.

use super::*;

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
    assert!(!dirs.work().join(idle.as_str()).exists());
    assert!(dirs.work().join(used.as_str()).exists());
    assert_eq!(
        store.resume(&idle, None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound {
            id: idle.to_string()
        }
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
    assert!(!dirs.work().join(id.as_str()).exists());
}

#[test]
fn sweep_leaves_a_session_with_a_request_running() {
    let dirs = Dirs::new();
    let store = dirs.open_with(Duration::from_secs(60), DAY);
    let lease = store.create(None, "sonnet", "default").unwrap();
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
        ApiError::SessionNotFound { id: id.to_string() }
    );
    assert!(store.is_empty());
    assert!(!dirs.work().join(id.as_str()).exists());
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
