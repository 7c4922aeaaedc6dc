//! Helpers shared by the integration tests.

pub mod feeds;
pub mod server;
