//! Client functions and structured output in Claude Code mode. The request's
//! functions are offered to the CLI as the tools of one stdio MCP server,
//! the bridge: the CLI starts this same binary as `mcp-bridge <socket>`
//! (`relay`), which carries MCP messages to a Unix socket the server
//! listens on in the session's directory (`bridge`). A call the model makes
//! ends the client's answer with `tool_calls`; the CLI waits on the bridge
//! until the client's next request brings the results.
//!
//! Why a socket and not an MCP endpoint on the HTTP port: a call may wait
//! minutes, and on the socket it waits on a small thread of its own rather
//! than a worker of the HTTP pool; the socket is reachable only by this
//! server's user (mode 0600, in a 0700 directory), so it needs no secret,
//! and it is gone with the session.

pub mod bridge;
mod functions;
pub mod relay;
mod response_format;
pub mod spec;

pub use bridge::{Bridge, ToolAnswer};
pub use spec::{read_tool_spec, Function, ToolSpec, STRUCTURED_OUTPUT_TOOL, TOOL_PREFIX};
