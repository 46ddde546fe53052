//! What the CLI gets for a request: the body checked, the conversation read,
//! the prompt and arguments built, the model mapped, the thinking asked
//! for, and the digest that finds a resent conversation's session.

pub mod history;
pub mod messages;
pub mod models;
pub mod prompt;
pub mod thinking;
pub mod validate;
