//! The small client behind `scripts/bench.sh`: what wrk cannot do.
//!
//! Modes (each prints one `key=value ...` line on stdout for the script):
//!
//! - `slow-upstream PORT [EVENTS] [INTERVAL_MS]`: an OpenAI-like SSE server
//!   sending one chunk every INTERVAL_MS (default 20), each stamped with its
//!   send time (`"t_ns"`, nanoseconds since the epoch). A request body's
//!   `"max_tokens":N` sets the number of events (default EVENTS, 50).
//! - `sse-delay URL N [STREAMS] [INTERVAL_MS]`: reads at least N stamped
//!   events over STREAMS staggered streams; prints arrival − send time.
//! - `load URL CONC SECS STREAM [HEADER ...]`: closed-loop POSTs on CONC
//!   keep-alive connections; prints req/s and latency percentiles.
//! - `claude-load URL CONC SECS STREAM`: `load` with `X-Claude-Code: true`.
//! - `spawn-floor CMD CONC SECS`: runs CMD with the arguments the server
//!   gives the CLI, CONC at a time, stdout read to EOF; prints runs/s.
//! - `claude-paired URL CMD SECS STREAM`: one thread alternates a direct
//!   run of CMD and one request through the server; prints the p50 of both
//!   and their difference, against the run's exit and against the moment
//!   its `result` line arrived (which is when the server answers).
//! - `hold-streams URL N SECS [EVENTS] [HEADER ...]`: opens N streams at
//!   once, prints `ready=...` when each has delivered an event (or SECS/2
//!   have passed), holds them until they end or SECS pass.
//! - `startup BIN [RUNS]`: exec → first `/health` 200, median of RUNS (20).
//! - `request URL STREAM [HEADER ...]`: one request, its status and size.
//! - `wait-health URL TIMEOUT_MS`, `free-port`: helpers for the script.
//!
//! std only: a raw HTTP/1.1 client over `TcpStream`, so that nothing
//! between the socket and the clock buffers an event.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SMALL_STACK: usize = 128 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_client: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Res<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["slow-upstream", port, rest @ ..] => {
            slow_upstream(port.parse()?, opt(rest, 0, 50)?, opt(rest, 1, 20)?)
        }
        ["sse-delay", url, n, rest @ ..] => {
            sse_delay(url, n.parse()?, opt(rest, 0, 10)?, opt(rest, 1, 20)?)
        }
        ["load", url, conc, secs, stream, headers @ ..] => {
            load(url, conc.parse()?, secs.parse()?, flag(stream), headers)
        }
        ["claude-load", url, conc, secs, stream] => load(
            url,
            conc.parse()?,
            secs.parse()?,
            flag(stream),
            &["X-Claude-Code: true"],
        ),
        ["spawn-floor", cmd, conc, secs] => spawn_floor(cmd, conc.parse()?, secs.parse()?),
        ["claude-paired", url, cmd, secs, stream] => {
            claude_paired(url, cmd, secs.parse()?, flag(stream))
        }
        ["hold-streams", url, n, secs, rest @ ..] => {
            let events = match rest.first() {
                Some(e) => e.parse()?,
                None => 1_000_000,
            };
            let headers = rest.get(1..).unwrap_or(&[]);
            hold_streams(url, n.parse()?, secs.parse()?, events, headers)
        }
        ["startup", bin, rest @ ..] => startup(bin, opt(rest, 0, 20)?),
        ["request", url, stream, headers @ ..] => one_request(url, flag(stream), headers),
        ["wait-health", url, timeout_ms] => wait_health(url, timeout_ms.parse()?),
        ["free-port"] => {
            println!("{}", free_port()?);
            Ok(())
        }
        _ => Err("usage: see the module doc of examples/bench_client.rs".into()),
    }
}

fn opt(rest: &[&str], i: usize, default: u64) -> Res<u64> {
    Ok(match rest.get(i) {
        Some(v) => v.parse()?,
        None => default,
    })
}

fn flag(v: &str) -> bool {
    matches!(v, "1" | "true" | "yes" | "stream")
}

// ---------------------------------------------------------------- HTTP ----

struct Url {
    addr: String,
    path: String,
}

fn parse_url(url: &str) -> Res<Url> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok(Url {
        addr: addr.to_string(),
        path: path.to_string(),
    })
}

