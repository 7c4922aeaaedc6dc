//! The identity of an article address: two URLs that reach the same article map to
//! the same canonical URL. Used as a dedup key; pages are still fetched at the address
//! the site gave.

use url::Url;

use crate::model::Article;

/// Query parameters that only track where a reader came from.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "zarsrc",
    "gidzl",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "ref",
    "ref_src",
    "ref_url",
    "amp",
    "outputType",
    "s_cid",
    "cmpid",
    "icid",
    "ito",
    "spm",
];
/// Prefixes of tracking parameter families.
const TRACKING_PREFIXES: &[&str] = &["utm_", "zalo_", "pk_", "mtm_", "hsa_", "vero_"];
/// Host prefixes that serve the same article as the main host.
const MIRROR_HOST_PREFIXES: &[&str] = &["www.", "amp.", "m.", "mobile."];

fn is_tracking(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TRACKING_PARAMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&lower))
        || TRACKING_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// The canonical form of an article URL: lower-case host without `www.`/`amp.`/`m.`,
/// no default port, no fragment, no tracking parameters, remaining parameters sorted,
/// no AMP path variants, no trailing slash.
pub fn canonicalize(url: &Url) -> Url {
    let mut out = url.clone();
    out.set_fragment(None);
    // Sites serve one article over both schemes; the key is the secure one.
    if out.scheme() == "http" {
        let _ = out.set_scheme("https");
    }
    if let Some(host) = url.host_str() {
        let mut host = host.to_ascii_lowercase();
        while let Some(rest) = MIRROR_HOST_PREFIXES
            .iter()
            .find_map(|p| host.strip_prefix(p).filter(|r| r.contains('.')))
        {
            host = rest.to_owned();
        }
        // Setting a host the url crate already parsed cannot fail.
        let _ = out.set_host(Some(&host));
    }

    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    if params.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(&params);
    }

    let path = url.path();
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("amp"))
        .collect();
    let mut joined = segments.join("/");
    for suffix in [".amp.html", ".amp.htm"] {
        if let Some(stem) = joined.strip_suffix(suffix) {
            joined = format!("{stem}.html");
        }
    }
    if let Some(stem) = joined.strip_suffix(".amp") {
        joined = stem.to_owned();
    }
    out.set_path(&format!("/{joined}"));
    out
}

/// The address an article is stored under: its `rel=canonical` (or `og:url`) when that
/// points to the same site, else the address it was fetched from; canonicalized either
/// way. A canonical link to another site (a syndication partner) is not trusted as a key.
pub fn dedup_key(article: &Article) -> Url {
    let fetched = canonicalize(&article.url);
    match &article.canonical_url {
        Some(declared) => {
            let declared = canonicalize(declared);
            if declared.host_str() == fetched.host_str() {
                declared
            } else {
                fetched
            }
        }
        None => fetched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(&Url::parse(s).unwrap()).to_string()
    }

    #[test]
    fn variants_of_one_article_collapse() {
        let expected = "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751";
        for variant in [
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/",
            "https://CAND.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751",
            "https://www.cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/",
            "https://cand.com.vn:443/Hoat-dong-LL-CAND/bat-giu-i707751/",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/#comments",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/?utm_source=fb&utm_medium=x",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/?fbclid=abc",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/?zarsrc=31&zalo_id=2",
            "https://amp.cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/amp/",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751/?amp",
            "https://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751.amp",
            "http://cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751",
            "HTTPS://m.cand.com.vn/Hoat-dong-LL-CAND/bat-giu-i707751?gclid=1&utm_term=a#top",
            "https://cand.com.vn/Hoat-dong-LL-CAND//bat-giu-i707751/?_ga=2.1&mc_cid=x",
        ] {
            assert_eq!(canon(variant), expected, "{variant}");
        }
    }

    #[test]
    fn meaningful_query_is_kept_and_sorted() {
        assert_eq!(
            canon("https://example.org/news?b=2&utm_campaign=x&a=1"),
            "https://example.org/news?a=1&b=2"
        );
    }

    #[test]
    fn amp_html_suffix_becomes_html() {
        assert_eq!(
            canon("https://example.org/2023/story.amp.html"),
            "https://example.org/2023/story.html"
        );
    }

    #[test]
    fn other_ports_and_paths_stay_distinct() {
        assert_ne!(
            canon("http://example.org:8080/a"),
            canon("http://example.org/a")
        );
        assert_ne!(
            canon("https://example.org/a-1"),
            canon("https://example.org/a-2")
        );
    }

    #[test]
    fn same_site_canonical_link_is_the_key() {
        let mut article = crate::dedup::tests::article(
            "https://m.cand.com.vn/a/story-i1/?utm_source=zalo",
            "t",
            "b",
        );
        article.canonical_url =
            Some(Url::parse("https://cand.com.vn/chuyen-muc/story-i1").unwrap());
        assert_eq!(
            dedup_key(&article).as_str(),
            "https://cand.com.vn/chuyen-muc/story-i1"
        );
    }

    #[test]
    fn other_site_canonical_link_is_ignored() {
        let mut article =
            crate::dedup::tests::article("https://baomoi.com/tin/story-1.epi", "t", "b");
        article.canonical_url = Some(Url::parse("https://cand.com.vn/story-i1").unwrap());
        assert_eq!(
            dedup_key(&article).as_str(),
            "https://baomoi.com/tin/story-1.epi"
        );
    }
}
