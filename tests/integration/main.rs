//! bantin's integration tests: one binary, one module per area.

mod classify;
mod store;
mod support;
