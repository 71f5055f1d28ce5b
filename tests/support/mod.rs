//! Integration-test support: the test kit (testkit/, shared with the fuzz
//! targets, the bench and the demo) and this suite's own case tables.
//! Used from each test binary with `mod support;`.
#![allow(dead_code, unused_imports)]

pub mod cases;
pub mod cli;
pub mod files;
pub mod mesh_cases;

pub use testkit::*;
pub use testkit::{envoy, http, servers, tokens};
