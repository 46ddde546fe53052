//! Whether the client of a request is still there while its answer is
//! worked on: a peek at its socket, which the end of the stream (the
//! client closed it) or a reset answers at once, without writing anything.
//!
//! The socket is shared with tiny_http's connection, which reads the next
//! request only once this one's response writer is dropped. So a watch
//! must be [ended](ClientWatch::end) before that (see `send`): a peek
//! changes the socket's read timeout for an instant, which must never
//! happen under a read of the connection's own.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// How long a peek may wait for a byte: as good as not at all.
const PEEK_WAIT: Duration = Duration::from_micros(1);

/// A request's view of its client's socket, until its answer is written.
#[derive(Debug, Default)]
pub struct ClientWatch {
    socket: Mutex<Option<Arc<TcpStream>>>,
}

impl ClientWatch {
    /// The watch of `rq`'s client (one that never sees it go when the
    /// connection is not plain TCP).
    pub fn of(rq: &tiny_http::Request) -> Arc<ClientWatch> {
        Arc::new(ClientWatch {
            socket: Mutex::new(rq.client_socket()),
        })
    }

    /// True once the client has closed its side of the connection or reset
    /// it. Bytes it sent after its request (a pipelined request) and a
    /// socket that cannot be asked both count as still there. False for
    /// good once the watch has ended.
    pub fn departed(&self) -> bool {
        let guard = self.socket.lock();
        let Some(socket) = guard.as_ref() else {
            return false;
        };
        // The lock also keeps two peeks from restoring each other's timeout.
        let Ok(before) = socket.read_timeout() else {
            return false;
        };
        if socket.set_read_timeout(Some(PEEK_WAIT)).is_err() {
            return false;
        }
        let peeked = socket.peek(&mut [0u8; 1]);
        if let Err(e) = socket.set_read_timeout(before) {
            log::warn!("restoring a connection's read timeout failed: {e}");
        }
        match peeked {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
            ),
        }
    }

    /// The answer is about to be written whole: no more peeks.
    pub fn end(&self) {
        self.socket.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener};

    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    fn watching(server: &TcpStream) -> ClientWatch {
        ClientWatch {
            socket: Mutex::new(Some(Arc::new(server.try_clone().unwrap()))),
        }
    }

    /// Waits (up to 5 s) until the server side has something to read: the
    /// client's bytes, or the end of the stream.
    fn arrived(server: &TcpStream) {
        let before = server.read_timeout().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        server.peek(&mut [0u8; 1]).unwrap();
        server.set_read_timeout(before).unwrap();
    }

    #[test]
    fn a_connected_client_is_there_and_its_bytes_stay_unread() {
        let (mut client, mut server) = pair();
        server
            .set_read_timeout(Some(Duration::from_secs(7)))
            .unwrap();
        let watch = watching(&server);
        assert!(!watch.departed());
        client.write_all(b"GET").unwrap();
        arrived(&server);
        assert!(!watch.departed());
        let mut got = [0u8; 3];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"GET");
        // The connection's own timeout is as it was.
        assert_eq!(server.read_timeout().unwrap(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_connection_its_client_closed_or_shut_down_is_departed() {
        let (client, server) = pair();
        let watch = watching(&server);
        drop(client);
        arrived(&server);
        assert!(watch.departed());

        let (client, server) = pair();
        let watch = watching(&server);
        client.shutdown(Shutdown::Both).unwrap();
        arrived(&server);
        assert!(watch.departed());
    }

    #[test]
    fn an_ended_watch_never_reports_a_departure() {
        let (client, server) = pair();
        let watch = watching(&server);
        watch.end();
        drop(client);
        arrived(&server);
        assert!(!watch.departed());
        assert!(!ClientWatch::default().departed());
    }
}
