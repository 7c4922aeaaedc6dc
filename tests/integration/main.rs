//! bantin's integration tests: one binary, one module per area.

mod check;
mod classify;
mod store;
mod support;
