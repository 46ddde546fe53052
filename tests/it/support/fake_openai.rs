//! A fake OpenAI-compatible upstream for the passthrough tests: a raw
//! `TcpListener` on 127.0.0.1:0, one thread per connection, keep-alive.
//!
//! It records every request exactly as received (method, path, query
//! string, headers, body bytes whether sent with a length or chunked,
//! whether the body arrived whole, and which connection carried it) and
//! answers each with the current [`Answer`]: fixed JSON with any status and
//! headers, any content type with a binary body, an SSE stream (with
//! pauses, a gate the test opens before the next event is sent, an end with
//! or without `data: [DONE]`, or a dropped connection), a redirect, a hang,
//! or an endless stream that reports when its writes start failing. It also
//! counts request body bytes as they arrive, so a test can see an upload
//! reach it before the client has finished sending.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

/// How long a connection thread waits on a silent client or a closed gate
/// before giving up, so no thread outlives a test by much.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub enum Answer {
    /// `Content-Type: application/json`, the given status, extra headers
    /// and body; the connection stays open for the next request.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Any status, `headers` (the content type among them) and body bytes,
    /// sent with a `Content-Length`; the connection stays open.
    Bytes {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A chunked `text/event-stream`. `events` are whole events without
    /// their blank line. Before each event after the first the fake sleeps
    /// `gap`, then, when `gate` is set, waits for one message on it.
    Sse {
        events: Vec<String>,
        gap: Duration,
        gate: Option<Receiver<()>>,
        end: SseEnd,
    },
    /// A redirect with `Location`, no body.
    Redirect { status: u16, location: String },
    /// Reads the request and never answers.
    Hang,
    /// SSE events every `gap` until a write fails, then signals it.
    Flood { gap: Duration },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SseEnd {
    /// `data: [DONE]` and the chunked terminator.
    Done,
    /// The chunked terminator right after the last event, no `[DONE]`
    /// (how the Responses API ends a stream).
    Close,
    /// The socket is shut down right after the last event.
    DropConnection,
}

impl Answer {
    pub fn json(status: u16, body: &str) -> Answer {
        Answer::Json {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn sse(events: &[&str]) -> Answer {
        Answer::Sse {
            events: events.iter().map(|e| e.to_string()).collect(),
            gap: Duration::ZERO,
            gate: None,
            end: SseEnd::Done,
        }
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The request target up to its `?`.
    pub path: String,
    /// What followed the `?`, if there was one.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body bytes (de-chunked when sent chunked), as far as they came.
    pub body: Vec<u8>,
    /// The whole body arrived: all of its `Content-Length`, or the chunked
    /// terminator. An incomplete request is recorded when its connection
    /// ends (or goes silent) mid-body, and is never answered.
    pub complete: bool,
    /// Index of the TCP connection (in accept order) that carried it.
    pub connection: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    answer: Mutex<Answer>,
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    body_bytes: AtomicUsize,
    write_failed: Sender<()>,
    stop: AtomicBool,
}

pub struct FakeOpenAi {
    addr: SocketAddr,
    state: Arc<State>,
    write_failed: Receiver<()>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeOpenAi {
    pub fn start(answer: Answer) -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let state = Arc::new(State {
            answer: Mutex::new(answer),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            body_bytes: AtomicUsize::new(0),
            write_failed: tx,
            stop: AtomicBool::new(false),
        });
        let shared = state.clone();
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let id = shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                std::thread::spawn(move || serve_connection(&state, stream, id));
            }
        });
        FakeOpenAi {
            addr,
            state,
            write_failed: rx,
            acceptor: Some(acceptor),
        }
    }

    /// What `OPENAI_BASE_URL` should be for the server to use this fake.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the answer for the requests that follow.
    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The one request received so far; fails the test otherwise.
    pub fn only_request(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected exactly one upstream request");
        all.into_iter().next().unwrap()
    }

    /// Request body bytes received so far over all requests, counted as
    /// they arrive (before a request is complete and recorded).
    pub fn body_bytes_received(&self) -> usize {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// Whether a [`Answer::Flood`] write failed within `limit`.
    pub fn wait_write_failed(&self, limit: Duration) -> bool {
        self.write_failed.recv_timeout(limit).is_ok()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve_connection(state: &State, stream: TcpStream, connection: usize) {
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    while let Some(mut request) = read_request(&mut reader, &mut out, state) {
        request.connection = connection;
        let complete = request.complete;
        state.requests.lock().unwrap().push(request);
        if !complete {
            break;
        }
        let answer = state.answer.lock().unwrap().clone();
        let keep_open = match answer {
            Answer::Json {
                status,
                headers,
                body,
            } => write_json(&mut out, status, &headers, &body).is_ok(),
            Answer::Bytes {
                status,
                headers,
                body,
            } => write_bytes(&mut out, status, &headers, &body).is_ok(),
            Answer::Sse {
                events,
                gap,
                gate,
                end,
            } => {
                write_sse(&mut out, &events, gap, gate.as_ref(), end).is_ok()
                    && end != SseEnd::DropConnection
            }
            Answer::Redirect { status, location } => {
                let head = format!(
                    "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                );
                out.write_all(head.as_bytes()).is_ok()
            }
            Answer::Hang => {
                // Returns when the server gives up and closes its end.
                let mut sink = [0u8; 256];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                false
            }
            Answer::Flood { gap } => {
                if flood(&mut out, gap) {
                    let _ = state.write_failed.send(());
                }
                false
            }
        };
        if !keep_open || state.stop.load(Ordering::SeqCst) {
            break;
        }
    }
    let _ = out.shutdown(std::net::Shutdown::Both);
}

/// Reads one request: `None` when the connection ends (or stays silent)
/// before a whole head; a request whose body stops short comes back with
/// `complete: false`.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
    state: &State,
) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (target, None),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let len = header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut body = Vec::new();
    let complete = if chunked {
        read_chunked_body(reader, &mut body, state).is_some()
    } else {
        read_body(reader, len, &mut body, state)
    };
    Some(Recorded {
        method,
        path,
        query,
        headers,
        body,
        complete,
        connection: 0,
    })
}

/// Appends `len` body bytes to `body` as they arrive, counting them;
/// false when the connection ends or goes silent first.
fn read_body(
    reader: &mut BufReader<TcpStream>,
    len: usize,
    body: &mut Vec<u8>,
    state: &State,
) -> bool {
    let mut piece = [0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = left.min(piece.len());
        match reader.read(&mut piece[..want]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                body.extend_from_slice(&piece[..n]);
                state.body_bytes.fetch_add(n, Ordering::SeqCst);
                left -= n;
            }
        }
    }
    true
}

/// Appends a chunked body, de-chunked, to `body`; `None` unless its
/// terminating chunk (and trailer section) arrived.
fn read_chunked_body(
    reader: &mut BufReader<TcpStream>,
    body: &mut Vec<u8>,
    state: &State,
) -> Option<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let size_field = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_field.trim(), 16).ok()?;
        if size == 0 {
            // Trailers, if any, up to the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                if line.trim_end_matches(['\r', '\n']).is_empty() {
                    return Some(());
                }
            }
        }
        if !read_body(reader, size, body, state) {
            return None;
        }
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn write_json(
    out: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

fn write_bytes(
    out: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
    Transfer-Encoding: chunked\r\nx-ratelimit-remaining-tokens: 4000\r\nx-request-id: req_stream\r\n\r\n";

fn write_chunk(out: &mut TcpStream, data: &str) -> std::io::Result<()> {
    out.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())?;
    out.flush()
}

fn write_sse(
    out: &mut TcpStream,
    events: &[String],
    gap: Duration,
    gate: Option<&Receiver<()>>,
    end: SseEnd,
) -> std::io::Result<()> {
    out.write_all(SSE_HEAD.as_bytes())?;
    out.flush()?;
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(gap);
            if let Some(gate) = gate {
                if gate.recv_timeout(PATIENCE).is_err() {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            }
        }
        write_chunk(out, &format!("{event}\n\n"))?;
    }
    match end {
        SseEnd::Done => {
            write_chunk(out, "data: [DONE]\n\n")?;
            out.write_all(b"0\r\n\r\n")?;
            out.flush()
        }
        SseEnd::Close => {
            out.write_all(b"0\r\n\r\n")?;
            out.flush()
        }
        SseEnd::DropConnection => {
            out.shutdown(std::net::Shutdown::Both)?;
            Ok(())
        }
    }
}

/// Streams numbered events until a write fails (the reader went away:
/// returns true) or `PATIENCE` runs out (false).
fn flood(out: &mut TcpStream, gap: Duration) -> bool {
    if out.write_all(SSE_HEAD.as_bytes()).is_err() {
        return true;
    }
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut n = 0u64;
    while std::time::Instant::now() < deadline {
        let event = format!("data: {{\"n\":{n}}}\n\n");
        if write_chunk(out, &event).is_err() {
            return true;
        }
        n += 1;
        std::thread::sleep(gap);
    }
    false
}
