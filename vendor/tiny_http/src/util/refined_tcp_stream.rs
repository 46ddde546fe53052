use std::io::Result as IoResult;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::connection::Connection;
#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use crate::ssl::SslStream;

pub(crate) enum Stream {
    Http(Connection),
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    Https(SslStream),
}

impl Clone for Stream {
    fn clone(&self) -> Self {
        match self {
            Stream::Http(tcp_stream) => Stream::Http(tcp_stream.try_clone().unwrap()),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => Stream::Https(ssl_stream.clone()),
        }
    }
}

impl From<Connection> for Stream {
    fn from(tcp_stream: Connection) -> Self {
        Stream::Http(tcp_stream)
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => true,
        }
    }

    fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.peer_addr(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.peer_addr(),
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> IoResult<()> {
        match self {
            Stream::Http(Connection::Tcp(tcp)) => tcp.set_read_timeout(timeout),
            #[cfg(unix)]
            Stream::Http(Connection::Unix(unix)) => unix.set_read_timeout(timeout),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => Ok(()),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.shutdown(how),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.read(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.write(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.flush(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    close_read: bool,
    close_write: bool,
    policy: Option<Arc<ReadPolicy>>,
}

/// How long a read on a connection may block (claude-cli-api patch).
///
/// Either a per-read limit (waiting for a request, reading a body) or a
/// deadline for the whole phase (reading a request head), so a client that
/// drips one byte at a time cannot hold a connection open. The socket
/// timeout is re-applied before each read syscall only when it changes or
/// a deadline is running, which costs one `setsockopt` per refill of the
/// reader's buffer during the head and none otherwise.
pub struct ReadPolicy {
    base: Instant,
    /// Nanoseconds after `base`; 0 = no deadline.
    deadline: AtomicU64,
    /// Nanoseconds; 0 = no limit.
    per_read: AtomicU64,
    /// The timeout last applied to the socket, in ns (0 = none).
    applied: AtomicU64,
}

impl ReadPolicy {
    pub fn new() -> ReadPolicy {
        ReadPolicy {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            per_read: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        }
    }

    /// Each read may block for `limit` (none: forever); no deadline.
    pub fn per_read(&self, limit: Option<Duration>) {
        self.deadline.store(0, Ordering::SeqCst);
        self.per_read.store(
            limit.map_or(0, |d| d.as_nanos().max(1) as u64),
            Ordering::SeqCst,
        );
    }

    /// Every read from now on must finish by `now + within`.
    pub fn deadline_in(&self, within: Duration) {
        let at = (Instant::now() + within)
            .duration_since(self.base)
            .as_nanos() as u64;
        self.deadline.store(at.max(1), Ordering::SeqCst);
    }

    fn before_read(&self, stream: &Stream) -> IoResult<()> {
        let deadline = self.deadline.load(Ordering::SeqCst);
        let wanted = if deadline != 0 {
            let now = self.base.elapsed().as_nanos() as u64;
            if now >= deadline {
                return Err(ErrorKind::TimedOut.into());
            }
            deadline - now
        } else {
            self.per_read.load(Ordering::SeqCst)
        };
        if deadline != 0 || wanted != self.applied.load(Ordering::SeqCst) {
            let timeout = (wanted != 0).then(|| Duration::from_nanos(wanted.max(1_000)));
            stream.set_read_timeout(timeout)?;
            self.applied.store(wanted, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl RefinedTcpStream {
    pub(crate) fn new<S>(stream: S) -> (RefinedTcpStream, RefinedTcpStream)
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.clone(), stream);

        let read = RefinedTcpStream {
            stream: read,
            close_read: true,
            close_write: false,
            policy: None,
        };

        let write = RefinedTcpStream {
            stream: write,
            close_read: false,
            close_write: true,
            policy: None,
        };

        (read, write)
    }

    /// Shuts the socket's write side down (claude-cli-api patch): the
    /// client gets EOF after what was written so far.
    pub(crate) fn shutdown_write(&mut self) -> IoResult<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Reads through this half follow `policy` from now on.
    pub(crate) fn set_read_policy(&mut self, policy: Arc<ReadPolicy>) {
        self.policy = Some(policy);
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    /// Another handle on the socket when it is plain TCP (claude-cli-api
    /// patch).
    pub(crate) fn tcp_clone(&self) -> Option<TcpStream> {
        match &self.stream {
            Stream::Http(Connection::Tcp(tcp)) => tcp.try_clone().ok(),
            _ => None,
        }
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match &self.policy {
            None => self.stream.read(buf),
            Some(policy) => {
                policy.before_read(&self.stream)?;
                // An expired SO_RCVTIMEO shows as EAGAIN; callers look for
                // TimedOut.
                self.stream.read(buf).map_err(|e| match e.kind() {
                    ErrorKind::WouldBlock => ErrorKind::TimedOut.into(),
                    _ => e,
                })
            }
        }
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
