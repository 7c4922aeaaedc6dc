//! Helpers shared by the integration tests: a real HTTP server on 127.0.0.1 serving a
//! fixture folder ([`TestSite`]) and configurations written to a temporary folder.

#![allow(dead_code)]

mod config;
mod site;

pub use config::TestConfig;
#[allow(unused_imports)]
pub use site::{Override, OverrideBody, Request, TestSite};
