//! The HTTP side of the server: what a request looks like once read
//! ([`Incoming`]), what a handler answers ([`Reply`]), and the pieces that
//! turn one into the other (worker pool, pipeline, SSE writer, CORS).

pub mod cors;
pub mod pipeline;
pub mod pool;
pub mod sse;
pub mod stack;
pub mod threads;

use std::net::IpAddr;

use crate::config::Secret;
pub use sse::SseWriter;

/// A request after the pipeline has read and checked it.
pub struct Incoming {
    pub request_id: String,
    pub method: String,
    pub path: String,
    /// Header names as sent; look-ups are case-insensitive.
    pub headers: Vec<(String, String)>,
    pub client_ip: IpAddr,
    pub body: Vec<u8>,
    /// The server key the client authenticated with, when keys are on.
    pub api_key: Option<Secret>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Work left once an answer has been written, run by the pipeline on the
/// same thread after the last byte (and the access log): reaping a `claude`
/// child that answered before it exited, for one.
pub type Afterwards = Box<dyn FnOnce() + Send>;

/// Writes the events of one streaming response. Runs on the worker after
/// the pipeline has sent the SSE head; the pipeline sends `[DONE]` after,
/// then runs what this returns.
pub trait StreamBody: Send {
    fn write_events(self: Box<Self>, sse: &mut SseWriter) -> Option<Afterwards>;
}

pub enum Body {
    Full(Vec<u8>),
    Stream(Box<dyn StreamBody>),
}

/// What a handler answers. Common headers (request id, security, CORS)
/// are added by the pipeline, not here.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Run after the answer is written (see [`Afterwards`]).
    pub afterwards: Option<Afterwards>,
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
            afterwards: None,
        }
    }

    pub fn stream(body: Box<dyn StreamBody>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            body: Body::Stream(body),
            afterwards: None,
        }
    }

    pub fn with_afterwards(mut self, work: Afterwards) -> Reply {
        self.afterwards = Some(work);
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
