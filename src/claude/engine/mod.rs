//! The turn engine: where a turn begins, which conversation it continues, the
//! turn itself on its CLI process, its stream, the turns that wait for tool
//! results and giving them up.

pub(in crate::claude) mod accounts;
pub(in crate::claude) mod begin;
pub(in crate::claude) mod cold_start;
pub(in crate::claude) mod follow_up;
pub(in crate::claude) mod give_up;
pub(in crate::claude) mod resolve;
pub mod run;
pub(in crate::claude) mod stream;
pub(in crate::claude) mod turn;
pub(in crate::claude) mod waiting;
pub(in crate::claude) mod watching;

use std::sync::Arc;

use crate::claude::request::validate::ValidChat;
use crate::dialect::Dialect;
use crate::http::Incoming;
use crate::session_id::SessionId;

/// One turn as the engine takes it, whichever API asked: the checked
/// conversation with its tools and output schema, the session the request
/// names, and how the answer is written. Every API makes one of these from
/// its own body; the engine never sees that body.
pub struct TurnRequest<'a> {
    /// Who asked, on which connection: key, client address, request id.
    pub incoming: &'a Incoming,
    pub chat: ValidChat,
    /// `X-Claude-Session-ID`, or the session of the earlier answer the
    /// request continues (`previous_response_id`, `thread`). The other
    /// clues (call ids, the resent history) are in `chat`; `resolve`
    /// weighs them all.
    pub session_id: Option<SessionId>,
    /// The answer in another API's words; `None` is Chat Completions.
    pub dialect: Option<Arc<dyn Dialect>>,
}
