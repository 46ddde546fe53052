//! Reading a request body: JSON only, within a size limit and a time limit.
//! A refused body is left unread; tiny_http (patched) then drains or
//! lingers on the connection's own thread, so the client still reads its
//! answer.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use crate::error::ApiError;

pub fn check_content_type(value: Option<&str>) -> Result<(), ApiError> {
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
pub fn read_body(
    rq: &mut tiny_http::Request,
    limit: usize,
    within: Duration,
) -> Result<Vec<u8>, ApiError> {
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
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("text/plain")).is_err());
        assert!(check_content_type(None).is_err());
    }
}
