//! Scenario files: the TOML contract of SCENARIOS.md, parsed, validated and resolved into
//! [`model::Scenario`].

pub mod model;

pub use model::*;
