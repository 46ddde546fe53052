//! OpenAI passthrough backend: forwards a chat request to the configured
//! OpenAI-compatible upstream and relays what comes back.
//!
//! The request body goes out byte for byte as the client sent it; the
//! response comes back with its status, body and content type unchanged
//! (plus the upstream's rate-limit headers), or as SSE events relayed one
//! by one. This module decides which key is used and which client headers
//! may travel upstream; `upstream` owns the HTTP client and the failure
//! mapping, `events` the SSE splitting, `relay` the streaming loop.
//!
//! The upstream URL comes only from the server's config (never from a
//! client), and neither it nor any key appears in a message or log line.

mod events;
mod forward;
mod relay;
mod resolve;
pub(crate) mod upstream;

use parking_lot::RwLock;
use std::time::{Duration, Instant};

use serde_json::json;
use ureq::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use ureq::Agent;

use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::http::{Body, Incoming, Reply};
use relay::UpstreamStream;

/// Header a client may send its own OpenAI key in.
pub const CLIENT_KEY_HEADER: &str = "X-OpenAI-API-Key";
/// Longest client key accepted (real keys are well under this).
pub const CLIENT_KEY_MAX: usize = 256;
/// Client headers forwarded as they are: they pick the OpenAI account the
/// usage is billed to, which is the client's call.
const FORWARDED_HEADERS: &[&str] = &["OpenAI-Organization", "OpenAI-Project"];
/// Largest non-streaming upstream body relayed.
const BODY_LIMIT: u64 = 32 * 1024 * 1024;

pub use forward::check_path;

pub struct Passthrough {
    enabled: bool,
    server_key: Option<Secret>,
    allow_client_key: bool,
    url: String,
    /// `OPENAI_BASE_URL`: other routes go to it with their path after `/v1`.
    base_url: String,
    /// `PASSTHROUGH_MAX_BODY_BYTES`.
    max_body: u64,
    connect_timeout: Duration,
    total_timeout: Duration,
    idle_timeout: Duration,
    /// Built on first use, so a server that never proxies (or only
    /// answers probes) never sets up TLS; dropped when the server has gone
    /// quiet, with the connections parked in it.
    agent: RwLock<Option<Agent>>,
}

/// Whether a request waits for one whole answer or relays a stream; it
/// decides which timeouts apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Whole,
    Stream,
}

impl Passthrough {
    pub fn new(config: &Config) -> Passthrough {
        Passthrough {
            enabled: config.openai_passthrough_enabled,
            server_key: config.openai_api_key.clone(),
            allow_client_key: config.allow_client_openai_key,
            url: format!("{}/chat/completions", config.openai_base_url),
            base_url: config.openai_base_url.clone(),
            max_body: config.passthrough_max_body_bytes,
            connect_timeout: config.upstream_connect_timeout,
            total_timeout: config.upstream_timeout,
            idle_timeout: config.upstream_idle_timeout,
            agent: RwLock::new(None),
        }
    }

    /// The key this request is sent upstream with: the client's own when
    /// allowed and sent (an empty header counts as not sent), else the
    /// server's.
    fn pick_key(&self, rq: &Incoming) -> Result<Secret, ApiError> {
        if !self.enabled {
            return Err(ApiError::PassthroughDisabled);
        }
        let client = if self.allow_client_key {
            rq.header(CLIENT_KEY_HEADER)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        } else {
            None
        };
        match (client, &self.server_key) {
            (Some(key), _) => {
                check_client_key(key)?;
                Ok(Secret::new(key))
            }
            (None, Some(key)) => Ok(key.clone()),
            (None, None) => Err(ApiError::PassthroughNotConfigured),
        }
    }

    fn agent(&self) -> Agent {
        // A read lock on the hot path: with dozens of threads on two cores,
        // one preempted while holding a mutex would stall all the others.
        if let Some(agent) = self.agent.read().as_ref() {
            return agent.clone();
        }
        self.agent
            .write()
            .get_or_insert_with(|| upstream::agent(self.connect_timeout))
            .clone()
    }

