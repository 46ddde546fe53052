//! Clients that are slow on purpose cannot pin the server: a request head
//! dripped a byte at a time is cut off at the head deadline, a stalled body
//! at the body deadline, an idle keep-alive connection is closed quietly,
//! and hundreds of such connections do not delay anyone else. A connection
//! busy with a long response is not mistaken for an idle one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the server closes; returns what it sent.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_dripped_request_head_is_cut_off_without_delaying_others() {
    let server = server_with(config_from(&[("HEADERS_TIMEOUT_MS", "800")]));
    let addr = server.addr;
    let started = Instant::now();
    let mut slow = connect(addr);
    slow.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    let dripper = {
        let mut s = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Meanwhile others are served at once.
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(get(addr, "/health").status, 200);
        assert!(t.elapsed() < Duration::from_millis(200));
    }
    let answer = read_to_close(&mut slow);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let _ = dripper.join();
}

#[test]
fn a_stalled_body_is_answered_408() {
    let server = server_with(config_from(&[("BODY_TIMEOUT_MS", "500")]));
    let mut s = connect(server.addr);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 5000\r\n\r\n{\"model\":",
    )
    .unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("request_timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_huge_declared_body_is_refused_and_the_server_lives_on() {
    let server = server_with(config_from(&[]));
    let mut s = connect(server.addr);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000000000000\r\n\r\n{",
    )
    .unwrap();
    let answer = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert_eq!(get(server.addr, "/health").status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed_quietly() {
    let server = server_with(config_from(&[("KEEPALIVE_TIMEOUT_MS", "300")]));
    let mut s = connect(server.addr);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        !rest.contains("HTTP/1.1 408"),
        "no answer to an idle connection: {rest}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_connection_busy_streaming_is_not_idle() {
    let path = std::env::var("PATH").unwrap_or_default();
    let server = server_with(config_from(&[
        ("KEEPALIVE_TIMEOUT_MS", "200"),
        ("CLAUDE_PATH", FAKE_CLI),
        ("PATH", &path),
    ]));
    let mut s = connect(server.addr);
    let body = json!({"model": "sonnet", "stream": true,
        "messages": [{"role": "user", "content": "[[fake:slow:100]]"}]})
    .to_string();
    let request = |body: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Claude-Code: true\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    s.write_all(request(&body).as_bytes()).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut seen = String::new();
    while !seen.contains("data: [DONE]") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "closed mid-stream: {seen}"
        );
        seen.push_str(&line);
    }
    // The stream took about a second, five idle limits; the connection
    // still takes the next request.
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0);
        if line == "0\r\n" {
            reader.read_line(&mut line).unwrap();
            break;
        }
    }
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
}

#[test]
fn hundreds_of_slowloris_connections_do_not_stop_normal_requests() {
    let server = server_with(config_from(&[("HEADERS_TIMEOUT_MS", "30000")]));
    let addr = server.addr;
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nX-A: ")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(addr, "/health").status, 200);
        let r = chat(addr, &[], "{\"model\":\"x\",\"messages\":[]}");
        assert_eq!(r.status, 503, "{}", r.text());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for s in &mut idle {
        let _ = s.write_all(b"b");
    }
}
