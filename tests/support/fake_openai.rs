//! A fake OpenAI-compatible upstream for the passthrough tests: a raw
//! `TcpListener` on 127.0.0.1:0, one thread per connection, keep-alive.
//!
//! It records every request exactly as received (method, path, headers,
//! body bytes, and which connection carried it) and answers each with the
//! current [`Answer`]: fixed JSON with any status and headers, an SSE
//! stream (with pauses, a gate the test opens before the next event is
//! sent, a clean end or a dropped connection), a redirect, a hang, or an
//! endless stream that reports when its writes start failing.

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
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
    while let Some(mut request) = read_request(&mut reader) {
        request.connection = connection;
        state.requests.lock().unwrap().push(request);
        let answer = state.answer.lock().unwrap().clone();
        let keep_open = match answer {
            Answer::Json {
                status,
                headers,
                body,
            } => write_json(&mut out, status, &headers, &body).is_ok(),
            Answer::Sse {
                events,
                gap,
                gate,
                end,
            } => {
                write_sse(&mut out, &events, gap, gate.as_ref(), end).is_ok() && end == SseEnd::Done
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

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
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
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
        connection: 0,
    })
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