/// A socket with its own read buffer. Bytes are read only when the parser
/// needs more, so `last_fill` is the arrival time of whatever completed
/// the item just parsed.
struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    last_fill: SystemTime,
}

impl Conn {
    fn open(addr: &str) -> io::Result<Conn> {
        let sock = TcpStream::connect(addr)?;
        Conn::new(sock)
    }

    fn new(sock: TcpStream) -> io::Result<Conn> {
        sock.set_nodelay(true)?;
        Ok(Conn {
            sock,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            last_fill: SystemTime::now(),
        })
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        let n = self.sock.read(&mut self.buf[self.end..])?;
        self.last_fill = SystemTime::now();
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// Bytes up to and including `pat`.
    fn read_until(&mut self, pat: &[u8]) -> io::Result<Vec<u8>> {
        let mut searched = 0;
        loop {
            let pending = self.pending();
            if let Some(i) = find(&pending[searched..], pat) {
                let n = searched + i + pat.len();
                let out = pending[..n].to_vec();
                self.start += n;
                return Ok(out);
            }
            searched = pending.len().saturating_sub(pat.len());
            self.fill()?;
        }
    }

    /// Hands `n` body bytes to `sink` as they arrive, with their arrival time.
    fn deliver(&mut self, mut n: usize, sink: &mut dyn FnMut(&[u8], SystemTime)) -> io::Result<()> {
        while n > 0 {
            if self.start == self.end {
                self.fill()?;
            }
            let k = n.min(self.end - self.start);
            sink(&self.buf[self.start..self.start + k], self.last_fill);
            self.start += k;
            n -= k;
        }
        Ok(())
    }

    fn deliver_to_eof(&mut self, sink: &mut dyn FnMut(&[u8], SystemTime)) -> io::Result<()> {
        loop {
            if self.start < self.end {
                sink(&self.buf[self.start..self.end], self.last_fill);
                self.start = self.end;
            }
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

struct Head {
    status: u16,
    chunked: bool,
    length: Option<usize>,
    close: bool,
}

fn read_head(conn: &mut Conn) -> Res<Head> {
    let raw = conn.read_until(b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&raw);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut head = Head {
        status,
        chunked: false,
        length: None,
        close: status_line.starts_with("HTTP/1.0"),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => head.chunked = value.eq_ignore_ascii_case("chunked"),
            "content-length" => head.length = value.parse().ok(),
            "connection" => head.close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    Ok(head)
}

/// Reads the whole body of a response, handing each piece to `sink`.
fn read_body(conn: &mut Conn, head: &Head, sink: &mut dyn FnMut(&[u8], SystemTime)) -> Res<()> {
    if head.chunked {
        loop {
            let line = conn.read_until(b"\r\n")?;
            let text = String::from_utf8_lossy(&line);
            let size_text = text.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size line {text:?}"))?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    if conn.read_until(b"\r\n")? == b"\r\n" {
                        return Ok(());
                    }
                }
            }
            conn.deliver(size, sink)?;
            conn.read_until(b"\r\n")?;
        }
    } else if let Some(n) = head.length {
        Ok(conn.deliver(n, sink)?)
    } else {
        Ok(conn.deliver_to_eof(sink)?)
    }
}

fn chat_body(stream: bool, events: Option<u64>) -> Vec<u8> {
    let mut body = String::from(
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]"#,
    );
    if stream {
        body.push_str(r#","stream":true"#);
    }
    if let Some(n) = events {
        body.push_str(&format!(r#","max_tokens":{n}"#));
    }
    body.push('}');
    body.into_bytes()
}

fn write_request(
    sock: &mut TcpStream,
    url: &Url,
    method: &str,
    headers: &[&str],
    body: &[u8],
) -> io::Result<()> {
    let mut rq = format!("{method} {} HTTP/1.1\r\nHost: {}\r\n", url.path, url.addr);
    if method == "POST" {
        rq.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    for h in headers {
        rq.push_str(h);
        rq.push_str("\r\n");
    }
    rq.push_str("\r\n");
    let mut bytes = rq.into_bytes();
    bytes.extend_from_slice(body);
    sock.write_all(&bytes)
}

/// Splits a body into SSE events (text before a blank line).
#[derive(Default)]
struct Events {
    pending: Vec<u8>,
}

impl Events {
    fn push(&mut self, data: &[u8], mut on_event: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        let mut from = 0;
        while let Some(i) = find(&self.pending[from..], b"\n\n") {
            on_event(&self.pending[from..from + i]);
            from += i + 2;
        }
        self.pending.drain(..from);
    }
}

fn send_stamp(event: &[u8]) -> Option<u128> {
    let i = find(event, b"\"t_ns\":")? + 7;
    let digits: Vec<u8> = event[i..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn epoch_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sort(v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
}

// ------------------------------------------------------- slow upstream ----

fn slow_upstream(port: u16, default_events: u64, interval_ms: u64) -> Res<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening port={}", listener.local_addr()?.port());
    io::stdout().flush()?;
    let interval = Duration::from_millis(interval_ms);
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        let _ = thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || serve_slow(sock, default_events, interval));
    }
    Ok(())
}

/// One keep-alive connection: each request gets a stream of stamped events.
fn serve_slow(sock: TcpStream, default_events: u64, interval: Duration) -> Res<()> {
    let mut conn = Conn::new(sock)?;
    loop {
        let raw = match conn.read_until(b"\r\n\r\n") {
            Ok(raw) => raw,
            Err(_) => return Ok(()),
        };
        let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        let length = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = Vec::with_capacity(length);
        conn.deliver(length, &mut |d, _| body.extend_from_slice(d))?;
        let events = requested_events(&body).unwrap_or(default_events);
        conn.sock.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
              Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n",
        )?;
        let started = Instant::now();
        let mut frame = Vec::with_capacity(512);
        for i in 0..events {
            let due = started + interval * (i as u32);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            let payload = format!(
                "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\
                 \"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\
                 \"delta\":{{\"content\":\"tok \"}},\"finish_reason\":null}}],\"t_ns\":{}}}\n\n",
                epoch_ns(SystemTime::now())
            );
            frame.clear();
            frame.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
            frame.extend_from_slice(payload.as_bytes());
            frame.extend_from_slice(b"\r\n");
            conn.sock.write_all(&frame)?;
        }
        let done = b"data: [DONE]\n\n";
        conn.sock
            .write_all(format!("{:x}\r\n", done.len()).as_bytes())?;
        conn.sock.write_all(done)?;
        conn.sock.write_all(b"\r\n0\r\n\r\n")?;
    }
}

fn requested_events(body: &[u8]) -> Option<u64> {
    let i = find(body, b"\"max_tokens\":")? + 13;
    let digits: String = body[i..]
        .iter()
        .map(|&b| b as char)
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

// ----------------------------------------------------------- sse-delay ----

fn sse_delay(url: &str, total: u64, streams: u64, interval_ms: u64) -> Res<()> {
    let streams = streams.max(1);
    let per_stream = total.div_ceil(streams);
    let (tx, rx) = mpsc::channel::<Res<Vec<f64>>>();
    for i in 0..streams {
        let tx = tx.clone();
        let url = url.to_string();
        // Staggered, so that events of different streams do not all land
        // in the same instant.
        let offset = Duration::from_micros(interval_ms * 1000 * i / streams);
        thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                thread::sleep(offset);
                let _ = tx.send(stream_delays(&url, per_stream));
            })?;
    }
    drop(tx);
    let mut delays = Vec::new();
    for result in rx {
        delays.extend(result?);
    }
    if (delays.len() as u64) < total {
        return Err(format!("only {} stamped events arrived", delays.len()).into());
    }
    sort(&mut delays);
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    println!(
        "events={} median_us={:.1} p99_us={:.1} mean_us={:.1} max_us={:.1}",
        delays.len(),
        percentile(&delays, 50.0),
        percentile(&delays, 99.0),
        mean,
        delays[delays.len() - 1]
    );
    Ok(())
}

/// Microseconds between each event's send stamp and its arrival here.
fn stream_delays(url: &str, events: u64) -> Res<Vec<f64>> {
    let url = parse_url(url)?;
    let mut conn = Conn::open(&url.addr)?;
    write_request(
        &mut conn.sock,
        &url,
        "POST",
        &[],
        &chat_body(true, Some(events)),
    )?;
    let head = read_head(&mut conn)?;
    if head.status != 200 {
        return Err(format!("stream answered {}", head.status).into());
    }
    let mut splitter = Events::default();
    let mut delays = Vec::with_capacity(events as usize);
    read_body(&mut conn, &head, &mut |data, arrived| {
        let arrived = epoch_ns(arrived);
        splitter.push(data, |event| {
            if let Some(sent) = send_stamp(event) {
                delays.push((arrived as f64 - sent as f64) / 1000.0);
            }
        });
    })?;
    Ok(delays)
}

// ---------------------------------------------------------------- load ----

struct Tally {
    latencies_us: Vec<f64>,
    errors: usize,
}

fn load(url: &str, conc: usize, secs: f64, stream: bool, headers: &[&str]) -> Res<()> {
    let url = Arc::new(parse_url(url)?);
    let headers: Arc<Vec<String>> = Arc::new(headers.iter().map(|h| h.to_string()).collect());
    let body = Arc::new(chat_body(stream, None));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let reported = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..conc {
        let (url, headers, body, reported) =
            (url.clone(), headers.clone(), body.clone(), reported.clone());
        handles.push(
            thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || load_loop(&url, &headers, &body, deadline, &reported))?,
        );
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let tally = h.join().map_err(|_| "a load thread panicked")?;
        all.extend(tally.latencies_us);
        errors += tally.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    sort(&mut all);
    println!(
        "requests={} errors={} rps={:.1} p50_ms={:.3} p99_ms={:.3}",
        all.len(),
        errors,
        all.len() as f64 / elapsed,
        percentile(&all, 50.0) / 1000.0,
        percentile(&all, 99.0) / 1000.0
    );
    Ok(())
}

fn load_loop(
    url: &Url,
    headers: &[String],
    body: &[u8],
    deadline: Instant,
    reported: &AtomicBool,
) -> Tally {
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(4096),
        errors: 0,
    };
    let mut conn: Option<Conn> = None;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let outcome = (|| -> Res<(u16, bool, Vec<u8>)> {
            if conn.is_none() {
                conn = Some(Conn::open(&url.addr)?);
            }
            let c = conn.as_mut().ok_or("no connection")?;
            write_request(&mut c.sock, url, "POST", &headers, body)?;
            let head = read_head(c)?;
            let mut first = Vec::new();
            read_body(c, &head, &mut |d, _| {
                if head.status != 200 && first.len() < 300 {
                    first.extend_from_slice(&d[..d.len().min(300)]);
                }
            })?;
            Ok((head.status, head.close, first))
        })();
        match outcome {
            Ok((200, close, _)) => {
                tally.latencies_us.push(t0.elapsed().as_secs_f64() * 1e6);
                if close {
                    conn = None;
                }
            }
            Ok((status, close, first)) => {
                tally.errors += 1;
                if !reported.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "bench_client: first error: HTTP {status}: {}",
                        String::from_utf8_lossy(&first)
                    );
                }
                if close {
                    conn = None;
                }
            }
            Err(e) => {
                tally.errors += 1;
                if !reported.swap(true, Ordering::SeqCst) {
                    eprintln!("bench_client: first error: {e}");
                }
                conn = None;
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    tally
}

// --------------------------------------------------------- spawn floor ----

/// Concurrency 1, floor and server in turn on one thread: a run of the CLI
/// directly, then one request through the server, and again. Host drift
/// (it moves process start-up by more than the overhead measured) then
/// touches both sides alike, where separate runs of a second each caught
/// it on one side only.
fn claude_paired(url: &str, cmd: &str, secs: f64, stream: bool) -> Res<()> {
    let url = parse_url(url)?;
    let headers = ["X-Claude-Code: true"];
    let body = chat_body(stream, None);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let (mut floor, mut floor_answer, mut server) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(16 * 1024);
    let mut conn = Conn::open(&url.addr)?;
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let t0 = Instant::now();
        let answered = run_cli_once(cmd, &session_id(n), &mut out)?;
        floor.push(t0.elapsed().as_secs_f64() * 1e6);
        floor_answer.push((answered - t0).as_secs_f64() * 1e6);
        let t0 = Instant::now();
        write_request(&mut conn.sock, &url, "POST", &headers, &body)?;
        let head = read_head(&mut conn)?;
        read_body(&mut conn, &head, &mut |_, _| {})?;
        if head.status != 200 {
            return Err(format!("HTTP {} from the server", head.status).into());
        }
        server.push(t0.elapsed().as_secs_f64() * 1e6);
        if head.close {
            conn = Conn::open(&url.addr)?;
        }
    }
    sort(&mut floor);
    sort(&mut floor_answer);
    sort(&mut server);
    let p50 = |v: &[f64]| percentile(v, 50.0) / 1000.0;
    println!(
        "pairs={} floor_p50_ms={:.3} server_p50_ms={:.3} added_p50_ms={:.3} \
         floor_answer_p50_ms={:.3} added_to_answer_p50_ms={:.3}",
        floor.len(),
        p50(&floor),
        p50(&server),
        p50(&server) - p50(&floor),
        p50(&floor_answer),
        p50(&server) - p50(&floor_answer),
    );
    Ok(())
}

