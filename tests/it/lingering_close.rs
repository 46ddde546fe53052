//! A body the server refuses without reading still gets its answer: the
//! client reads the whole 413 (no connection reset while it is still
//! sending), then the server closes once the client has been quiet for a
//! moment, and never holds a connection open past a bound however slowly
//! or however much the client sends.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::{config_from, server_with};

fn server() -> support::TestServer {
    server_with(config_from(&[
        ("OPENAI_PASSTHROUGH_ENABLED", "false"),
        ("MAX_BODY_BYTES", "1048576"),
    ]))
}

fn head(length: u64) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// Reads until EOF (or `limit`), returning what arrived and when it ended.
fn read_to_end_within(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return (got, Some(started.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
        }
    }
    (got, None)
}

fn assert_413(answer: &[u8]) {
    let text = String::from_utf8_lossy(answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = &text[text.find("\r\n\r\n").expect("a whole head") + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("a whole JSON body");
    assert_eq!(json["error"]["code"], "payload_too_large");
}

/// Sends the whole of an oversize body as fast as the server takes it,
/// then reads the answer.
fn send_oversize(addr: SocketAddr, size: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(head(size as u64).as_bytes()).unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        stream
            .write_all(&chunk[..n])
            .unwrap_or_else(|e| panic!("write failed after {sent} of {size} bytes: {e}"));
        sent += n;
    }
    let (answer, ended) = read_to_end_within(&mut stream, Duration::from_secs(15));
    assert!(ended.is_some(), "the connection was never closed");
    answer
}

#[test]
fn a_client_still_sending_reads_its_whole_413() {
    let s = server();
    for (size, tries) in [(1_200_000, 10), (20_000_000, 3)] {
        for _ in 0..tries {
            assert_413(&send_oversize(s.addr, size));
        }
    }
}

#[test]
fn a_huge_declared_body_gets_its_413_then_eof_within_the_bound() {
    let s = server();
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.write_all(head(99_000_000_000).as_bytes()).unwrap();
    stream.write_all(b"{\"").unwrap();
    let (answer, ended) = read_to_end_within(&mut stream, Duration::from_secs(8));
    assert_413(&answer);
    let ended = ended.expect("closed");
    assert!(ended < Duration::from_secs(4), "closed after {ended:?}");
}

#[test]
fn a_slow_drip_does_not_hold_the_connection_past_the_bound() {
    let s = server();
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.write_all(head(50_000_000).as_bytes()).unwrap();
    let started = Instant::now();
    // The answer, then the end of what the server will write.
    let (answer, ended) = read_to_end_within(&mut stream, Duration::from_secs(5));
    assert_413(&answer);
    assert!(ended.is_some());
    // Never quiet for long: a byte every half second, until the server
    // stops taking them (it has closed the connection).
    let closed = loop {
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(20), "still open after 20 s");
        if stream.write_all(b" ").is_err() {
            break elapsed;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        closed > Duration::from_secs(5),
        "closed after only {closed:?}"
    );
    assert!(closed < Duration::from_secs(13), "closed after {closed:?}");
    let _ = stream.shutdown(Shutdown::Both);
}

#[test]
fn a_small_unread_body_keeps_the_connection() {
    // A 401 is given before the body is read; the body is small, so the
    // connection goes on and the next request on it is answered.
    let s = server_with(config_from(&[
        ("OPENAI_PASSTHROUGH_ENABLED", "false"),
        ("API_KEY", "sk-cca-linger-test-0001"),
    ]));
    let mut stream = TcpStream::connect(s.addr).unwrap();
    let body = " ".repeat(20_000);
    let request = format!("{}{body}", head(body.len() as u64));
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answers, ended) = read_to_end_within(&mut stream, Duration::from_secs(5));
    assert!(ended.is_some());
    let text = String::from_utf8_lossy(&answers);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    // The health report (503 here: no backend is configured).
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    assert!(text.contains("\"checks\""), "{text}");
}
