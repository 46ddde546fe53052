//! Keys and other values that must not leak: the [`Secret`] newtype, whose
//! `Debug` prints only a masked form, and [`mask_key`] for log lines.

use std::fmt;

/// A value that must never show up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `sk-cca-****7f3a`: enough to tell keys apart in a log, not to use one.
    pub fn masked(&self) -> String {
        mask_key(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

/// Masks a key for logs: a known prefix and the last four characters.
pub fn mask_key(key: &str) -> String {
    let prefix = ["sk-cca-", "sk-ant-", "sk-proj-", "sk-"]
        .iter()
        .find(|p| key.starts_with(*p))
        .copied()
        .unwrap_or("");
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < prefix.len() + 8 {
        return format!("{prefix}****");
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}****{tail}")
}
