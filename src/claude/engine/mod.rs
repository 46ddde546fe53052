//! The turn engine: where a turn begins, which conversation it continues, the
//! turn itself on its CLI process, its stream, the turns that wait for tool
//! results and giving them up.

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
