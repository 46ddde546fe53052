//! Leasing: who may have a session, and one request at a time.

use super::*;

#[test]
fn created_session_resumes_for_its_owner_only() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let id = new_session(&store, Some(&a));
    assert!(SessionId::is_canonical(id.as_str()), "server ids are v4");

    let lease = store.resume(&id, Some(&a), "sonnet").unwrap();
    assert_eq!(lease.id(), &id);
    assert!(!lease.created());
    assert_eq!(lease.work_dir(), dirs.work().join(id.as_str()));
    drop(lease);

    for (name, owner) in [("other key", Some(key(KEY_B))), ("no key", None)] {
        let err = store.resume(&id, owner.as_ref(), "sonnet").unwrap_err();
        assert_eq!(
            err,
            ApiError::SessionNotFound { id: id.to_string() },
            "{name}"
        );
    }
    // The same answer as for an id nobody ever had.
    let unknown = SessionId::new_random();
    assert_eq!(
        store.resume(&unknown, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionNotFound {
            id: unknown.to_string()
        }
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
        ApiError::SessionNotFound { id: id.to_string() }
    );
}

#[test]
fn upper_case_id_is_accepted_and_normalized() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let id = new_session(&store, Some(&a));
    let lease = store
        .resume(
            &SessionId::parse(&id.as_str().to_uppercase()).unwrap(),
            Some(&a),
            "sonnet",
        )
        .unwrap();
    assert_eq!(lease.id(), &id);
    assert_eq!(lease.work_dir(), dirs.work().join(id.as_str()));
}

#[test]
fn a_busy_session_refuses_a_second_request_until_released() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let first = store.create(Some(&a), "sonnet", "default").unwrap();
    let id = first.id().clone();
    assert_eq!(
        store.resume(&id, Some(&a), "sonnet").unwrap_err(),
        ApiError::SessionBusy
    );
    // Busy is not revealed to another key.
    assert_eq!(
        store.resume(&id, Some(&key(KEY_B)), "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: id.to_string() }
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
    let first = store.create(None, "sonnet", "default").unwrap();
    let id = first.id().clone();
    first.answered();
    let waiter = {
        let (store, id) = (store.clone(), id.clone());
        std::thread::spawn(move || store.resume(&id, None, "sonnet").map(|l| l.id().clone()))
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
fn forget_removes_the_session_and_its_directory() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let lease = store.create(None, "sonnet", "default").unwrap();
    let (id, dir) = (lease.id().clone(), lease.work_dir().to_path_buf());
    lease.forget();
    assert!(store.is_empty());
    assert!(!dir.exists());
    // Not even adoptable from disk with auth off.
    assert_eq!(
        store.resume(&id, None, "sonnet").unwrap_err(),
        ApiError::SessionNotFound { id: id.to_string() }
    );
    assert_eq!(dirs.open().len(), 0, "the removal was persisted");
}

#[test]
fn leases_can_move_between_threads() {
    fn is_send<T: Send>() {}
    fn is_send_sync<T: Send + Sync>() {}
    is_send::<SessionLease>();
    is_send_sync::<SessionStore>();
}
