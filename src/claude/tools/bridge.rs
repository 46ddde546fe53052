//! The server's side of the MCP bridge for one CLI child: a Unix socket in
//! the session's directory, and a thread that answers the MCP requests the
//! CLI sends through `claude-cli-api mcp-bridge` (see `relay`).
//!
//! `tools/list` answers the request's functions. A `tools/call` is not run
//! here: it waits, keyed by the CLI's tool_use id, until the client's
//! result for that id is handed over with [`Bridge::answer`] (which may
//! come first, too). Nothing a client sent is ever executed.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};

use super::spec::SERVER_NAME;

/// An MCP message longer than this ends the connection.
const MAX_MESSAGE_BYTES: u64 = 16 * 1024 * 1024;
/// `sun_path` holds 108 bytes, the final NUL included.
const MAX_SOCKET_PATH: usize = 107;

/// A name for the socket at `path` that fits in `sun_path`: the path
/// itself, or for a longer one its directory opened and named through
/// `/proc/self/fd` (the open directory is returned: keep it while using
/// the name). Used to bind and to connect alike.
pub fn reachable(path: &Path) -> io::Result<(Option<std::fs::File>, PathBuf)> {
    if path.as_os_str().len() <= MAX_SOCKET_PATH {
        return Ok((None, path.to_path_buf()));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(
            "a socket path needs a directory and a name",
        ));
    };
    let dir = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    if short.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(io::Error::other("the socket's name is too long"));
    }
    Ok((Some(dir), short))
}

/// A tool's result as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAnswer {
    pub text: String,
    pub is_error: bool,
}

impl ToolAnswer {
    pub fn error(text: &str) -> ToolAnswer {
        ToolAnswer {
            text: text.to_string(),
            is_error: true,
        }
    }
}

pub struct Bridge {
    state: Arc<State>,
    socket: PathBuf,
    thread: Option<JoinHandle<()>>,
}

struct State {
    calls: Mutex<Calls>,
    /// Signalled whenever a `tools/list` has been answered.
    listed: Condvar,
    stop: AtomicBool,
}

#[derive(Default)]
struct Calls {
    /// The `tools/list` result.
    tools: Value,
    /// `tools/list` requests answered so far.
    lists_served: u64,
    /// The connection's write half, while the CLI is connected.
    writer: Option<UnixStream>,
    /// Calls the CLI waits on: tool_use id → JSON-RPC id.
    asked: HashMap<String, Value>,
    /// Results that came before their call.
    early: HashMap<String, ToolAnswer>,
    /// While set, every call is answered at once with this error.
    declining: Option<String>,
}

