//! One `claude` child's life: finding the CLI, starting a process (cold or
//! ahead as a spare), its pipes, the settings it is told between turns, the
//! slots that bound them, and the warm ones kept for their sessions.

pub(crate) mod locate;
pub mod output;
pub mod process;
pub mod settings;
pub(in crate::claude) mod shape;
pub mod slots;
pub(in crate::claude) mod spares;
pub mod spawn;
pub(in crate::claude) mod stdin;
pub mod warm;
