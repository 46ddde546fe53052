//! Reading the docs for tests/it/docs_examples.rs: Markdown blocks and
//! their notes, curl command lines, and comparing shown answers with real
//! ones.

pub mod curl;
pub mod markdown;
pub mod shape;
