//! Small news pages written into a site folder by tests that change a site while bantin
//! runs against it: listings of `/tin-tuc/bai-<n>-i<10000+n>/` links.

use std::path::Path;

/// The address of article `n`, as the fixture site `news` and these listings link it.
pub fn article_path(n: u32) -> String {
    format!("/tin-tuc/bai-{n}-i{}/", 10000 + n)
}

/// Writes `list/index.html`: links to articles `numbers`, each in an
/// `article.story` inside a `div` of class `container`.
pub fn write_listing(site_dir: &Path, container: &str, numbers: impl Iterator<Item = u32>) {
    let links: String = numbers
        .map(|n| {
            format!(
                "<article class=\"story\"><h3><a href=\"{}\">Bài {n}</a></h3></article>",
                article_path(n)
            )
        })
        .collect();
    std::fs::create_dir_all(site_dir.join("list")).unwrap();
    std::fs::write(
        site_dir.join("list/index.html"),
        format!(
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Tin</title></head>\
             <body><div class=\"{container}\">{links}</div></body></html>"
        ),
    )
    .unwrap();
}
