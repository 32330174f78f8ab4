//! The regions' questions answered from ClickHouse: the report's
//! [`panels`] (title, question, chart; their SQL is
//! `distans_store::panels`), their [`answers`] as terminal tables or one
//! HTML page with SVG charts, the [`grafana`] dashboard built from the same
//! panels, the [`findings`] per rule with what each rule means, and the
//! [`audit`] tables of `distans audit`.
//!
//! Modules depend one way: `panels` at the bottom, `answers` and `grafana`
//! on it; `findings` and `audit` stand alone.

pub mod answers;
pub mod audit;
pub mod findings;
pub mod grafana;
pub mod labels;
pub mod panels;
