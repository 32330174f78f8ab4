//! The `distans` operator command, as a library so the end-to-end tests
//! drive the same code: one module per command in [`cmd`], and
//! [`poll::poll_until`] for the waits.

pub mod cmd;
pub mod poll;
