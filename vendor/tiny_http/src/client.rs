use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Method};
use crate::util::{ReadPolicy, RefinedTcpStream, Unread, UnreadBody};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // claude-cli-api patch: the limits, the policy that applies them to the
    // read half of the socket, the first byte of the next request (read
    // while waiting for it) and the size of the head read so far
    timeouts: ConnectionTimeouts,
    policy: Arc<ReadPolicy>,
    first_byte: Option<u8>,
    head_bytes: usize,

    // claude-cli-api patch: what the current request's body left unread
    unread: Arc<UnreadBody>,

    // claude-cli-api patch: a handle on the socket each request carries
    // (see `Request::client_socket`)
    client_socket: Option<Arc<TcpStream>>,
}

// claude-cli-api patch: request body bytes nobody read.
//
// Dropping a `Request` or its body reader never reads from the socket (the
// thread that drops it must not wait on the client); what is left is
// recorded, and the connection's thread deals with it once the response is
// written, before it reads the next request. Up to `DISCARD_MAX` bytes are
// read and thrown away (each read limited like a body read, or to
// `LINGER_SILENCE` when bodies have no limit), and the connection goes on.
// A larger remainder, one of unknown size (a chunked body, or a body the
// client was never told to send with `100 Continue`), or one that does not
// arrive, ends the connection with a lingering close, as nginx does: the
// write side is shut down after the response, so the client reads all of it
// and then EOF, and what the client still sends is read and thrown away
// until it has been silent for `LINGER_SILENCE`, for at most `LINGER_TOTAL`
// and `LINGER_MAX_BYTES`; then the socket is closed. Closing at once with
// bytes unread would make the kernel answer them with a reset, which can
// destroy the response before the client has read it.

