//! bantin's integration tests: one binary, one module per area.

mod publish;
mod serve;
mod support;
