//! Every other `/v1/` route: any method and path go to the upstream as the
//! client sent them (query string, body bytes and content type included),
//! and the answer comes back as the upstream gave it: its status, its body
//! (JSON, binary, or an event stream relayed event by event, exactly) and
//! the headers that say how to read it.
//!
//! Neither body is buffered: the request's streams from the client's
//! connection to the upstream's, within `PASSTHROUGH_MAX_BODY_BYTES`, and
//! the answer's back as it arrives, so an upload or a download of any size
//! holds a few kilobytes. The path is checked before anything leaves:
//! nothing may climb out of the upstream's `/v1/`.

use std::io::{self, Read};

use ureq::http::header::{CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use ureq::http::{Method, Request};
use ureq::SendBody;

use super::relay::UpstreamStream;
use super::{check_forwarded, log_failure, relay_whole_with, upstream, Passthrough};
use crate::error::ApiError;
use crate::http::{Body, Incoming, Reply};

/// Client headers that travel with a relayed request, besides the key.
const FORWARDED: &[&str] = &[
    "Content-Type",
    "Accept",
    "OpenAI-Organization",
    "OpenAI-Project",
    "OpenAI-Beta",
];

/// Refuses a path that could reach outside the upstream's `/v1/`: a `.` or
/// `..` segment, an empty one, a backslash, or an encoded dot, slash or
/// backslash (which a server further on might decode into one of those).
pub fn check_path(path: &str) -> Result<(), ApiError> {
    let lower = path.to_ascii_lowercase();
    let encoded = ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e));
    let segments = path.trim_start_matches('/').split('/');
    let odd_segment = segments
        .clone()
        .any(|s| s.is_empty() || s == "." || s == "..");
    if encoded || odd_segment || path.contains('\\') {
        return Err(ApiError::InvalidPath);
    }
    Ok(())
}

impl Passthrough {
    /// Relays `rq`, whose body is read from `body` as it is sent upstream.
    pub fn forward(&self, rq: &Incoming, body: &mut dyn Read) -> Result<Reply, ApiError> {
        let key = self.pick_key(rq)?;
        let declared = rq
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            return Err(ApiError::PayloadTooLarge {
                limit: usize::try_from(self.max_body).unwrap_or(usize::MAX),
                setting: "PASSTHROUGH_MAX_BODY_BYTES",
            });
        }
        let path = rq.path.strip_prefix("/v1").unwrap_or(&rq.path);
        let mut url = format!("{}{path}", self.base_url);
        if let Some(query) = &rq.query {
            url.push('?');
            url.push_str(query);
        }
        let method =
            Method::from_bytes(rq.method.as_bytes()).map_err(|_| ApiError::MethodNotAllowed {
                allow: "GET, POST, PUT, PATCH, DELETE",
            })?;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("Authorization", format!("Bearer {}", key.expose()));
        for name in FORWARDED {
            if let Some(value) = rq.header(name) {
                check_forwarded(name, value)?;
                builder = builder.header(*name, value);
            }
        }
        if let Some(length) = declared {
            builder = builder.header("Content-Length", length.to_string());
        }
        let has_body = declared.is_some_and(|n| n > 0)
            || rq
                .header("Transfer-Encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let request = builder.body(()).map_err(|_| ApiError::InvalidPath)?;
        let agent = self.agent();
        // Timeouts as for a chat stream: the answer may be an event stream
        // that runs as long as it keeps talking.
        let (parts, ()) = agent
            .configure_request(request)
            .timeout_per_read(Some(self.idle_timeout))
            .timeout_send_request(Some(self.total_timeout))
            .timeout_send_body(Some(self.total_timeout))
            .timeout_recv_response(Some(self.total_timeout))
            .build()
            .into_parts();
        let mut limited = Limited {
            inner: body,
            left: self.max_body,
            over: false,
        };
        let sent = if has_body {
            agent.run(Request::from_parts(
                parts,
                SendBody::from_reader(&mut limited),
            ))
        } else {
            agent.run(Request::from_parts(parts, SendBody::none()))
        };
        let response = sent.map_err(|e| {
            if limited.over {
                return ApiError::PayloadTooLarge {
                    limit: usize::try_from(self.max_body).unwrap_or(usize::MAX),
                    setting: "PASSTHROUGH_MAX_BODY_BYTES",
                };
            }
            let (api, cause) = upstream::classify(&e);
            log_failure(rq, cause);
            api
        })?;
        if response.status().is_redirection() {
            log_failure(rq, "redirect");
            return Err(upstream::redirect_refused(response.status().as_u16()));
        }
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if method == Method::HEAD || (is_event_stream && !response.status().is_success()) {
            return relay_whole_with(rq, response, &[CONTENT_DISPOSITION]);
        }
        if !is_event_stream {
            return Ok(relay_as_read(response));
        }
        let (parts, body) = response.into_parts();
        let relay = UpstreamStream::exact(body.into_reader(), rq.request_id.clone());
        let mut reply = Reply::stream(Box::new(relay));
        if let Some(encoding) = parts.headers.get(CONTENT_ENCODING) {
            if let Ok(value) = encoding.to_str() {
                reply
                    .headers
                    .push(("Content-Encoding".into(), value.into()));
            }
        }
        upstream::relay_headers(&parts.headers, &mut reply.headers);
        Ok(reply)
    }
}

