//! The digest of a conversation as a client holds it, so that a client
//! which resends the whole history every turn (and never reads the session
//! header) lands on the session that answered it.
//!
//! What is digested is what the messages mean, not how they were spelled:
//! the owner, the model the CLI runs, the system text, then each turn's
//! role and text (list parts already joined by `messages`, so a string and
//! a list of text parts agree), its images, and the ids of the tool calls
//! it makes or answers. Every field is length-prefixed, so no two
//! conversations feed the same bytes. The hash is keyed with the server's
//! secret: a digest in the registry file tells nothing about the text.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::claude::request::messages::{Message, Part, Role};

pub type HistoryDigest = [u8; 32];

/// A conversation's digest, built one message at a time: the prefix a
/// request resends, then its new user message, then the answer.
#[derive(Clone)]
pub struct HistoryHasher {
    mac: Hmac<Sha256>,
}

impl HistoryHasher {
    /// `key` is the server's keyed MAC; `owner` the key's fingerprint.
    pub fn new(
        key: &Hmac<Sha256>,
        owner: Option<&str>,
        model: &str,
        system: Option<&str>,
    ) -> HistoryHasher {
        let mut hasher = HistoryHasher { mac: key.clone() };
        hasher.field(b"conversation-v1");
        hasher.field(owner.unwrap_or("").as_bytes());
        hasher.field(model.as_bytes());
        hasher.field(system.unwrap_or("").as_bytes());
        hasher
    }

    pub fn message(&mut self, role: Role, text: &str) {
        self.field(match role {
            Role::User => b"user",
            Role::Assistant => b"assistant",
            Role::Tool => b"tool",
        });
        self.field(text.as_bytes());
    }

    /// A whole turn: its role and text as [`HistoryHasher::message`] (so a
    /// text-only turn digests as it always did), then its images, the calls
    /// it made (by id; a legacy call, which has none, by name) and the call
    /// it answers.
    pub fn turn(&mut self, turn: &Message) {
        self.message(turn.role, &turn.content);
        for part in &turn.parts {
            match part {
                Part::Text(_) => {}
                Part::Image { media_type, data } => {
                    self.field(b"image");
                    self.field(media_type.as_bytes());
                    self.field(data.as_bytes());
                }
                Part::ImageUrl(url) => {
                    self.field(b"image-url");
                    self.field(url.as_bytes());
                }
            }
        }
        for call in &turn.tool_calls {
            self.field(b"call");
            self.field(call.id.as_deref().unwrap_or(&call.name).as_bytes());
        }
        if let Some(id) = &turn.tool_call_id {
            self.field(b"answers");
            self.field(id.as_bytes());
        }
    }

    /// The digest of the messages so far; more may still be added.
    pub fn digest(&self) -> HistoryDigest {
        self.mac.clone().finalize().into_bytes().into()
    }

    fn field(&mut self, bytes: &[u8]) {
        self.mac.update(&(bytes.len() as u64).to_le_bytes());
        self.mac.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap()
    }

    fn digest_of(
        owner: Option<&str>,
        system: Option<&str>,
        turns: &[(Role, &str)],
    ) -> HistoryDigest {
        let mut h = HistoryHasher::new(&key(b"k"), owner, "sonnet", system);
        for (role, text) in turns {
            h.message(*role, text);
        }
        h.digest()
    }

    #[test]
    fn the_same_conversation_gives_the_same_digest_and_any_change_another() {
        let base = [(Role::User, "hi"), (Role::Assistant, "hello")];
        let d = digest_of(Some("o"), Some("sys"), &base);
        assert_eq!(d, digest_of(Some("o"), Some("sys"), &base));
        assert_ne!(d, digest_of(Some("p"), Some("sys"), &base));
        assert_ne!(d, digest_of(None, Some("sys"), &base));
        assert_ne!(d, digest_of(Some("o"), None, &base));
        assert_ne!(d, digest_of(Some("o"), Some("sys"), &base[..1]));
        // Moving text across a boundary changes the digest.
        assert_ne!(
            d,
            digest_of(
                Some("o"),
                Some("sys"),
                &[(Role::User, "hih"), (Role::Assistant, "ello")]
            )
        );
        assert_ne!(
            d,
            digest_of(
                Some("o"),
                Some("sys"),
                &[(Role::Assistant, "hi"), (Role::User, "hello")]
            )
        );
        let other_key = {
            let mut h = HistoryHasher::new(&key(b"other"), Some("o"), "sonnet", Some("sys"));
            h.message(Role::User, "hi");
            h.message(Role::Assistant, "hello");
            h.digest()
        };
        assert_ne!(d, other_key);
    }

    #[test]
    fn a_digest_can_be_extended_after_it_was_taken() {
        let mut h = HistoryHasher::new(&key(b"k"), None, "sonnet", None);
        h.message(Role::User, "hi");
        let prefix = h.digest();
        h.message(Role::Assistant, "hello");
        assert_ne!(prefix, h.digest());
        assert_eq!(
            h.digest(),
            digest_of(
                None,
                None,
                &[(Role::User, "hi"), (Role::Assistant, "hello")]
            )
        );
    }
}
