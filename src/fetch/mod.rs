//! Fetching pages over HTTP.

pub mod charset;
