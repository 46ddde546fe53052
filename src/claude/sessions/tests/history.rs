//! The conversations and costs the registry remembers per session.

use super::*;
use crate::claude::request::validate::Role;

fn conversation(store: &SessionStore, owner: Option<&Secret>, texts: &[&str]) -> HistoryDigest {
    let mut hasher = store.history_hasher(owner, "sonnet", Some("be brief"));
    for (i, text) in texts.iter().enumerate() {
        let role = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        hasher.message(role, text);
    }
    hasher.digest()
}

#[test]
fn a_remembered_conversation_leads_to_its_session_once_and_survives_a_restart() {
    let dirs = Dirs::new();
    let a = key(KEY_A);
    let id = {
        let store = dirs.open();
        let lease = store.create(Some(&a), "sonnet", "default").unwrap();
        lease.remember_history(conversation(&store, Some(&a), &["hi", "hello"]));
        let id = lease.id().clone();
        drop(lease);
        store.close();
        id
    };
    let store = dirs.open();
    let digest = conversation(&store, Some(&a), &["hi", "hello"]);
    let b = key(KEY_B);
    assert!(
        store
            .continue_history(&digest, Some(&b), "sonnet")
            .is_none(),
        "another key's lookup of the same digest"
    );
    let other = conversation(&store, Some(&a), &["hi", "hello!"]);
    assert!(store.continue_history(&other, Some(&a), "sonnet").is_none());

    let lease = store.continue_history(&digest, Some(&a), "sonnet").unwrap();
    assert_eq!(lease.id(), &id);
    assert!(!lease.created());
    // Taken: a second request resending it does not get the session, busy
    // or not.
    assert!(store
        .continue_history(&digest, Some(&a), "sonnet")
        .is_none());
    drop(lease);
    assert!(store
        .continue_history(&digest, Some(&a), "sonnet")
        .is_none());
}

#[test]
fn a_conversation_is_hashed_with_its_owner_and_the_servers_key() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let a = key(KEY_A);
    let texts = ["hi", "hello"];
    assert_ne!(
        conversation(&store, Some(&a), &texts),
        conversation(&store, None, &texts)
    );
    let elsewhere = Dirs::new();
    assert_ne!(
        conversation(&store, Some(&a), &texts),
        conversation(&elsewhere.open(), Some(&a), &texts),
        "another server's secret"
    );
}

#[test]
fn an_expired_sessions_conversation_matches_nothing() {
    let dirs = Dirs::new();
    let store = dirs.open();
    let lease = store.create(None, "sonnet", "default").unwrap();
    let digest = conversation(&store, None, &["hi", "hello"]);
    lease.remember_history(digest);
    drop(lease);
    store.advance_clock(HOUR + Duration::from_secs(1));
    assert!(store.continue_history(&digest, None, "sonnet").is_none());
    // Met expired, it went at once, digest and all.
    assert_eq!(store.len(), 0);
    assert!(store.continue_history(&digest, None, "sonnet").is_none());
}

#[test]
fn each_turn_gets_its_share_of_the_running_cost_across_a_restart() {
    let dirs = Dirs::new();
    let id = {
        let store = dirs.open();
        let lease = store.create(None, "sonnet", "default").unwrap();
        assert!((lease.record_cost(0.000094) - 0.000094).abs() < 1e-12);
        assert!((lease.record_cost(0.00019) - 0.000096).abs() < 1e-12);
        let id = lease.id().clone();
        drop(lease);
        store.close();
        id
    };
    let store = dirs.open();
    let lease = store.resume(&id, None, "sonnet").unwrap();
    assert!((lease.record_cost(0.000288) - 0.000098).abs() < 1e-12);
    // A total below the last one (the CLI lost its count) counts whole.
    assert!((lease.record_cost(0.00005) - 0.00005).abs() < 1e-12);
}
