//! Synthetic data for distans: a deterministic year of invoice lines for a
//! home region ([`generate`]), the region's listing register to go with
//! them ([`register`]), what both imply for the pipeline's results
//! ([`summary`]). `distans-files` writes them to files.
//!
//! Same options and seed, same lines and register, byte for byte.
//! Modules depend one way: `profile` (regions and patients) and `summary`
//! at the bottom, then `generate`, then `register`.

pub mod error;
pub mod generate;
pub mod profile;
pub mod register;
pub mod summary;

pub use error::Error;