    /// Sends the request and waits for the upstream's status and headers.
    /// A redirect is refused here, before anything of it reaches a client.
    fn send(
        &self,
        rq: &Incoming,
        shape: Shape,
    ) -> Result<ureq::http::Response<ureq::Body>, ApiError> {
        let key = self.pick_key(rq)?;
        let mut builder = self
            .agent()
            .post(&self.url)
            .header("Authorization", format!("Bearer {}", key.expose()))
            .header("Content-Type", "application/json")
            .header(
                "Accept",
                match shape {
                    Shape::Whole => "application/json",
                    Shape::Stream => "text/event-stream",
                },
            );
        for name in FORWARDED_HEADERS {
            if let Some(value) = rq.header(name) {
                check_forwarded(name, value)?;
                builder = builder.header(*name, value);
            }
        }
        // A whole answer gets one total budget. A stream may run for as long
        // as it keeps talking: each read is bounded by the idle limit, and
        // only sending the request and waiting for the response head by the
        // total one.
        let builder = match shape {
            Shape::Whole => builder
                .config()
                .timeout_global(Some(self.total_timeout))
                .build(),
            Shape::Stream => builder
                .config()
                .timeout_per_read(Some(self.idle_timeout))
                .timeout_send_request(Some(self.total_timeout))
                .timeout_send_body(Some(self.total_timeout))
                .timeout_recv_response(Some(self.total_timeout))
                .build(),
        };
        let started = Instant::now();
        let response = builder.send(&rq.body[..]).map_err(|e| {
            let (api, cause) = upstream::classify(&e);
            log_failure(rq, cause);
            api
        })?;
        let status = response.status().as_u16();
        log::debug!(
            "{}",
            json!({
                "event": "upstream_response",
                "request_id": rq.request_id,
                "status": status,
                "head_ms": started.elapsed().as_millis() as u64,
            })
        );
        if response.status().is_redirection() {
            log_failure(rq, "redirect");
            return Err(upstream::redirect_refused(status));
        }
        Ok(response)
    }
}

/// The whole upstream response as the client's: status, body and content
/// type unchanged, plus the relayed headers.
fn relay_whole(
    rq: &Incoming,
    response: ureq::http::Response<ureq::Body>,
) -> Result<Reply, ApiError> {
    relay_whole_with(rq, response, &[])
}

