//! Client authentication against the configured server keys.
//!
//! Every configured key is compared, in constant time, against the
//! presented one, and the loop never stops early, so neither timing nor
//! the order of keys tells an attacker how close a guess was. Keys are
//! compared as fixed-size digests so their lengths do not leak either.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{mask_key, Secret};
use crate::error::ApiError;

pub struct KeyRing {
    digests: Vec<[u8; 32]>,
    keys: Vec<Secret>,
}

impl KeyRing {
    pub fn new(keys: &[Secret]) -> KeyRing {
        KeyRing {
            digests: keys.iter().map(|k| digest(k.expose())).collect(),
            keys: keys.to_vec(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks an `Authorization` header value. `Ok(None)` when auth is off.
    pub fn check(&self, authorization: Option<&str>) -> Result<Option<Secret>, AuthFailure> {
        if !self.enabled() {
            return Ok(None);
        }
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(AuthFailure {
                error: ApiError::MissingApiKey,
                presented: None,
            });
        };
        let (scheme, token) = value.split_once(' ').unwrap_or(("", value));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure {
                error: ApiError::InvalidApiKey {
                    hint: "Use the form 'Authorization: Bearer sk-cca-...'.",
                },
                presented: Some(mask_key(token)),
            });
        }
        let token = token.trim();
        let presented = digest(token);
        let mut found: Option<usize> = None;
        for (i, d) in self.digests.iter().enumerate() {
            let hit: bool = d.ct_eq(&presented).into();
            if hit {
                found = Some(i);
            }
        }
        match found.and_then(|i| self.keys.get(i)) {
            Some(key) => Ok(Some(key.clone())),
            None => Err(AuthFailure {
                error: ApiError::InvalidApiKey {
                    hint: "Check the key sent in 'Authorization: Bearer sk-cca-...'.",
                },
                presented: Some(mask_key(token)),
            }),
        }
    }
}

/// Why a request was refused, with the masked key for the audit line.
#[derive(Debug)]
pub struct AuthFailure {
    pub error: ApiError,
    pub presented: Option<String>,
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_only_and_all_keys() {
        let ring = KeyRing::new(&[
            Secret::new("sk-cca-first-key-0001"),
            Secret::new("sk-cca-second-key-002"),
        ]);
        assert!(ring.check(Some("Bearer sk-cca-first-key-0001")).is_ok());
        assert!(ring.check(Some("bearer sk-cca-second-key-002")).is_ok());
        let e = ring.check(None).err().unwrap();
        assert_eq!(e.error.code(), "missing_api_key");
        let e = ring.check(Some("Bearer sk-cca-wrong")).err().unwrap();
        assert_eq!(e.error.code(), "invalid_api_key");
        let e = ring.check(Some("sk-cca-first-key-0001")).err().unwrap();
        assert!(e.error.message().contains("Bearer"));
        let e = ring.check(Some("Basic dXNlcjpwYXNz")).err().unwrap();
        assert!(e.error.message().contains("Bearer"));
        assert!(KeyRing::new(&[]).check(None).unwrap().is_none());
    }
}
