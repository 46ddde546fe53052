//! Writing a [`Reply`] to its client: a whole body through tiny_http, or an
//! event stream through the raw socket (see [`SseWriter`]).

use tiny_http::{Header, Response};

use super::{Afterwards, Body, ClientWatch, Reply, SseWriter};

/// What writing an answer left for the pipeline.
pub struct Sent {
    pub status: u16,
    /// Events sent, and whether the client went away, for a stream.
    pub stream: Option<(usize, bool)>,
    /// The reply's work for after the answer.
    pub afterwards: Vec<Afterwards>,
}

/// A reader's bytes to the client as they come (chunked when their length
/// is unknown).
fn copy_out(
    rq: tiny_http::Request,
    status: u16,
    headers: &[(String, String)],
    reader: Box<dyn std::io::Read + Send>,
    length: Option<u64>,
) {
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
        .collect();
    let length = length.and_then(|n| usize::try_from(n).ok());
    let response = Response::new(status.into(), headers, reader, length, None);
    if let Err(e) = rq.respond(response) {
        log::debug!("response write failed: {e}");
    }
}

/// Writes `reply`. `work_done` runs once the reply's own work is over and
/// only its last bytes are left to write: whatever it frees is free before
/// the client can send its next request. `client` is ended before the
/// last write (a stream watches its client until then).
pub fn send(
    rq: tiny_http::Request,
    reply: Reply,
    client: Option<&ClientWatch>,
    work_done: impl FnOnce(),
) -> Sent {
    let end_watch = || {
        if let Some(client) = client {
            client.end();
        }
    };
    let Reply {
        status,
        headers,
        body,
        mut afterwards,
        ..
    } = reply;
    let stream = match body {
        Body::Full(bytes) => {
            end_watch();
            work_done();
            let mut response = Response::from_data(bytes).with_status_code(status);
            for (k, v) in &headers {
                if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                    response.add_header(h);
                }
            }
            if let Err(e) = rq.respond(response) {
                log::debug!("response write failed: {e}");
            }
            None
        }
        Body::Reader { reader, length } => {
            end_watch();
            copy_out(rq, status, &headers, reader, length);
            work_done();
            None
        }
        Body::Stream(events) => {
            let mut sse = SseWriter::start(rq.into_writer(), &headers);
            afterwards.extend(events.write_events(&mut sse));
            end_watch();
            work_done();
            let _ = sse.finish();
            Some((sse.events_sent(), sse.is_broken()))
        }
    };
    Sent {
        status,
        stream,
        afterwards,
    }
}
