//! One request from tiny_http to the socket, in one place: request id,
//! CORS preflight, routing (404/405), drain refusal, auth, rate limits,
//! body read with a bound, the handler (panics caught), the response with
//! its common headers, and the access log line.

use std::net::{IpAddr, Ipv4Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tiny_http::{Header, Request, Response};

use super::{cors, Body, Incoming, Reply, SseWriter};
use crate::app::App;
use crate::error::ApiError;
use crate::routes::{self, Route};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'"),
    ("Referrer-Policy", "no-referrer"),
];

/// What the pipeline learns while handling a request, for headers and the
/// access log.
#[derive(Default)]
pub struct Meta {
    pub mode: Option<&'static str>,
    pub key_mask: Option<String>,
    pub session_id: Option<String>,
    /// Rate-limit headers for a limited route, added to every answer.
    pub limit_headers: Vec<(String, String)>,
    /// Run when the response is finished (frees per-key concurrency).
    pub on_finish: Vec<Box<dyn FnOnce() + Send>>,
}

/// True for requests cheap enough to answer on the accepting thread, so
/// that probes and refusals never wait behind busy workers.
pub fn is_fast_path(app: &App, rq: &Request) -> bool {
    if app.draining.load(Ordering::SeqCst) {
        return true;
    }
    let path = rq.url().split('?').next().unwrap_or("");
    match rq.method().as_str() {
        "GET" => path == "/health" || path == "/v1/models",
        "OPTIONS" => true,
        _ => false,
    }
}

pub fn serve(app: &App, mut rq: Request) {
    let started = Instant::now();
    let request_id = pick_request_id(header(&rq, "X-Request-ID"));
    let method = rq.method().as_str().to_string();
    let path = rq.url().split('?').next().unwrap_or("").to_string();
    let origin = header(&rq, "Origin").map(str::to_string);
    let client_ip = client_ip(app, &rq);
    let mut meta = Meta::default();

    let outcome = catch_unwind(AssertUnwindSafe(|| {
        handle(app, &mut rq, &request_id, client_ip, &mut meta)
    }));
    let result = match outcome {
        Ok(result) => result,
        Err(_) => {
            log::error!("handler panicked (request_id={request_id})");
            Err(ApiError::InternalError {
                message: "Internal server error.".into(),
            })
        }
    };

    let mut headers: Vec<(String, String)> = Vec::with_capacity(16);
    headers.push(("X-Request-ID".into(), request_id.clone()));
    for (k, v) in SECURITY_HEADERS {
        headers.push((k.to_string(), v.to_string()));
    }
    if method == "OPTIONS" {
        headers.extend(cors::preflight_headers(
            &app.config.cors_allowed_origins,
            origin.as_deref(),
        ));
    } else {
        headers.extend(cors::response_headers(
            &app.config.cors_allowed_origins,
            origin.as_deref(),
        ));
    }
    if let Some(mode) = meta.mode {
        headers.push(("X-Backend-Mode".into(), mode.into()));
    }
    headers.append(&mut meta.limit_headers);

    let reply = match result {
        Ok(reply) => reply,
        Err(err) => {
            if err.status() >= 500 {
                log::warn!(
                    "{}",
                    json!({"event":"request_error","request_id":request_id,"code":err.code()})
                );
            }
            let mut reply = Reply::bytes(err.status(), "application/json", err.to_json_bytes());
            for (k, v) in err.extra_headers() {
                reply.headers.push((k.to_string(), v));
            }
            if matches!(err, ApiError::PayloadTooLarge { .. }) {
                // The unread rest of the body would be taken for the next
                // request on this connection.
                reply.headers.push(("Connection".into(), "close".into()));
            }
            reply
        }
    };
    let status = reply.status;
    let afterwards = reply.afterwards;
    let mut reply_headers = reply.headers;
    reply_headers.extend(headers);

    let (stream_events, more) = match reply.body {
        Body::Full(bytes) => {
            run_on_finish(&mut meta);
            let mut response = Response::from_data(bytes).with_status_code(status);
            for (k, v) in &reply_headers {
                if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                    response.add_header(h);
                }
            }
            if let Err(e) = rq.respond(response) {
                log::debug!("response write failed: {e}");
            }
            (None, None)
        }
        Body::Stream(body) => {
            let writer = rq.into_writer();
            let mut sse = SseWriter::start(writer, &reply_headers);
            let more = body.write_events(&mut sse);
            run_on_finish(&mut meta);
            let _ = sse.finish();
            (Some((sse.events_sent(), sse.is_broken())), more)
        }
    };
    run_on_finish(&mut meta);
    if log::log_enabled!(target: "access", log::Level::Info) {
        let mut line = json!({
            "event": "request",
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
            "client_ip": client_ip.to_string(),
        });
        if let Some(mode) = meta.mode {
            line["mode"] = mode.into();
        }
        if let Some(key) = &meta.key_mask {
            line["key"] = key.clone().into();
        }
        if let Some(sid) = &meta.session_id {
            line["session_id"] = sid.clone().into();
        }
        if let Some((events, broken)) = stream_events {
            line["stream_events"] = events.into();
            line["client_gone"] = broken.into();
        }
        log::info!(target: "access", "{line}");
    }
    for work in afterwards.into_iter().chain(more) {
        work();
    }
}

