//! `claude-cli-api mcp-bridge <socket>`: the stdio MCP server the CLI
//! starts. It copies the CLI's MCP messages to the server's socket and the
//! answers back, and nothing more; it ends when either side closes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

/// Runs the relay; the process's exit status.
pub fn run(socket: &str) -> i32 {
    let stream = match super::bridge::reachable(std::path::Path::new(socket))
        .and_then(|(_dir, name)| UnixStream::connect(name))
    {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("mcp-bridge: cannot reach the server at {socket}: {e}");
            return 1;
        }
    };
    let Ok(mut to_server) = stream.try_clone() else {
        return 1;
    };
    let spawned = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut to_server);
            // The CLI closed our stdin: it is done with its tools.
            std::process::exit(0);
        });
    if spawned.is_err() {
        return 1;
    }
    let mut from_server = stream;
    let mut stdout = io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from_server.read(&mut buf) {
            Ok(0) => return 0,
            Ok(n) => {
                if stdout
                    .write_all(&buf[..n])
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return 0;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return 0,
        }
    }
}
