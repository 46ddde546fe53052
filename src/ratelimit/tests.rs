//! Tests of the limiter: the windows, the key slots and the headers.

use super::*;
use std::net::Ipv4Addr;

const MS: Duration = Duration::from_millis(1);

fn window(limit: u32, window_ms: u64, cap: usize) -> SlidingWindow<IpAddr> {
    SlidingWindow::new("ip", limit, MS * window_ms as u32, cap)
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn limiter(per_ip: u32, per_session: u32, per_key: u32, window_ms: u64) -> RateLimiter {
    let mut config = Config::for_tests(std::env::temp_dir());
    config.rate_limit_per_ip = per_ip;
    config.rate_limit_per_session = per_session;
    config.max_concurrent_per_key = per_key;
    config.rate_limit_window = MS * window_ms as u32;
    RateLimiter::new(&config)
}

#[test]
fn exactly_n_per_window_then_refused_until_the_oldest_leaves() {
    let w = window(3, 10_000, 100);
    let t0 = Instant::now();
    for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
        let info = w.hit(ip(1), t0 + MS * 1000 * i as u32).unwrap();
        assert_eq!((info.limit, info.remaining), (3, remaining));
        // The next slot frees when the first request (at t0) leaves.
        assert_eq!(info.reset_after, MS * (10_000 - 1000 * i as u32));
    }
    let refused = w.hit(ip(1), t0 + MS * 2500).unwrap_err();
    assert_eq!(
        refused,
        ApiError::RateLimitExceeded {
            retry_after_secs: 8, // 7.5 s rounded up
            scope: "ip"
        }
    );
    // Another client is not affected.
    assert!(w.hit(ip(2), t0 + MS * 2500).is_ok());
    // One millisecond before the first request leaves: still refused,
    // and the wait is rounded up to a whole second, never 0.
    let e = w.hit(ip(1), t0 + MS * 9_999).unwrap_err();
    assert_eq!(retry_after(&e), Some(1));
    // At the window's end exactly one slot is free again.
    let info = w.hit(ip(1), t0 + MS * 10_000).unwrap();
    assert_eq!(info.remaining, 0);
    assert_eq!(info.reset_after, MS * 1000);
    assert!(w.hit(ip(1), t0 + MS * 10_000).is_err());
}

#[test]
fn retry_after_follows_the_sliding_window() {
    let w = window(1, 5_000, 100);
    let t0 = Instant::now();
    w.hit(ip(1), t0).unwrap();
    let at = |ms: u32| retry_after(&w.hit(ip(1), t0 + MS * ms).unwrap_err());
    assert_eq!(at(1), Some(5));
    assert_eq!(at(1_200), Some(4));
    assert_eq!(at(3_999), Some(2));
    assert_eq!(at(4_001), Some(1));
    assert!(w.hit(ip(1), t0 + MS * 5_000).is_ok());
}

#[test]
fn refusals_are_not_counted() {
    let w = window(2, 1_000, 100);
    let t0 = Instant::now();
    w.hit(ip(1), t0).unwrap();
    w.hit(ip(1), t0 + MS * 500).unwrap();
    for ms in 501..600 {
        assert!(w.hit(ip(1), t0 + MS * ms).is_err());
    }
    // Only the request at t0 has left; the refused ones never counted.
    assert_eq!(w.hit(ip(1), t0 + MS * 1_000).unwrap().remaining, 0);
}

#[test]
fn zero_disables() {
    let l = limiter(0, 0, 0, 1_000);
    for _ in 0..1_000 {
        let info = l.check_ip(ip(1)).unwrap();
        assert!(info.headers().is_empty());
        l.check_session("s").unwrap();
        assert!(l.acquire_key(&Secret::new("sk-cca-k")).unwrap().is_none());
    }
    assert_eq!(l.tracked_clients(), 0);
    assert_eq!(l.tracked_sessions(), 0);
}

#[test]
fn idle_clients_are_swept() {
    // 10 000 distinct addresses, 100 per window-long stretch of time:
    // the table holds about the clients of the last window, not all.
    let w = window(5, 1_000, MAX_TRACKED);
    let t0 = Instant::now();
    let mut peak = 0;
    for n in 0..10_000u32 {
        w.hit(ip(n), t0 + MS * 10 * n).unwrap();
        peak = peak.max(w.state.lock().logs.len());
    }
    assert!(peak <= 201, "peak {peak}");
    let later = t0 + MS * 10 * 10_000 + MS * 5_000;
    w.hit(ip(99_999), later).unwrap();
    assert_eq!(w.state.lock().logs.len(), 1);
}