impl Bridge {
    /// Listens on a new socket (mode 0600) in `dir`, serving `tools`.
    pub fn start(dir: &Path, tools: Value) -> io::Result<Bridge> {
        let name = format!(
            "mcp-{}.sock",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let socket = dir.join(name);
        let (_dir, reachable_name) = reachable(&socket)?;
        let listener = UnixListener::bind(&reachable_name)?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        let state = Arc::new(State {
            calls: Mutex::new(Calls {
                tools,
                ..Calls::default()
            }),
            listed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let serving = state.clone();
        let thread = thread::Builder::new()
            .name("mcp-bridge".into())
            .stack_size(128 * 1024)
            .spawn(move || serve(listener, &serving))?;
        Ok(Bridge {
            state,
            socket,
            thread: Some(thread),
        })
    }

    /// The `--mcp-config` value that has the CLI start this binary as the
    /// bridge's stdio end.
    pub fn mcp_config(&self, exe: &Path) -> String {
        json!({"mcpServers": {SERVER_NAME: {
            "type": "stdio",
            "command": exe,
            "args": ["mcp-bridge", self.socket],
        }}})
        .to_string()
    }

    /// Hands the client's result for call `id` to the CLI (now, or when the
    /// CLI asks).
    pub fn answer(&self, id: &str, answer: ToolAnswer) {
        let mut calls = self.state.calls.lock();
        match calls.asked.remove(id) {
            Some(rpc_id) => reply(&mut calls, rpc_id, &answer),
            None => {
                calls.early.insert(id.to_string(), answer);
            }
        }
    }

    /// Answers every call the CLI waits on, and every call it makes from
    /// now on until [`Bridge::accept_calls`], with the error `text`.
    pub fn decline_all(&self, text: &str) {
        let mut calls = self.state.calls.lock();
        calls.declining = Some(text.to_string());
        let waiting: Vec<(String, Value)> = calls.asked.drain().collect();
        for (_, rpc_id) in waiting {
            reply(&mut calls, rpc_id, &ToolAnswer::error(text));
        }
    }

    /// Calls wait for the client again (a new turn has begun).
    pub fn accept_calls(&self) {
        let mut calls = self.state.calls.lock();
        calls.declining = None;
        calls.early.clear();
    }

    /// Lists `tools` from now on, tells the CLI so (MCP
    /// `notifications/tools/list_changed`) and waits up to `wait` for it to
    /// ask for the new list. False when it did not: its next turn might
    /// still see the old one.
    pub fn replace_tools(&self, tools: Value, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut calls = self.state.calls.lock();
        calls.tools = tools;
        let before = calls.lists_served;
        send(
            &mut calls,
            &json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
        );
        while calls.lists_served == before {
            if calls.writer.is_none()
                || self
                    .state
                    .listed
                    .wait_until(&mut calls, deadline)
                    .timed_out()
            {
                return calls.lists_served > before;
            }
        }
        true
    }

    /// Tool_use ids the CLI is waiting on right now.
    pub fn waiting_on(&self) -> Vec<String> {
        self.state.calls.lock().asked.keys().cloned().collect()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(writer) = self.state.calls.lock().writer.take() {
            let _ = writer.shutdown(std::net::Shutdown::Both);
        }
        // Wakes the accept the thread may be blocked in.
        if let Ok((_dir, name)) = reachable(&self.socket) {
            let _ = UnixStream::connect(name);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Serves one connection at a time (the CLI reconnects if it restarts its
/// MCP server) until the bridge is dropped.
fn serve(listener: UnixListener, state: &State) {
    for conn in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let Ok(writer) = conn.try_clone() else {
            continue;
        };
        state.calls.lock().writer = Some(writer);
        let mut reader = BufReader::new(conn);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut reader)
                .take(MAX_MESSAGE_BYTES)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with(b"\n") && line.len() as u64 >= MAX_MESSAGE_BYTES => break,
                Ok(_) => handle(state, &line),
            }
        }
        let mut calls = state.calls.lock();
        calls.writer = None;
        // Calls of a connection that is gone can no longer be answered.
        calls.asked.clear();
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn handle(state: &State, line: &[u8]) {
    let Ok(message) = serde_json::from_slice::<Value>(line) else {
        return;
    };
    let id = message.get("id").cloned();
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let Some(id) = id else {
        // A notification (initialized, cancelled, ...): nothing to answer.
        return;
    };
    let mut calls = state.calls.lock();
    let result = match method {
        "initialize" => {
            let version = message
                .pointer("/params/protocolVersion")
                .cloned()
                .unwrap_or_else(|| json!("2025-06-18"));
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": true}},
                "serverInfo": {"name": "claude-cli-api", "version": env!("CARGO_PKG_VERSION")},
            })
        }
        "tools/list" => {
            let tools = calls.tools.clone();
            send(
                &mut calls,
                &json!({"jsonrpc": "2.0", "id": id, "result": tools}),
            );
            calls.lists_served += 1;
            state.listed.notify_all();
            return;
        }
        "ping" => json!({}),
        "tools/call" => {
            let use_id = message
                .pointer("/params/_meta/claudecode~1toolUseId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(use_id) = use_id else {
                reply(
                    &mut calls,
                    id,
                    &ToolAnswer::error("The call carries no tool use id."),
                );
                return;
            };
            if let Some(text) = calls.declining.clone() {
                reply(&mut calls, id, &ToolAnswer::error(&text));
            } else if let Some(answer) = calls.early.remove(&use_id) {
                reply(&mut calls, id, &answer);
            } else {
                calls.asked.insert(use_id, id);
            }
            return;
        }
        _ => {
            send(
                &mut calls,
                &json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": "method not found"}}),
            );
            return;
        }
    };
    send(
        &mut calls,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    );
}

fn reply(calls: &mut Calls, rpc_id: Value, answer: &ToolAnswer) {
    send(
        calls,
        &json!({"jsonrpc": "2.0", "id": rpc_id, "result": {
            "content": [{"type": "text", "text": answer.text}],
            "isError": answer.is_error,
        }}),
    );
}

fn send(calls: &mut Calls, message: &Value) {
    let Some(writer) = calls.writer.as_mut() else {
        return;
    };
    let mut line = message.to_string();
    line.push('\n');
    if writer.write_all(line.as_bytes()).is_err() {
        calls.writer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(stream: &mut UnixStream, reader: &mut BufReader<UnixStream>, msg: Value) -> Value {
        stream.write_all(format!("{msg}\n").as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn lists_the_tools_and_pairs_calls_with_results_in_either_order() {
        let dir = tempfile_dir();
        let bridge = Bridge::start(&dir, json!({"tools": [{"name": "f"}]})).unwrap();
        let config: Value = serde_json::from_str(&bridge.mcp_config(Path::new("/bin/x"))).unwrap();
        let socket = config["mcpServers"]["client"]["args"][1]
            .as_str()
            .unwrap()
            .to_string();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (_dir, name) = reachable(Path::new(&socket)).unwrap();
        let mut stream = UnixStream::connect(name).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let init = rpc(
            &mut stream,
            &mut reader,
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}),
        );
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
        stream
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .unwrap();
        let list = rpc(
            &mut stream,
            &mut reader,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        );
        assert_eq!(list["result"]["tools"][0]["name"], "f");

        // The result first, then the call.
        bridge.answer(
            "toolu_a",
            ToolAnswer {
                text: "early".into(),
                is_error: false,
            },
        );
        let call = |id: u32, use_id: &str| {
            json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"f","arguments":{},"_meta":{"claudecode/toolUseId":use_id}}})
        };
        let got = rpc(&mut stream, &mut reader, call(2, "toolu_a"));
        assert_eq!(got["id"], 2);
        assert_eq!(got["result"]["content"][0]["text"], "early");
        assert_eq!(got["result"]["isError"], false);

        // The call first: it waits for its result.
        stream
            .write_all(format!("{}\n", call(3, "toolu_b")).as_bytes())
            .unwrap();
        let asked_by = std::time::Instant::now() + Duration::from_secs(5);
        while bridge.waiting_on().is_empty() {
            assert!(
                std::time::Instant::now() < asked_by,
                "the call never arrived"
            );
            thread::sleep(Duration::from_millis(5));
        }
        bridge.answer("toolu_b", ToolAnswer::error("failed"));
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let got: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (got["id"].clone(), got["result"]["isError"].clone()),
            (json!(3), json!(true))
        );

        // Declining answers waiting and later calls at once.
        bridge.decline_all("not run");
        let got = rpc(&mut stream, &mut reader, call(4, "toolu_c"));
        assert_eq!(got["result"]["content"][0]["text"], "not run");
        drop(bridge);
        assert!(!Path::new(&socket).exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_new_tool_list_is_announced_and_waited_for() {
        let dir = tempfile_dir();
        let bridge = Bridge::start(&dir, json!({"tools": []})).unwrap();
        let config: Value = serde_json::from_str(&bridge.mcp_config(Path::new("/x"))).unwrap();
        let socket = config["mcpServers"]["client"]["args"][1]
            .as_str()
            .unwrap()
            .to_string();
        let (_dir, name) = reachable(Path::new(&socket)).unwrap();
        let mut stream = UnixStream::connect(name).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let pong = rpc(
            &mut stream,
            &mut reader,
            json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
        );
        assert_eq!(pong["result"], json!({}));
        let cli = thread::spawn(move || {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let told: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(told["method"], "notifications/tools/list_changed");
            rpc(
                &mut stream,
                &mut reader,
                json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
            )
        });
        assert!(bridge.replace_tools(json!({"tools": [{"name": "g"}]}), Duration::from_secs(5)));
        let listed = cli.join().unwrap();
        assert_eq!(listed["result"]["tools"][0]["name"], "g");
        // Nobody asks again: the change is not confirmed.
        assert!(!bridge.replace_tools(json!({"tools": []}), Duration::from_millis(100)));
        drop(bridge);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        // Longer than a socket path may be: reached through /proc/self/fd.
        let dir = std::env::temp_dir()
            .join(format!("bridge-{}", uuid::Uuid::new_v4().simple()))
            .join("a-directory-name-long-enough-to-pass-the-limit-of-sun-path-on-its-own");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
