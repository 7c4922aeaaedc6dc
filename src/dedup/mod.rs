//! Deduplication: when two addresses or two texts are one story.

mod canonical_url;

pub use canonical_url::canonicalize;