fn handle(
    app: &App,
    rq: &mut Request,
    request_id: &str,
    client_ip: IpAddr,
    meta: &mut Meta,
) -> Result<Reply, ApiError> {
    let method = rq.method().as_str().to_string();
    let path = rq.url().split('?').next().unwrap_or("").to_string();
    if method == "OPTIONS" {
        return Ok(Reply::bytes(204, "text/plain", Vec::new()));
    }
    let route = routes::resolve(&method, &path)?;
    if app.draining.load(Ordering::SeqCst) && route != Route::Health {
        return Err(ApiError::ServerShuttingDown);
    }

    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut incoming = Incoming {
        request_id: request_id.to_string(),
        method,
        path,
        headers,
        client_ip,
        body: Vec::new(),
        api_key: None,
    };

    if route.needs_auth() {
        app.admit(&incoming, meta)?;
        incoming.api_key = app.check_auth(&incoming, meta)?;
        app.admit_key(&incoming, meta)?;
    }
    if incoming.method == "POST" {
        check_content_type(incoming.header("Content-Type"))?;
        incoming.body = read_body(rq, BODY_LIMIT, app.config.body_timeout)?;
    }
    routes::handle(app, route, &incoming, meta)
}

/// Runs the finish hooks (once). The work is done by then and only the
/// last bytes are left to write; freeing slots before that write means a
/// client that sends its next request the moment it has read this answer
/// never finds its own previous request still counted.
fn run_on_finish(meta: &mut Meta) {
    for f in meta.on_finish.drain(..) {
        f();
    }
}

fn check_content_type(value: Option<&str>) -> Result<(), ApiError> {
    let media = value
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Reads at most `limit` bytes within `within`; a declared or actual larger
/// body is a 413 without buffering more than the limit. Each read is also
/// bounded by the socket's per-read limit, so a stalled client is noticed.
fn read_body(rq: &mut Request, limit: usize, within: Duration) -> Result<Vec<u8>, ApiError> {
    if rq.body_length().is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let deadline = Instant::now() + within;
    let mut body = Vec::with_capacity(rq.body_length().unwrap_or(0).min(limit));
    let reader = rq.as_reader();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(body),
            Ok(n) => {
                if body.len() + n > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk[..n]);
                if Instant::now() > deadline {
                    return Err(ApiError::RequestTimeout);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return Err(ApiError::RequestTimeout)
            }
            Err(_) => {
                return Err(ApiError::InvalidJson {
                    detail: "the body could not be read".into(),
                })
            }
        }
    }
}

fn header<'a>(rq: &'a Request, name: &str) -> Option<&'a str> {
    rq.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The client's own id when it is a sane token, else a fresh UUID.
fn pick_request_id(client: Option<&str>) -> String {
    match client {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            id.to_string()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

fn client_ip(app: &App, rq: &Request) -> IpAddr {
    let peer = rq
        .remote_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !app.config.trust_proxy {
        return peer;
    }
    // The trusted proxy appends the address it saw; entries to its left
    // came from the client and can be forged.
    header(rq, "X-Forwarded-For")
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert_eq!(pick_request_id(Some("abc-123")), "abc-123");
        assert_ne!(pick_request_id(Some("bad id\r\n")), "bad id\r\n");
        assert_eq!(pick_request_id(Some(&"a".repeat(200))).len(), 36);
        assert_eq!(pick_request_id(None).len(), 36);
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("text/plain")).is_err());
        assert!(check_content_type(None).is_err());
    }
}
