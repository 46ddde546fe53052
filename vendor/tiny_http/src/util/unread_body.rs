//! Request body bytes nobody read (claude-cli-api patch).

use std::io::{Read, Result as IoResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the body of a connection's current request left unread, shared by
/// the body's reader and the connection.
///
/// Dropping a body reader never reads from the socket, so the thread that
/// drops a `Request` never waits on its client: the reader records here
/// what it left, and the connection's own thread deals with it before it
/// reads the next request (see `client.rs`).
#[derive(Debug, Default)]
pub struct UnreadBody(AtomicU64);

/// What [`UnreadBody::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    Nothing,
    Bytes(u64),
    /// A remainder of unknown size: where the next request starts is not
    /// known.
    Unknown,
}

const UNKNOWN: u64 = u64::MAX;

impl UnreadBody {
    /// `bytes` of a body with a known length were left unread.
    pub fn bytes(&self, bytes: u64) {
        if bytes > 0 {
            // An unknown remainder stays unknown.
            self.0.fetch_max(bytes, Ordering::SeqCst);
        }
    }

    /// Part of the body was left unread, how much is not known.
    pub fn unknown(&self) {
        self.0.store(UNKNOWN, Ordering::SeqCst);
    }

    /// What was recorded, which is then forgotten.
    pub fn take(&self) -> Unread {
        match self.0.swap(0, Ordering::SeqCst) {
            0 => Unread::Nothing,
            UNKNOWN => Unread::Unknown,
            bytes => Unread::Bytes(bytes),
        }
    }
}

/// A body without a known length (chunked): dropped before its end, it
/// records an unknown remainder.
pub struct UntilEnd<R> {
    inner: R,
    ended: bool,
    unread: Option<Arc<UnreadBody>>,
}

impl<R: Read> UntilEnd<R> {
    pub fn new(inner: R, unread: Option<Arc<UnreadBody>>) -> UntilEnd<R> {
        UntilEnd {
            inner,
            ended: false,
            unread,
        }
    }
}

impl<R: Read> Read for UntilEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && !buf.is_empty() {
            self.ended = true;
        }
        Ok(read)
    }
}

impl<R> Drop for UntilEnd<R> {
    fn drop(&mut self) {
        if !self.ended {
            if let Some(unread) = &self.unread {
                unread.unknown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Unread, UnreadBody, UntilEnd};
    use std::io::{Cursor, Read};
    use std::sync::Arc;

    #[test]
    fn records_and_forgets() {
        let unread = UnreadBody::default();
        assert_eq!(unread.take(), Unread::Nothing);
        unread.bytes(0);
        assert_eq!(unread.take(), Unread::Nothing);
        unread.bytes(5);
        assert_eq!(unread.take(), Unread::Bytes(5));
        assert_eq!(unread.take(), Unread::Nothing);
        unread.unknown();
        unread.bytes(5);
        assert_eq!(unread.take(), Unread::Unknown);
    }

    #[test]
    fn until_end() {
        let unread = Arc::new(UnreadBody::default());
        let mut body = UntilEnd::new(Cursor::new(b"abc".to_vec()), Some(unread.clone()));
        let mut first = [0u8; 1];
        body.read_exact(&mut first).unwrap();
        drop(body);
        assert_eq!(unread.take(), Unread::Unknown);

        let mut body = UntilEnd::new(Cursor::new(b"abc".to_vec()), Some(unread.clone()));
        body.read_to_end(&mut Vec::new()).unwrap();
        drop(body);
        assert_eq!(unread.take(), Unread::Nothing);
    }
}
