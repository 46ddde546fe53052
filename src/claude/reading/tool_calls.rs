//! The tool calls of one answer, as the CLI's stream shows them: which
//! content block of the current model message is which call, their
//! arguments as they arrive.
//!
//! A `tool_use` block of a bridge tool is a client call; the
//! `StructuredOutput` block of `--json-schema` is the answer itself (its
//! arguments are the content); any other tool is the CLI's own business.

use std::collections::HashMap;
use std::sync::Arc;

use crate::claude::tools::{ToolSpec, STRUCTURED_OUTPUT_TOOL};
pub use crate::turn_event::Call;

/// What a content block of the current message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// The answer's n-th call.
    Call(usize),
    /// The structured answer.
    Structured,
}

pub struct ToolCalls {
    spec: Arc<ToolSpec>,
    pub calls: Vec<Call>,
    blocks: HashMap<u64, Block>,
    /// Client calls in the current model message.
    in_message: usize,
}

impl ToolCalls {
    pub fn new(spec: Arc<ToolSpec>) -> ToolCalls {
        ToolCalls {
            spec,
            calls: Vec::new(),
            blocks: HashMap::new(),
            in_message: 0,
        }
    }

    pub fn legacy(&self) -> bool {
        self.spec.legacy
    }

    /// True when the answer is the `StructuredOutput` call's arguments.
    pub fn structured(&self) -> bool {
        self.spec.output_schema.is_some()
    }

    /// A new model message: block indexes start again.
    pub fn message_started(&mut self) {
        self.blocks.clear();
        self.in_message = 0;
    }

    /// True when the current message made client calls: if it stops for
    /// `tool_use`, the CLI now waits for their results.
    pub fn message_called(&self) -> bool {
        self.in_message > 0
    }

    /// A `tool_use` block began; what it is, if it concerns the client.
    pub fn block_started(&mut self, index: u64, id: &str, name: &str) -> Option<Block> {
        let block = if self.structured() && name == STRUCTURED_OUTPUT_TOOL {
            Block::Structured
        } else {
            let client = self.spec.client_name(name)?;
            self.calls.push(Call {
                id: id.to_string(),
                name: client.to_string(),
                arguments: String::new(),
            });
            self.in_message += 1;
            Block::Call(self.calls.len() - 1)
        };
        self.blocks.insert(index, block);
        Some(block)
    }

    pub fn block(&self, index: u64) -> Option<Block> {
        self.blocks.get(&index).copied()
    }

    /// Adds a piece of call `n`'s arguments; false when there is no such
    /// call.
    pub fn add_arguments(&mut self, n: usize, piece: &str) -> bool {
        let Some(call) = self.calls.get_mut(n) else {
            return false;
        };
        call.arguments.push_str(piece);
        true
    }
}
