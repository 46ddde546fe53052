//! Shared test support: start the real server on an ephemeral port, and a
//! small raw HTTP/1.1 client that shows exactly what went over the wire
//! (status, headers, body, and SSE events as they arrive).

pub mod binary;
pub mod fake_openai;
pub mod warm;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use claude_cli_api::{start, Config, ServerHandle};

/// A fresh directory under cargo's per-target temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

impl TestServer {
    pub fn app(&self) -> &claude_cli_api::App {
        self.handle.as_ref().unwrap().app()
    }
}

/// Builds a config from environment-style pairs on top of test defaults.
pub fn config_from(pairs: &[(&str, &str)]) -> Config {
    let state_dir = temp_dir("state");
    let mut vars: Vec<(String, String)> = vec![
        ("STATE_DIR".into(), state_dir.display().to_string()),
        ("RATE_LIMIT_PER_IP".into(), "0".into()),
        ("RATE_LIMIT_PER_SESSION".into(), "0".into()),
        ("MAX_CONCURRENT_PER_KEY".into(), "0".into()),
    ];
    vars.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut config = Config::from_vars(vars).expect("test config parses");
    config.port = 0;
    config
}

pub fn server_with(config: Config) -> TestServer {
    let handle = start(config).expect("server starts");
    let addr = handle.addr();
    TestServer {
        handle: Some(handle),
        addr,
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `error.code` of an OpenAI error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    /// `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter_map(|ev| {
                ev.lines()
                    .find_map(|l| l.strip_prefix("data: ").map(str::to_string))
            })
            .collect()
    }
}

fn write_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: {connection}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
}

/// Reads a status line and headers (the blank line that ends them too).
pub fn read_status_and_headers(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (status, headers)
}

/// One request on a fresh connection; reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write_request(&mut stream, method, path, headers, body, false);
    read_response(&mut BufReader::new(stream))
}

/// A response read to its end: by its length, its chunks, or the close.
pub fn read_response(reader: &mut BufReader<TcpStream>) -> HttpResponse {
    let (status, headers) = read_status_and_headers(reader);
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let mut body = Vec::new();
    if chunked {
        while let Some(chunk) = read_chunk(reader) {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.resize(len, 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, &[], b"")
}

/// POST a JSON body to the chat route with extra headers.
pub fn chat(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(addr, "POST", "/v1/chat/completions", &all, body.as_bytes())
}

/// One client connection kept open across requests. The server reads the
/// next request on it only once it has completely finished the last one.
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn open(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// POST a JSON body to the chat route on this connection.
    pub fn chat(&mut self, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        let path = "/v1/chat/completions";
        let stream = self.reader.get_mut();
        write_request(stream, "POST", path, &all, body.as_bytes(), true);
        read_response(&mut self.reader)
    }
}

/// Reads one chunk of a chunked body; `None` at the terminating chunk or
/// when the connection ends.
fn read_chunk(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim(), 16).ok()?;
    if size == 0 {
        let mut end = String::new();
        let _ = reader.read_line(&mut end);
        return None;
    }
    let mut chunk = vec![0u8; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// A streaming response read event by event, with arrival times.
pub struct SseClient {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
    ended: bool,
}

impl SseClient {
    pub fn open(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> SseClient {
        SseClient::open_at(addr, "/v1/chat/completions", headers, body)
    }

    /// Like [`SseClient::open`], with the JSON body POSTed to `path`.
    pub fn open_at(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> SseClient {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        write_request(&mut stream, "POST", path, &all, body.as_bytes(), false);
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_status_and_headers(&mut reader);
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        if !chunked {
            // Not a stream (an error answer): read to its end all the same.
            let _ = reader.read_to_end(&mut Vec::new());
        }
        SseClient {
            status,
            headers,
            reader,
            pending: Vec::new(),
            ended: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next `data:` payload, or `None` when the stream has ended.
    pub fn next_data(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = find(&self.pending, b"\n\n") {
                let event: Vec<u8> = self.pending.drain(..pos + 2).collect();
                let text = String::from_utf8_lossy(&event).into_owned();
                if let Some(data) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("data: ").map(str::to_string))
                {
                    return Some(data);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            match read_chunk(&mut self.reader) {
                Some(chunk) => self.pending.extend_from_slice(&chunk),
                None => self.ended = true,
            }
        }
    }

    /// Every remaining payload until the stream ends.
    pub fn collect(mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(d) = self.next_data() {
            out.push(d);
        }
        out
    }

    /// The rest of the stream as sent (comments and event lines included),
    /// until it ends.
    pub fn raw_rest(mut self) -> String {
        while !self.ended {
            match read_chunk(&mut self.reader) {
                Some(chunk) => self.pending.extend_from_slice(&chunk),
                None => self.ended = true,
            }
        }
        String::from_utf8_lossy(&self.pending).into_owned()
    }

    /// Drops the connection without reading further.
    pub fn disconnect(self) {
        let _ = self.reader.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    check()
}

/// True while `pid` is a live process; a zombie (exited, not yet reaped)
/// counts as gone, which signal 0 alone would not tell.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The header that puts a request in Claude Code mode.
pub const CLAUDE: (&str, &str) = ("X-Claude-Code", "true");

/// The fake `claude` CLI (fixtures/fake-claude).
pub const FAKE_CLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fake-claude");

/// A server whose `claude` is the fake CLI, recording each run into the
/// returned directory. `extra` settings are applied last.
pub fn server_with_fake_cli(extra: &[(&str, &str)]) -> (TestServer, PathBuf) {
    let records = temp_dir("records");
    let config = fake_cli_config(&records, extra);
    (server_with(config), records)
}

/// Test settings whose `claude` is the fake CLI recording into `records`,
/// with `extra` applied last.
pub fn fake_cli_config(records: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let path = std::env::var("PATH").unwrap_or_default();
    let records_s = records.display().to_string();
    let mut vars: Vec<(&str, &str)> = vec![
        ("CLAUDE_PATH", FAKE_CLI),
        ("PATH", &path),
        ("FAKE_CLAUDE_RECORD_DIR", &records_s),
        (
            "CLAUDE_ENV_PASSTHROUGH",
            "FAKE_CLAUDE_RECORD_DIR,FAKE_CLAUDE_SCENARIO",
        ),
    ];
    vars.extend_from_slice(extra);
    let mut config = config_from(&vars);
    // The server runs inside the test binary: the CLI must start the
    // built server as its tool bridge.
    config.bridge_exe = PathBuf::from(env!("CARGO_BIN_EXE_claude-cli-api"));
    config
}

/// A port that was free a moment ago (for the binary, which refuses 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
