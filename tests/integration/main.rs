//! Integration tests: one binary, one module per area, helpers in `support`.

mod support;

mod fetch;
mod sources;
