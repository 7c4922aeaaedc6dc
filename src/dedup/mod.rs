//! Deduplication: when two addresses or two texts are one story. Pure functions; the
//! store keeps the keys and the near-duplicate index.

mod canonical_url;
mod near_duplicate;

pub use canonical_url::{canonicalize, dedup_key};
pub use near_duplicate::{
    Bands, MIN_SHINGLES, body_simhash, content_hash, hamming, shingle_count, simhash,
};

#[cfg(test)]
pub(crate) mod tests {
    use crate::model::Article;
    use url::Url;

    /// A minimal article for unit tests.
    pub(crate) fn article(url: &str, title: &str, body: &str) -> Article {
        Article {
            url: Url::parse(url).expect("test URL is valid"),
            canonical_url: None,
            title: title.into(),
            published: None,
            updated: None,
            authors: vec![],
            lead: None,
            body_html: format!("<p>{body}</p>"),
            body_text: body.into(),
            image: None,
            tags: vec![],
            section: None,
            language: Some("vi".into()),
            provenance: Default::default(),
        }
    }
}
