//! The id of a Claude Code session, checked once where it enters the server
//! (the `X-Claude-Session-ID` header, the registry file) and carried as a
//! type from there on: the hyphenated form of a UUID v4, in lower case.

use std::fmt;
use std::sync::Arc;

use crate::error::ApiError;
use crate::http::Incoming;

/// The header a client names its session in.
pub const HEADER: &str = "X-Claude-Session-ID";

/// A valid session id. Cheap to clone: the registry shares its text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// The request's `X-Claude-Session-ID`, checked; `None` without one.
    pub fn of_request(rq: &Incoming) -> Result<Option<SessionId>, ApiError> {
        rq.header(HEADER).map(SessionId::parse).transpose()
    }

    /// Checks a client-supplied id: the hyphenated form of a UUID version 4
    /// with the RFC 4122 variant, in either letter case. Keeps it in lower
    /// case, the form the server hands out and names directories with.
    pub fn parse(raw: &str) -> Result<SessionId, ApiError> {
        // The uuid crate also takes braced, URN and unhyphenated forms; a
        // session id is only ever sent back in the form we gave out.
        let hyphens_ok = raw.len() == 36
            && raw
                .bytes()
                .enumerate()
                .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) == (b == b'-'));
        if !hyphens_ok {
            return Err(ApiError::InvalidSessionId);
        }
        let uuid = uuid::Uuid::parse_str(raw).map_err(|_| ApiError::InvalidSessionId)?;
        if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
            return Err(ApiError::InvalidSessionId);
        }
        Ok(SessionId::from_uuid(uuid))
    }

    /// A fresh id for a new session.
    pub fn new_random() -> SessionId {
        SessionId::from_uuid(uuid::Uuid::new_v4())
    }

    /// True when `name` is a session id exactly as the server writes one
    /// (a directory name, a registry entry).
    pub fn is_canonical(name: &str) -> bool {
        SessionId::parse(name).is_ok_and(|id| id.as_str() == name)
    }

    fn from_uuid(uuid: uuid::Uuid) -> SessionId {
        SessionId(Arc::from(uuid.hyphenated().to_string()))
    }

    /// An id the registry holds (checked when it entered the registry).
    pub(crate) fn from_registry(id: Arc<str>) -> SessionId {
        SessionId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text itself, for a registry that keys its map by `Arc<str>`.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hyphenated_v4_form_is_accepted() {
        let v4 = uuid::Uuid::new_v4().hyphenated().to_string();
        let bad = [
            "".to_string(),
            "not-a-uuid".to_string(),
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8".to_string(), // v1
            "00000000-0000-0000-0000-000000000000".to_string(), // nil
            "3f2a7c1e-5b4d-4e8a-cc3b-2d1e0f9a8b7c".to_string(), // v4 nibble, wrong variant
            v4.replace('-', ""),                                // simple form
            format!("{{{v4}}}"),                                // braced
            format!("urn:uuid:{v4}"),
            format!("{v4} "),
            "../../../../etc/passwd-aaaaaaaaaaaaaaaaaaaaaa".to_string(),
            "3f2a7c1e-5b4d-4e8a-9c3b-2d1e0f9a8b7g".to_string(),
        ];
        for raw in bad {
            assert_eq!(
                SessionId::parse(&raw).unwrap_err(),
                ApiError::InvalidSessionId,
                "{raw:?}"
            );
        }
        assert_eq!(SessionId::parse(&v4).unwrap().as_str(), v4);
    }

    #[test]
    fn upper_case_is_accepted_and_kept_in_lower_case() {
        let id = SessionId::new_random();
        let upper = SessionId::parse(&id.as_str().to_uppercase()).unwrap();
        assert_eq!(upper, id);
        assert!(SessionId::is_canonical(id.as_str()));
        assert!(!SessionId::is_canonical(&id.as_str().to_uppercase()));
        assert_eq!(id.to_string(), id.as_str());
    }
}
