//! One module per `distans` command, each a `run` function taking the
//! command's arguments and the settings (as mini-redis's `cmd/`).

pub mod audit;
pub mod dead_letters;
pub mod generate;
pub mod grafana;
pub mod listing;
pub mod migrate;
pub mod panels;
pub mod produce;
pub mod refresh;
pub mod report;
pub mod schemas;
pub mod wait;