/// The arguments the server gives the CLI for a new streamed session.
fn cli_args(session: &str) -> Vec<String> {
    [
        "-p",
        "Say hello.",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--tools",
        "",
        "--model",
        "haiku",
        "--session-id",
        session,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn session_id(n: u64) -> String {
    let t = epoch_ns(SystemTime::now());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (n >> 12) & 0xfff,
        n & 0xfff,
        (t as u64) & 0xffff_ffff_ffff
    )
}

fn spawn_floor(cmd: &str, conc: usize, secs: f64) -> Res<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let counter = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..conc {
        let cmd = cmd.to_string();
        let (counter, failures) = (counter.clone(), failures.clone());
        handles.push(thread::Builder::new().stack_size(SMALL_STACK).spawn(
            move || -> Vec<f64> {
                let mut lat = Vec::new();
                let mut out = Vec::with_capacity(16 * 1024);
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::SeqCst) as u64;
                    let t0 = Instant::now();
                    match run_cli_once(&cmd, &session_id(n), &mut out) {
                        Ok(_) => lat.push(t0.elapsed().as_secs_f64() * 1e6),
                        Err(e) => {
                            if failures.fetch_add(1, Ordering::SeqCst) == 0 {
                                eprintln!("bench_client: spawn failed: {e}");
                            }
                        }
                    }
                }
                lat
            },
        )?);
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "a spawn thread panicked")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    sort(&mut all);
    println!(
        "runs={} errors={} rps={:.1} p50_ms={:.3} p99_ms={:.3}",
        all.len(),
        failures.load(Ordering::SeqCst),
        all.len() as f64 / elapsed,
        percentile(&all, 50.0) / 1000.0,
        percentile(&all, 99.0) / 1000.0
    );
    Ok(())
}

