//! bantin's integration tests: one binary, one module per area.

mod check;
mod classify;
mod publish;
mod serve;
mod store;
mod support;
