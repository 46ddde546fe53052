//! Writing to a `claude` child's standard input: its user turns, one
//! stream-json line each, and the interrupt the supervisor asks for. Both
//! go through one shared handle, so neither can interleave with the other,
//! and neither may block the thread that asks: a pipe that cannot take a
//! line at once is written from a thread of its own.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::thread;

use parking_lot::Mutex;

/// The child's stdin, shared with the interrupter the supervisor calls. A
/// long turn is written from a thread that holds the lock meanwhile;
/// `None` once it is closed.
pub type Stdin = Arc<Mutex<Option<File>>>;

/// What any pipe takes without blocking: one page. (Linux gives a fresh
/// pipe 64 KiB, but only a page once its user holds too many pipe pages.)
const PIPE_CAPACITY: usize = 4096;

/// Writes one line to the child's stdin, closing it afterwards when `eof`.
/// A line the pipe cannot take at once goes from a thread holding the
/// lock, so a child that answers before reading all of its input cannot
/// deadlock the worker.
pub fn write_line(stdin: &Stdin, line: String, eof: bool) {
    if line.len() <= PIPE_CAPACITY {
        let mut guard = stdin.lock();
        if let Some(pipe) = guard.as_mut() {
            let _ = pipe.write_all(line.as_bytes());
        }
        if eof {
            guard.take();
        }
        return;
    }
    let shared = stdin.clone();
    let _ = thread::Builder::new()
        .name("cli-stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut guard = shared.lock();
            if let Some(pipe) = guard.as_mut() {
                let _ = pipe.write_all(line.as_bytes());
            }
            if eof {
                guard.take();
            }
        });
}

/// The interrupt the CLI takes on stdin in stream-json mode: it ends the
/// turn with an error `result` and waits for the next one. Written from a
/// thread of its own: the supervisor calls this under its lock, and a child
/// that stopped reading could leave the pipe full. A SIGKILL follows after
/// the grace whether or not the write got through.
pub fn interrupter(stdin: Stdin) -> crate::supervisor::Interrupter {
    Box::new(move || {
        // A child whose stdin is closed is being closed, not in a turn:
        // the supervisor signals it (SIGTERM, then SIGKILL) instead.
        if stdin.try_lock().is_some_and(|pipe| pipe.is_none()) {
            return false;
        }
        let shared = stdin.clone();
        thread::Builder::new()
            .name("cli-interrupt".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let line = format!(
                    "{{\"type\":\"control_request\",\"request_id\":\"{id}\",\"request\":{{\"subtype\":\"interrupt\"}}}}\n"
                );
                if let Some(pipe) = shared.lock().as_mut() {
                    let _ = pipe.write_all(line.as_bytes());
                }
            })
            .is_ok()
    })
}