/// Largest unread remainder read and thrown away to keep the connection.
const DISCARD_MAX: u64 = 64 * 1024;
/// A lingering close ends once the client has been silent this long...
const LINGER_SILENCE: Duration = Duration::from_secs(2);
/// ...or after this long...
const LINGER_TOTAL: Duration = Duration::from_secs(10);
/// ...or once this many bytes have been thrown away.
const LINGER_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Limits for each connection (claude-cli-api patch), given to
/// [`Server::from_listener_with_timeouts`](crate::Server::from_listener_with_timeouts).
///
/// The default (`None`, `0`, `false` everywhere) is tiny_http's own
/// behaviour: reads and writes block for as long as it takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionTimeouts {
    /// A keep-alive connection on which nothing is happening (the previous
    /// response is written, no byte of a new request has arrived) is closed,
    /// without an answer, after this long.
    pub idle: Option<Duration>,
    /// A request head (request line and headers) must have arrived whole
    /// this long after its first byte; otherwise the client gets
    /// `408 Request Timeout` and the connection is closed.
    pub head: Option<Duration>,
    /// Each read of a request body may block this long; a read that times
    /// out fails with `ErrorKind::TimedOut`.
    pub body_read: Option<Duration>,
    /// A request head larger than this many bytes closes the connection
    /// (0: no cap).
    pub max_head_bytes: usize,
    /// Each write to the connection may block this long (the socket's
    /// `SO_SNDTIMEO`, set with `TcpStream::set_write_timeout` on every
    /// accepted connection), so a client that stops reading cannot hold a
    /// writer forever. A write that times out fails with
    /// `ErrorKind::WouldBlock`.
    pub write: Option<Duration>,
    /// `TCP_NODELAY` on every accepted connection: small writes (server-sent
    /// events) leave at once instead of waiting for Nagle's algorithm and
    /// the client's delayed ACK.
    pub nodelay: bool,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// Nothing arrived within the idle limit (claude-cli-api patch).
    Idle,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        timeouts: ConnectionTimeouts,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let client_socket = read_socket.tcp_clone().map(Arc::new);
        let policy = Arc::new(ReadPolicy::new());
        read_socket.set_read_policy(policy.clone());

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            timeouts,
            policy,
            first_byte: None,
            head_bytes: 0,
            unread: Arc::new(UnreadBody::default()),
            client_socket,
        }
    }

    /// Waits until the previous request is over (claude-cli-api patch): its
    /// response written whole (the writer dropped; what it left in the
    /// buffer is flushed here) and its body reader dropped, then deals with
    /// what the body left unread. False when the connection cannot go on.
    fn finish_previous(&mut self) -> bool {
        if self.sink.wait_written().is_err() {
            return false;
        }
        self.next_header_source.wait_turn();
        match self.unread.take() {
            Unread::Nothing => true,
            Unread::Bytes(left) if left <= DISCARD_MAX && self.discard(left) => true,
            Unread::Bytes(_) | Unread::Unknown => {
                self.linger();
                false
            }
        }
    }

    /// Reads and throws away the `left` bytes of a body; false if they do
    /// not all arrive.
    fn discard(&mut self, left: u64) -> bool {
        let limit = self.timeouts.body_read.unwrap_or(LINGER_SILENCE);
        self.policy.per_read(Some(limit));
        let mut rest = (&mut self.next_header_source).take(left);
        matches!(io::copy(&mut rest, &mut io::sink()), Ok(read) if read == left)
    }

    /// A lingering close, all but the closing (see `LINGER_SILENCE`).
    fn linger(&mut self) {
        let shut = self.sink.with_writer(|writer| {
            writer.flush()?;
            writer.get_mut().shutdown_write()
        });
        if shut.is_err() {
            return;
        }
        let start = Instant::now();
        let mut thrown = 0u64;
        let mut buf = [0u8; 16 * 1024];
        while thrown < LINGER_MAX_BYTES {
            let left = LINGER_TOTAL.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            self.policy.per_read(Some(left.min(LINGER_SILENCE)));
            match self.next_header_source.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => thrown += read as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    /// Waits for the first byte of the next request (claude-cli-api patch),
    /// for at most the idle limit, then starts the head's deadline.
    fn wait_for_request(&mut self) -> Result<(), ReadError> {
        self.policy.per_read(self.timeouts.idle);
        let mut byte = [0u8; 1];
        loop {
            match self.next_header_source.read(&mut byte) {
                Ok(0) => {
                    return Err(ReadError::ReadIoError(IoError::new(
                        ErrorKind::ConnectionAborted,
                        "Unexpected EOF",
                    )))
                }
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::TimedOut => return Err(ReadError::Idle),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::ReadIoError(e)),
            }
        }
        self.first_byte = Some(byte[0]);
        self.head_bytes = 0;
        match self.timeouts.head {
            Some(head) => self.policy.deadline_in(head),
            None => self.policy.per_read(None),
        }
        Ok(())
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    fn read_next_line(&mut self) -> IoResult<AsciiString> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = match self.first_byte.take() {
                Some(b) => Some(Ok(b)),
                None => self.next_header_source.by_ref().bytes().next(),
            };
            self.head_bytes += 1;
            let max = self.timeouts.max_head_bytes;
            if max > 0 && self.head_bytes > max {
                return Err(IoError::new(
                    ErrorKind::InvalidData,
                    "request head too large",
                ));
            }

            let byte = match byte {
                Some(b) => b?,
                None => return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF")),
            };

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf)
                    .map_err(|_| IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII"));
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        self.wait_for_request()?;
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line().map_err(ReadError::ReadIoError)?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line().map_err(ReadError::ReadIoError)?;

                    if line.is_empty() {
                        break;
                    };
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // claude-cli-api patch: the body, read from here on, has its own limit
        self.policy.per_read(self.timeouts.body_read);

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            Some(self.unread.clone()),
        )
        .map(|request| request.with_client_socket(self.client_socket.clone()))
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        loop {
            // claude-cli-api patch: one request at a time. The next request
            // is read only once the previous one is over, so whoever answers
            // a request never waits behind another response on the same
            // connection (pipelined requests queue in the socket instead),
            // and the idle limit starts when the connection is idle.
            if !self.finish_previous() {
                return None;
            }

            // the client sent a "connection: close" header in this previous request
            //  or is using HTTP 1.0, meaning that no new request will come
            if self.no_more_requests {
                return None;
            }

            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response.raw_print(writer, ver, &[], false, None).ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(408));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(417));
                    response.raw_print(writer, ver, &[], true, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) | Err(ReadError::Idle) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
