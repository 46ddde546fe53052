//! Raw HTTP for the foundation tests, beyond `support`: interim `100`
//! answers, bodies held back to keep a worker busy, answers that must come
//! within a bound, and the checks every error answer must pass.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use super::{BODY, SECURITY_HEADERS};
use crate::support::{read_status_and_headers, HttpResponse};

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads one final response (interim `1xx` answers are skipped). Bodies are
/// read by `Content-Length` or to the end of the connection.
pub fn read_response(reader: &mut impl BufRead) -> HttpResponse {
    loop {
        let (status, headers) = read_status_and_headers(reader);
        if (100..200).contains(&status) {
            continue;
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let mut body = Vec::new();
        match len {
            Some(len) => {
                body.resize(len, 0);
                reader.read_exact(&mut body).unwrap();
            }
            None => {
                let _ = reader.read_to_end(&mut body);
            }
        }
        return HttpResponse {
            status,
            headers,
            body,
        };
    }
}

/// A GET that fails the test instead of hanging when no answer comes.
pub fn get_within(addr: SocketAddr, path: &str, limit: Duration) -> HttpResponse {
    let mut stream = connect(addr);
    stream.set_read_timeout(Some(limit)).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if let Err(e) = reader.read_line(&mut line) {
        panic!("no answer to GET {path} within {limit:?}: {e}");
    }
    let mut rest = line.into_bytes();
    reader.read_to_end(&mut rest).unwrap();
    read_response(&mut std::io::Cursor::new(rest))
}

/// A chat request whose body is held back. With `Expect: 100-continue` the
/// server says `100 Continue` exactly when a worker starts reading the
/// body, which is how the test knows the worker is taken.
pub struct SlowClient {
    reader: BufReader<TcpStream>,
    rest: &'static [u8],
}

impl SlowClient {
    pub fn open(addr: SocketAddr) -> SlowClient {
        let mut stream = connect(addr);
        let (first, rest) = BODY.as_bytes().split_at(10);
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Content-Type: application/json\r\nExpect: 100-continue\r\n\
             Content-Length: {}\r\n\r\n",
            BODY.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(first).unwrap();
        stream.flush().unwrap();
        SlowClient {
            reader: BufReader::new(stream),
            rest,
        }
    }

    /// Blocks until a worker has begun reading this request's body.
    pub fn wait_for_worker(&mut self) {
        let (status, _) = read_status_and_headers(&mut self.reader);
        assert_eq!(status, 100, "expected an interim 100 Continue");
    }

    /// Sends the rest of the body and reads the answer.
    pub fn finish(mut self) -> HttpResponse {
        let stream = self.reader.get_mut();
        stream.write_all(self.rest).unwrap();
        stream.flush().unwrap();
        read_response(&mut self.reader)
    }
}

// ---------------------------------------------------------------------------
// Assertions shared by the error tests.

pub fn assert_common_headers(r: &HttpResponse) {
    let id = r.header("X-Request-ID").unwrap_or("");
    assert!(!id.is_empty(), "no X-Request-ID: {:?}", r.headers);
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(r.header(name), Some(*value), "{name} on {}", r.status);
    }
}

/// Status, OpenAI error schema and common headers; returns `error`.
pub fn assert_error(r: &HttpResponse, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{:?}",
        r.headers
    );
    let body = r.json();
    let error = body["error"].clone();
    let fields = error.as_object().expect("an `error` object");
    assert_eq!(error["code"], code, "{body}");
    assert!(
        !error["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
    let kind = error["type"].as_str().unwrap_or("");
    assert!(
        [
            "invalid_request_error",
            "authentication_error",
            "rate_limit_error",
            "server_error"
        ]
        .contains(&kind),
        "{body}"
    );
    assert!(fields.contains_key("param"), "{body}");
    assert_common_headers(r);
    error
}
