//! The integration tests, as one test binary (`cargo test --test it`): a
//! module per area, and the harness they share (`support`: the server in
//! process, a raw HTTP client, the fake OpenAI upstream, the warm-session
//! harness and the built binary as a child process; `docs_support`: reading
//! the docs' examples). One binary links once, where a crate per file
//! linked the library and its dependencies ~20 times over.
//!
//! The tests run as threads of this one process, so none may change what
//! the process shares: no environment variables set, no working directory
//! changed, and processes counted only by what a test itself started (its
//! own records directory, its own server), never by scanning for all of
//! them. `cargo test --test it warm::` runs one area.

mod docs_support;
mod support;

mod accounts;
mod agents;
mod allowance;
mod anthropic;
mod check;
mod claude;
mod departed_clients;
mod docs_examples;
mod drain;
mod foundation;
mod history;
mod lingering_close;
mod log_hygiene;
mod metrics;
mod passthrough;
mod relay;
mod responses;
mod security;
mod session_endpoints;
mod slow_clients;
mod spares;
mod supervision;
mod thinking;
mod tools;
mod warm;
mod workers;