/// A whole answer copied to the client as it arrives (a file's contents
/// may be larger than anything worth holding), with the headers that say
/// how to read it.
fn relay_as_read(response: ureq::http::Response<ureq::Body>) -> Reply {
    let (parts, body) = response.into_parts();
    let length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut headers = Vec::with_capacity(8);
    for (name, header) in [
        ("Content-Type", CONTENT_TYPE),
        ("Content-Encoding", CONTENT_ENCODING),
        ("Content-Disposition", CONTENT_DISPOSITION),
    ] {
        if let Some(value) = parts.headers.get(header).and_then(|v| v.to_str().ok()) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    upstream::relay_headers(&parts.headers, &mut headers);
    Reply {
        status: parts.status.as_u16(),
        headers,
        body: Body::Reader {
            reader: Box::new(body.into_reader()),
            length,
        },
        afterwards: Vec::new(),
        turn: None,
    }
}

/// A body reader that stops at the limit: past it, reading fails and the
/// upstream never gets a complete request.
struct Limited<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    /// The body went over the limit.
    over: bool,
}

impl Read for Limited<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One more byte would be over: see whether there is one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.over = true;
                    Err(io::Error::other(
                        "the body is over PASSTHROUGH_MAX_BODY_BYTES",
                    ))
                }
            };
        }
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_v1_are_refused() {
        for ok in [
            "/v1/embeddings",
            "/v1/files/file-abc/content",
            "/v1/models/ft:gpt-4o:x",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/v1/../health",
            "/v1/./models",
            "/v1/files/%2e%2e/x",
            "/v1/files/%2E%2E/x",
            "/v1/a%2Fb",
            "/v1/a%2fb",
            "/v1//files",
            "/v1/files/..%2fx",
            "/v1/files/a%5cb",
            "/v1/files\\..\\x",
            "/v1/files/",
        ] {
            assert_eq!(check_path(bad), Err(ApiError::InvalidPath), "{bad}");
        }
    }

    #[test]
    fn a_body_over_the_limit_fails_before_its_end() {
        let mut body: &[u8] = b"0123456789";
        let mut limited = Limited {
            inner: &mut body,
            left: 4,
            over: false,
        };
        let mut out = Vec::new();
        assert!(limited.read_to_end(&mut out).is_err());
        assert_eq!(out, b"0123");
        assert!(limited.over);
        let mut body: &[u8] = b"0123";
        let mut exact = Limited {
            inner: &mut body,
            left: 4,
            over: false,
        };
        let mut out = Vec::new();
        exact.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"0123");
        assert!(!exact.over);
    }
}
