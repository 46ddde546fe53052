//! What a warm child must share with a turn to take it.

use sha2::{Digest, Sha256};

use crate::claude::tools::ToolSpec;

/// What a warm child must share with a turn to take it: the system prompt
/// it read at start and its output schema (as digests), and the functions
/// it offers, which a child with a bridge can be told to change (see
/// [`CliProcess::fits`]). Its model it can be told to change too (see
/// `settings`). The owner, working directory and environment follow from
/// the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub system: Option<[u8; 32]>,
    pub schema: Option<[u8; 32]>,
    pub functions: Option<[u8; 32]>,
}

impl Shape {
    pub fn new(system: Option<&str>, tools: &ToolSpec) -> Shape {
        Shape {
            system: system.map(|text| Sha256::digest(text.as_bytes()).into()),
            schema: tools.schema_digest(),
            functions: tools.functions_digest(),
        }
    }
}