#[test]
fn a_flood_inside_one_window_is_capped() {
    // 10 000 distinct (forged) addresses within one window.
    let w = window(5, 60_000, 1_000);
    let t0 = Instant::now();
    let regular = ip(5_000_000);
    for n in 0..10_000u32 {
        w.hit(ip(n), t0 + MS * n / 10).unwrap();
        if n % 100 == 0 {
            // A client at its limit is kept through every eviction.
            let _ = w.hit(regular, t0 + MS * n / 10);
        }
        assert!(w.state.lock().logs.len() <= 1_000);
    }
    assert!(w.state.lock().logs.len() >= 750);
    // Its first request (at t0) leaves the window in 58.999 s.
    let e = w.hit(regular, t0 + MS * 1_001).unwrap_err();
    assert_eq!(retry_after(&e), Some(59));
}

#[test]
fn tracked_clients_counts_the_per_ip_table() {
    let l = limiter(2, 0, 0, 60_000);
    for n in 0..50 {
        l.check_ip(ip(n)).unwrap();
    }
    l.check_ip(ip(0)).unwrap();
    assert_eq!(l.tracked_clients(), 50);
}

#[test]
fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
    let l = limiter(2, 0, 0, 60_000);
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    l.check_ip(a).unwrap();
    l.check_ip(b).unwrap();
    assert!(l.check_ip(a).is_err());
    assert!(l.check_ip(other).is_ok());
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    l.check_ip(v4).unwrap();
    l.check_ip(mapped).unwrap();
    assert!(l.check_ip(v4).is_err());
}

#[test]
fn session_limit() {
    let l = limiter(0, 2, 0, 60_000);
    let a = "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
    let b = "4f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7c";
    assert_eq!(l.check_session(a).unwrap().remaining, 1);
    assert_eq!(l.check_session(a).unwrap().remaining, 0);
    let e = l.check_session(a).unwrap_err();
    assert_eq!(e.code(), "rate_limit_exceeded");
    assert!(matches!(
        e,
        ApiError::RateLimitExceeded {
            scope: "session",
            retry_after_secs: 59..=60
        }
    ));
    assert_eq!(l.check_session(b).unwrap().remaining, 1);
    assert_eq!(l.tracked_sessions(), 2);
    // The per-IP window is separate.
    assert_eq!(l.tracked_clients(), 0);
}

#[test]
fn session_window_slides() {
    let l = limiter(0, 1, 0, 50);
    l.check_session("s").unwrap();
    assert!(l.check_session("s").is_err());
    std::thread::sleep(MS * 60);
    assert!(l.check_session("s").is_ok());
}

#[test]
fn key_slots_are_counted_and_given_back() {
    let l = limiter(0, 0, 2, 60_000);
    let k1 = Secret::new("sk-cca-first-key-0001");
    let k2 = Secret::new("sk-cca-second-key-002");
    let a = l.acquire_key(&k1).unwrap();
    let b = l.acquire_key(&k1).unwrap();
    assert!(a.is_some() && b.is_some());
    assert_eq!(l.in_flight(&k1), 2);
    let e = l.acquire_key(&k1).err().unwrap();
    assert_eq!(
        e,
        ApiError::RateLimitExceeded {
            retry_after_secs: 1,
            scope: "key"
        }
    );
    // Keys do not share slots.
    let c = l.acquire_key(&k2).unwrap();
    assert_eq!(l.in_flight(&k2), 1);
    drop(a);
    assert_eq!(l.in_flight(&k1), 1);
    let d = l.acquire_key(&k1).unwrap();
    assert!(l.acquire_key(&k1).is_err());
    drop((b, c, d));
    assert_eq!(l.in_flight(&k1), 0);
    assert_eq!(l.in_flight(&k2), 0);
    // Nothing in flight leaves nothing behind.
    assert!(l.per_key.counts.lock().is_empty());
}

#[test]
fn a_slot_comes_back_when_its_holder_panics() {
    let l = Arc::new(limiter(0, 0, 1, 60_000));
    let key = Secret::new("sk-cca-first-key-0001");
    let (l2, k2) = (l.clone(), key.clone());
    let joined = std::thread::spawn(move || {
        let _slot = l2.acquire_key(&k2).unwrap();
        panic!("handler died");
    })
    .join();
    assert!(joined.is_err());
    assert_eq!(l.in_flight(&key), 0);
    assert!(l.acquire_key(&key).unwrap().is_some());
}

#[test]
fn headers_give_the_reset_as_unix_time() {
    let info = LimitInfo {
        limit: 60,
        remaining: 59,
        reset_after: MS * 2_500,
    };
    let headers = info.headers();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .unwrap()
    };
    assert_eq!(get("X-RateLimit-Limit"), 60);
    assert_eq!(get("X-RateLimit-Remaining"), 59);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reset = get("X-RateLimit-Reset");
    assert!((now + 2..=now + 4).contains(&reset), "{reset} vs {now}");
    assert_eq!(LimitInfo::exhausted(3, 7).headers()[1].1, "0");
}
