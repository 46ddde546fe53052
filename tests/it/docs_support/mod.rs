//! Reading the docs for tests/docs_examples.rs: Markdown blocks and their
//! notes, curl command lines, and comparing shown answers with real ones.
#![allow(dead_code)]

pub mod curl;
pub mod markdown;
pub mod shape;
