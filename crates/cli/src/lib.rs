//! The `distans` operator command, as a library so the end-to-end tests
//! drive the same code.

pub mod answers;
pub mod dead_letters;
pub mod files;
pub mod generate;
pub mod grafana;
pub mod listing;
pub mod panels;
pub mod poll;
pub mod produce;
pub mod register;
pub mod report;
