//! The HTTP client side of the passthrough: how the shared `ureq` agent is
//! configured, which upstream response headers reach the client, and what
//! each way of failing to talk to the upstream becomes for the client.

use std::io;
use std::time::Duration;

use ureq::http::HeaderMap;
use ureq::Agent;

use crate::error::ApiError;

/// The `what` of a passthrough [`ApiError::Timeout`].
pub const TIMEOUT_WHAT: &str = "OpenAI upstream";

/// Idle keep-alive connections kept open to the upstream. Every worker
/// may hold one while streaming; these are the ones parked in between.
const IDLE_CONNECTIONS: usize = 64;

/// ureq's read buffer per upstream connection. It must hold the whole
/// response head; 8 KiB is what nginx allows a proxied response head by
/// default, and OpenAI's are under 2 KiB.
const INPUT_BUFFER: usize = 8 * 1024;
/// ureq's write buffer: the request head and then the body, a piece at a
/// time.
const OUTPUT_BUFFER: usize = 4 * 1024;

/// One agent serves every worker thread: it is `Send + Sync`, and its
/// connection pool is what makes keep-alive to the upstream work.
///
/// Redirects are never followed (a 307/308 would resend the body and the
/// key to wherever `Location` points); `http_status_as_error(false)` hands
/// upstream 4xx/5xx back as responses so they can be relayed untouched.
/// Only the connect (and name lookup) timeouts are set here; the others depend on whether the
/// request streams and are set per request.
pub fn agent(connect_timeout: Duration) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(connect_timeout))
        // A resolver that never answers would otherwise hold the worker for
        // as long as getaddrinfo likes.
        .timeout_resolve(Some(connect_timeout))
        .user_agent(concat!("claude-cli-api/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(IDLE_CONNECTIONS)
        .max_idle_connections_per_host(IDLE_CONNECTIONS)
        // Parked connections hold their buffers; after a burst they go
        // within seconds instead of ureq's default 15.
        .max_idle_age(Duration::from_secs(4))
        // The 128 KiB defaults, per connection and per open stream, were
        // most of a stream's memory; events are far smaller.
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .build();
    Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        super::resolve::UpstreamResolver::default(),
    )
}

/// Upstream response headers a client may see: rate-limit state, retry
/// hints and processing time. `openai-organization`/`openai-project` stay
/// behind: with the server's key they would name the operator's account.
/// The upstream's own request id comes back as `X-Upstream-Request-ID`,
/// since `X-Request-ID` is this server's.
pub fn relay_headers(upstream: &HeaderMap, out: &mut Vec<(String, String)>) {
    for (name, value) in upstream {
        let name = name.as_str();
        let relayed = name.starts_with("x-ratelimit-")
            || name == "retry-after"
            || name == "retry-after-ms"
            || name == "openai-processing-ms"
            || name == "openai-version";
        let renamed = if name == "x-request-id" {
            Some("X-Upstream-Request-ID")
        } else {
            None
        };
        if !relayed && renamed.is_none() {
            continue;
        }
        if let Ok(value) = value.to_str() {
            let name = renamed.map(str::to_string).unwrap_or_else(|| name.into());
            out.push((name, value.to_string()));
        }
    }
}

/// What a failed exchange means for the client, plus a short cause word
/// for the log. Neither carries the URL or a key: ureq's own `Display`
/// can include the URL, so it is never used here.
pub fn classify(error: &ureq::Error) -> (ApiError, &'static str) {
    use ureq::Error as E;
    let unreachable = ApiError::UpstreamUnreachable;
    match error {
        E::Timeout(_) => (timeout(), "timeout"),
        E::Io(e) => classify_io(e),
        E::HostNotFound => (unreachable, "dns"),
        E::ConnectionFailed => (unreachable, "connect"),
        E::Tls(_) | E::Rustls(_) | E::Pem(_) => (unreachable, "tls"),
        E::BadUri(_) | E::Http(_) => (unreachable, "bad_url"),
        E::Protocol(_) | E::LargeResponseHeader(..) | E::BodyStalled => (unreadable(), "protocol"),
        E::BodyExceedsLimit(_) => (
            ApiError::BackendError {
                message: "The OpenAI upstream's response is larger than this server relays.".into(),
            },
            "too_large",
        ),
        _ => (unreachable, "other"),
    }
}

/// The same for an error met while reading a body through `io::Read`,
/// where ureq wraps its own errors in an `io::Error`.
pub fn classify_io(error: &io::Error) -> (ApiError, &'static str) {
    if let Some(inner) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<ureq::Error>())
    {
        return classify(inner);
    }
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => (timeout(), "timeout"),
        io::ErrorKind::ConnectionRefused => (ApiError::UpstreamUnreachable, "refused"),
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => (unreadable(), "closed"),
        io::ErrorKind::InvalidData => (unreadable(), "invalid_data"),
        _ => (ApiError::UpstreamUnreachable, "io"),
    }
}

fn timeout() -> ApiError {
    ApiError::Timeout { what: TIMEOUT_WHAT }
}

fn unreadable() -> ApiError {
    ApiError::BackendError {
        message: "The OpenAI upstream sent a response this server could not read. \
                  Try again later."
            .into(),
    }
}

/// A 3xx from the upstream, which is never followed (see [`agent`]). It is
/// not relayed either: an SDK that follows it would resend the request to
/// an address the operator never configured.
pub fn redirect_refused(status: u16) -> ApiError {
    ApiError::BackendError {
        message: format!(
            "The OpenAI upstream answered with a redirect (HTTP {status}), which this server \
             does not follow. The server's OPENAI_BASE_URL needs fixing."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_by_cause() {
        let rows: Vec<(ureq::Error, u16, &str)> = vec![
            (ureq::Error::Timeout(ureq::Timeout::Connect), 504, "timeout"),
            (ureq::Error::Timeout(ureq::Timeout::PerRead), 504, "timeout"),
            (ureq::Error::HostNotFound, 502, "upstream_unreachable"),
            (ureq::Error::ConnectionFailed, 502, "upstream_unreachable"),
            (
                ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()),
                502,
                "upstream_unreachable",
            ),
            (ureq::Error::BodyExceedsLimit(1), 502, "backend_error"),
        ];
        for (error, status, code) in rows {
            let (api, _) = classify(&error);
            assert_eq!((api.status(), api.code()), (status, code), "{error:?}");
        }
    }

    #[test]
    fn wrapped_errors_are_unwrapped() {
        let wrapped = ureq::Error::Timeout(ureq::Timeout::PerRead).into_io();
        assert_eq!(classify_io(&wrapped).0.status(), 504);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(classify_io(&eof).0.code(), "backend_error");
    }

    #[test]
    fn only_allowed_headers_are_relayed() {
        let mut upstream = HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-remaining-requests", "99"),
            ("retry-after", "3"),
            ("x-request-id", "req_abc"),
            ("openai-organization", "acme-corp"),
            ("set-cookie", "a=b"),
            ("connection", "keep-alive"),
        ] {
            upstream.insert(
                ureq::http::HeaderName::from_static(k),
                ureq::http::HeaderValue::from_static(v),
            );
        }
        let mut out = Vec::new();
        relay_headers(&upstream, &mut out);
        out.sort();
        assert_eq!(
            out,
            [
                ("X-Upstream-Request-ID".to_string(), "req_abc".to_string()),
                ("retry-after".into(), "3".into()),
                ("x-ratelimit-remaining-requests".into(), "99".into()),
            ]
        );
    }
}