/// [`relay_whole`], also relaying the headers `more` names.
fn relay_whole_with(
    rq: &Incoming,
    response: ureq::http::Response<ureq::Body>,
    more: &[ureq::http::HeaderName],
) -> Result<Reply, ApiError> {
    let (parts, mut body) = response.into_parts();
    let bytes = body
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_vec()
        .map_err(|e| {
            let (api, cause) = upstream::classify(&e);
            log_failure(rq, cause);
            api
        })?;
    let mut headers = Vec::with_capacity(8);
    // The body is relayed as bytes, so the headers that say how to read
    // them travel with it. No compression is asked for, but an upstream
    // that compresses anyway must not leave the client guessing.
    for (name, header) in [
        ("Content-Type", CONTENT_TYPE),
        ("Content-Encoding", CONTENT_ENCODING),
    ] {
        if let Some(value) = parts.headers.get(header).and_then(|v| v.to_str().ok()) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    for name in more {
        if let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    upstream::relay_headers(&parts.headers, &mut headers);
    Ok(Reply {
        status: parts.status.as_u16(),
        headers,
        body: Body::Full(bytes),
        afterwards: Vec::new(),
        turn: None,
    })
}

fn log_failure(rq: &Incoming, cause: &str) {
    log::warn!(
        "{}",
        json!({"event": "upstream_failed", "request_id": rq.request_id, "cause": cause})
    );
}

fn check_client_key(key: &str) -> Result<(), ApiError> {
    if key.len() <= CLIENT_KEY_MAX && key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err(ApiError::InvalidHeaderValue {
        header: CLIENT_KEY_HEADER,
        message: format!(
            "Invalid X-OpenAI-API-Key header: expected an OpenAI key of at most \
             {CLIENT_KEY_MAX} printable characters without spaces."
        ),
    })
}

fn check_forwarded(name: &'static str, value: &str) -> Result<(), ApiError> {
    if value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Ok(());
    }
    Err(ApiError::InvalidHeaderValue {
        header: name,
        message: format!("Invalid {name} header: expected at most 256 printable characters."),
    })
}

/// A chat completion relayed: its body as received, the answer as the
/// upstream gives it.
impl Passthrough {
    /// `rq` relayed, and the upstream's whole answer.
    pub fn complete(&self, rq: &Incoming) -> Result<Reply, ApiError> {
        let response = self.send(rq, Shape::Whole)?;
        relay_whole(rq, response)
    }

    /// An upstream error (or a 2xx that is not an event stream) comes back
    /// as an ordinary response; only a real stream becomes SSE.
    pub fn stream(&self, rq: &Incoming) -> Result<Reply, ApiError> {
        let response = self.send(rq, Shape::Stream)?;
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !response.status().is_success() || !is_event_stream {
            return relay_whole(rq, response);
        }
        let (parts, body) = response.into_parts();
        let relay = UpstreamStream::new(body.into_reader(), rq.request_id.clone());
        let mut reply = Reply::stream(Box::new(relay));
        upstream::relay_headers(&parts.headers, &mut reply.headers);
        Ok(reply)
    }

    /// `/health`'s word for the relay: `ok`, `no_key` or `disabled`.
    pub fn health(&self) -> &'static str {
        match (
            self.enabled,
            self.server_key.is_some() || self.allow_client_key,
        ) {
            (false, _) => "disabled",
            (true, false) => "no_key",
            (true, true) => "ok",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(headers: &[(&str, &str)]) -> Incoming {
        Incoming {
            request_id: "r".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            query: None,
            body: Vec::new(),
            api_key: None,
            client: None,
        }
    }

    fn backend(server_key: Option<&str>, allow_client: bool, enabled: bool) -> Passthrough {
        let mut config = Config::for_tests("/tmp/unused");
        config.openai_api_key = server_key.map(Secret::new);
        config.allow_client_openai_key = allow_client;
        config.openai_passthrough_enabled = enabled;
        Passthrough::new(&config)
    }

    #[test]
    fn key_sources() {
        let client = [(CLIENT_KEY_HEADER, "sk-client")];
        let empty = [(CLIENT_KEY_HEADER, "  ")];
        let pick = |b: &Passthrough, h: &[(&str, &str)]| {
            b.pick_key(&incoming(h))
                .map(|k| k.expose().to_string())
                .map_err(|e| e.code())
        };
        let both = backend(Some("sk-server"), true, true);
        assert_eq!(pick(&both, &client), Ok("sk-client".into()));
        assert_eq!(pick(&both, &[]), Ok("sk-server".into()));
        assert_eq!(pick(&both, &empty), Ok("sk-server".into()));
        let server_only = backend(Some("sk-server"), false, true);
        assert_eq!(pick(&server_only, &client), Ok("sk-server".into()));
        let client_only = backend(None, true, true);
        assert_eq!(pick(&client_only, &client), Ok("sk-client".into()));
        assert_eq!(pick(&client_only, &[]), Err("passthrough_not_configured"));
        let none = backend(None, false, true);
        assert_eq!(pick(&none, &client), Err("passthrough_not_configured"));
        let off = backend(Some("sk-server"), true, false);
        assert_eq!(pick(&off, &client), Err("passthrough_disabled"));
        let long = "k".repeat(CLIENT_KEY_MAX + 1);
        assert_eq!(
            pick(&both, &[(CLIENT_KEY_HEADER, &long)]),
            Err("invalid_header_value")
        );
        assert_eq!(
            pick(&both, &[(CLIENT_KEY_HEADER, "sk a")]),
            Err("invalid_header_value")
        );
    }

    #[test]
    fn health_words() {
        assert_eq!(backend(Some("k"), false, true).health(), "ok");
        assert_eq!(backend(None, true, true).health(), "ok");
        assert_eq!(backend(None, false, true).health(), "no_key");
        assert_eq!(backend(Some("k"), true, false).health(), "disabled");
    }
}
