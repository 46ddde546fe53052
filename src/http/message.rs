//! The values a request turns into on its way through the server: what
//! was asked ([`Head`], [`Incoming`]) and what is answered ([`Reply`]),
//! with the work that may only run once the answer is out ([`Afterwards`]).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::config::Secret;

use super::{ClientWatch, SseWriter};

/// What every request has, read from its head before anything else: the
/// pipeline needs it for the common headers and the access log even when
/// the request is refused.
#[derive(Debug, Clone)]
pub struct Head {
    pub request_id: String,
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub origin: Option<String>,
    pub client_ip: IpAddr,
}

impl Head {
    /// `trust_proxy`: take the client's address from `X-Forwarded-For`.
    pub fn of(rq: &tiny_http::Request, trust_proxy: bool) -> Head {
        Head {
            request_id: pick_request_id(header(rq, "X-Request-ID")),
            method: rq.method().as_str().to_string(),
            path: rq.url().split('?').next().unwrap_or("").to_string(),
            origin: header(rq, "Origin").map(str::to_string),
            client_ip: client_ip(rq, trust_proxy),
        }
    }
}

/// A request the pipeline has admitted and whose body it has read.
pub struct Incoming {
    pub request_id: String,
    pub method: String,
    pub path: String,
    /// The query string, without its `?`.
    pub query: Option<String>,
    /// Header names as sent; look-ups are case-insensitive.
    pub headers: Vec<(String, String)>,
    pub client_ip: IpAddr,
    pub body: Vec<u8>,
    /// The server key the client authenticated with, when keys are on.
    pub api_key: Option<Secret>,
    /// Whether the client is still there, for answers that take long
    /// (Claude Code turns); the pipeline ends it before writing.
    pub client: Option<Arc<ClientWatch>>,
}

impl Incoming {
    /// The request as far as its head goes: no body and no key yet.
    pub fn from_head(rq: &tiny_http::Request, head: &Head) -> Incoming {
        Incoming {
            request_id: head.request_id.clone(),
            method: head.method.clone(),
            path: head.path.clone(),
            query: rq.url().split_once('?').map(|(_, q)| q.to_string()),
            headers: rq
                .headers()
                .iter()
                .map(|h| (h.field.as_str().to_string(), h.value.to_string()))
                .collect(),
            client_ip: head.client_ip,
            body: Vec::new(),
            api_key: None,
            client: None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// Work left once an answer has been written, run on the same thread after
/// the last byte and the access log: reaping a `claude` child that
/// answered before it exited, or reading an upstream body to its end so
/// the connection can be reused.
pub type Afterwards = Box<dyn FnOnce() + Send>;

/// Writes the events of one streaming response, after the SSE head. The
/// pipeline sends `[DONE]` after it and runs the work it returns once that
/// is out.
pub trait StreamBody: Send {
    fn write_events(self: Box<Self>, sse: &mut SseWriter) -> Option<Afterwards>;
}

pub enum Body {
    Full(Vec<u8>),
    Stream(Box<dyn StreamBody>),
    /// Bytes copied from a reader as they come (a relayed download), with
    /// their length when known (else the answer is chunked).
    Reader {
        reader: Box<dyn std::io::Read + Send>,
        length: Option<u64>,
    },
}

/// What a Claude Code turn tells its client besides the answer. The
/// pipeline sends it as `X-Claude-*` headers and logs the session and
/// whether the turn was warm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnFacts {
    pub session_id: String,
    /// The turn started this session.
    pub created: bool,
    /// The turn ran on a CLI process that was already up.
    pub warm: bool,
    /// Parameters accepted but not honoured, as the client named them.
    pub ignored: Vec<String>,
    /// A whole answer's share of the session's cost (dollars, as text)
    /// and its time in the CLI, in ms.
    pub cost: Option<(String, u64)>,
    /// The login the turn ran on (`CLAUDE_ACCOUNTS`).
    pub account: String,
}

impl TurnFacts {
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("X-Claude-Session-ID".to_string(), self.session_id.clone())];
        if self.created {
            headers.push(("X-Claude-Session-Created".into(), "true".into()));
        }
        headers.push(("X-Claude-Warm".into(), self.warm.to_string()));
        if !self.ignored.is_empty() {
            headers.push(("X-Claude-Ignored-Params".into(), self.ignored.join(",")));
        }
        if let Some((usd, duration_ms)) = &self.cost {
            headers.push(("X-Claude-Cost-USD".into(), usd.clone()));
            headers.push(("X-Claude-Duration-Ms".into(), duration_ms.to_string()));
        }
        headers
    }
}

/// What a handler answers. Common headers (request id, security, CORS)
/// are added by the pipeline, not here.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Run after the answer is written (see [`Afterwards`]).
    pub afterwards: Vec<Afterwards>,
    /// What a Claude Code turn tells its client (sent as headers).
    pub turn: Option<TurnFacts>,
}

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::bytes(
            status,
            "application/json",
            serde_json::to_vec(value).unwrap_or_default(),
        )
    }

    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Full(body),
            afterwards: Vec::new(),
            turn: None,
        }
    }

    pub fn stream(body: Box<dyn StreamBody>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            body: Body::Stream(body),
            afterwards: Vec::new(),
            turn: None,
        }
    }

    pub fn with_turn(mut self, facts: TurnFacts) -> Reply {
        self.turn = Some(facts);
        self
    }

    /// `work`, if any, run after the answer is written.
    pub fn with_afterwards(mut self, work: Option<Afterwards>) -> Reply {
        self.afterwards.extend(work);
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn header<'a>(rq: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
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

fn client_ip(rq: &tiny_http::Request, trust_proxy: bool) -> IpAddr {
    let peer = rq
        .remote_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !trust_proxy {
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
}
