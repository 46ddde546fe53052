//! Reading the CLI's output: its stream-json lines, the adapter that turns
//! them into the turn's events and whole answer, the chat chunks, the
//! calls, the failures and the redaction of credentials.

pub mod adapter;
pub(in crate::claude) mod chunks;
pub mod failure;
pub mod redact;
pub mod stream_json;
pub(in crate::claude) mod tool_calls;
