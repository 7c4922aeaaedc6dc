//! bantin turns news websites into clean, deduplicated RSS 2.0, Atom 1.0 and JSON Feed
//! feeds per category. Each module is one stage of the pipeline
//! (sources → fetch → extract → dedup → classify → store → publish → serve);
//! `pipeline` is the one place that calls several of them in order.

pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dedup;
pub mod demo;
pub mod extract;
pub mod fetch;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod publish;
pub mod reload;
pub mod schedule;
pub mod serve;
pub mod sources;
pub mod store;
pub mod suggest;
pub mod text;

/// An error and its causes on one line, `outer: inner: ...`, for places that keep
/// errors as text.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