/// Spawns the CLI the way the server does (argument vector, cleared
/// environment, own process group, stdin closed), reads stdout to EOF and
/// reaps it. Returns when the `result` line had arrived: the moment the
/// answer was complete, which the server answers at.
fn run_cli_once(cmd: &str, session: &str, out: &mut Vec<u8>) -> Res<Instant> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    // The server hands its children its own PATH; the floor must look the
    // fake CLI's `cat` up along the same one (the bench starts both with
    // the caller's PATH), or the comparison measures PATH lengths.
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let mut child = Command::new(cmd)
        .args(cli_args(session))
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .env("CLAUDE_CODE_MAX_RETRIES", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    out.clear();
    let mut answered = None;
    if let Some(mut stdout) = child.stdout.take() {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            // The marker may straddle two reads.
            let from = out.len().saturating_sub(RESULT_MARKER.len());
            out.extend_from_slice(&buf[..n]);
            if answered.is_none() && contains(&out[from..], RESULT_MARKER) {
                answered = Some(Instant::now());
            }
        }
    }
    let mut err = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_end(&mut err)?;
    }
    let status = child.wait()?;
    match answered {
        Some(at) if status.success() => Ok(at),
        _ => Err(format!("CLI exited with {status}, {} bytes of output", out.len()).into()),
    }
}

