use std::io::Read;
use std::io::Result as IoResult;
use std::sync::Arc;

use super::UnreadBody;

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, what is left is recorded in `unread`
/// (claude-cli-api patch: the original read the remaining bytes and threw
/// them away there, which blocked the thread dropping the request for as
/// long as the client took to send them).
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    unread: Option<Arc<UnreadBody>>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize, unread: Option<Arc<UnreadBody>>) -> EqualReader<R> {
        EqualReader {
            reader,
            size,
            unread,
        }
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        if let Some(unread) = &self.unread {
            unread.bytes(self.size as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use crate::util::{Unread, UnreadBody};
    use std::io::Read;
    use std::sync::Arc;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5, None);

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());
        let unread = Arc::new(UnreadBody::default());

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5, Some(unread.clone()));

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        // Dropping the reader read nothing more: the rest is recorded.
        assert_eq!(unread.take(), Unread::Bytes(4));
        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, "ello world");
    }
}
