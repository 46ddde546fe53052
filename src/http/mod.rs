//! The HTTP side of the server, which knows nothing of the API it serves:
//! the values a request becomes ([`Head`], [`Incoming`], [`Reply`]), the
//! threads that answer ([`workers`]), reading a body, writing an answer
//! (whole or as server-sent events), watching for a client that has gone
//! meanwhile, and the CORS policy.

pub mod body;
pub mod cors;
pub mod message;
pub mod send;
pub mod sse;
mod watch;
pub mod workers;

pub use message::{Afterwards, Body, Head, Incoming, Reply, StreamBody, TurnFacts};
pub use sse::SseWriter;
pub use watch::ClientWatch;