/// Only a key outside any string looks like this (quotes inside a JSON
/// string are escaped).
const RESULT_MARKER: &[u8] = b"\"type\":\"result\"";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// -------------------------------------------------------- hold-streams ----

fn hold_streams(url: &str, n: usize, secs: f64, events: u64, headers: &[&str]) -> Res<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<f64, String>>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let headers: Arc<Vec<String>> = Arc::new(headers.iter().map(|h| h.to_string()).collect());
    for _ in 0..n {
        let (ready_tx, done_tx, headers) = (ready_tx.clone(), done_tx.clone(), headers.clone());
        let url = url.to_string();
        thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let result = hold_one(&url, events, &headers, started, &ready_tx);
                if let Err(e) = result {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
                let _ = done_tx.send(());
            })?;
    }
    drop((ready_tx, done_tx));
    let mut ready = 0;
    let mut failed = 0;
    let mut slowest_ms: f64 = 0.0;
    let mut first_error = None;
    // Streams not delivering by half-time are reported as not ready, and
    // the other half is left for measuring what the open ones cost.
    let ready_by = started + Duration::from_secs_f64(secs / 2.0);
    while ready + failed < n {
        let left = ready_by.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ok(ms)) => {
                ready += 1;
                slowest_ms = slowest_ms.max(ms);
            }
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(_) => break,
        }
    }
    println!("ready={ready} failed={failed} slowest_first_event_ms={slowest_ms:.1}");
    if let Some(e) = first_error {
        eprintln!("bench_client: first stream error: {e}");
    }
    io::stdout().flush()?;
    let mut finished = 0;
    while finished < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
        finished += 1;
    }
    println!("done finished={finished}");
    Ok(())
}

