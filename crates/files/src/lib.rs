//! The files a region's data travels in, read and written: invoice lines
//! as JSON lines or CSV ([`invoices`]), and the listing register as CSV
//! ([`listing`]). Readers take a file whole or not at all: every bad row is
//! reported (up to twenty, with line numbers) and none is returned.
//!
//! `distans produce` and `distans listing import` read these files; the
//! synthetic-data generator (`distans-synth`) writes them.

pub mod errors;
pub mod invoices;
pub mod listing;

pub use errors::{ReadError, RowError};