fn hold_one(
    url: &str,
    events: u64,
    headers: &[String],
    started: Instant,
    ready: &mpsc::Sender<Result<f64, String>>,
) -> Res<()> {
    let url = parse_url(url)?;
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut conn = Conn::open(&url.addr)?;
    write_request(
        &mut conn.sock,
        &url,
        "POST",
        &headers,
        &chat_body(true, (events > 0).then_some(events)),
    )?;
    let head = read_head(&mut conn)?;
    if head.status != 200 {
        return Err(format!("stream answered {}", head.status).into());
    }
    let mut told = false;
    read_body(&mut conn, &head, &mut |_, _| {
        if !told {
            told = true;
            let _ = ready.send(Ok(started.elapsed().as_secs_f64() * 1000.0));
        }
    })?;
    Ok(())
}

// ------------------------------------------------------------- startup ----

fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Status of `GET /health`, or an error while nothing listens yet.
fn health_status(addr: &str) -> Res<u16> {
    let url = Url {
        addr: addr.to_string(),
        path: "/health".into(),
    };
    let mut conn = Conn::open(addr)?;
    write_request(&mut conn.sock, &url, "GET", &["Connection: close"], &[])?;
    Ok(read_head(&mut conn)?.status)
}

fn startup(bin: &str, runs: u64) -> Res<()> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let t0 = Instant::now();
        let mut child = Command::new(bin)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let outcome = loop {
            match health_status(&addr) {
                Ok(200) => break Ok(t0.elapsed()),
                _ if t0.elapsed() > Duration::from_secs(5) => {
                    break Err("no /health 200 within 5 s")
                }
                _ => thread::sleep(Duration::from_micros(50)),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        times.push(outcome?.as_secs_f64() * 1000.0);
    }
    sort(&mut times);
    println!(
        "runs={} median_ms={:.2} min_ms={:.2} max_ms={:.2}",
        times.len(),
        percentile(&times, 50.0),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

fn wait_health(url: &str, timeout_ms: u64) -> Res<()> {
    let url = parse_url(url)?;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut last = String::from("nothing listening");
    while Instant::now() < deadline {
        match health_status(&url.addr) {
            Ok(200) => return Ok(()),
            Ok(s) => last = format!("/health answered {s}"),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(5));
    }
    Err(format!("{} not healthy within {timeout_ms} ms: {last}", url.addr).into())
}

// ------------------------------------------------------------- request ----

fn one_request(url: &str, stream: bool, headers: &[&str]) -> Res<()> {
    let url = parse_url(url)?;
    let mut conn = Conn::open(&url.addr)?;
    write_request(
        &mut conn.sock,
        &url,
        "POST",
        headers,
        &chat_body(stream, None),
    )?;
    let head = read_head(&mut conn)?;
    let mut body = Vec::new();
    read_body(&mut conn, &head, &mut |d, _| body.extend_from_slice(d))?;
    let mut events = 0;
    Events::default().push(&body, |_| events += 1);
    let done = find(&body, b"data: [DONE]").is_some();
    println!(
        "status={} bytes={} events={events} done={done}",
        head.status,
        body.len()
    );
    if head.status != 200 {
        let shown = &body[..body.len().min(400)];
        eprintln!("bench_client: body: {}", String::from_utf8_lossy(shown));
    }
    Ok(())
}
