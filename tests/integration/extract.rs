//! Article extraction on fixture pages, with and without configured selectors, hostile
//! input, and `bantin preview`.

use std::path::Path;

use assert_cmd::Command;
use bantin::config::{ArticleRules, Css};
use bantin::extract::{self, ExtractError};
use bantin::fetch::charset::decode_html;
use bantin::model::{Article, Field, Origin};
use url::Url;

const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;
/// When the fixture pages count as fetched.
const FETCHED_AT: &str = "2024-03-05T02:00:00Z";

fn fixture(name: &str) -> String {
    let bytes =
        std::fs::read(Path::new("tests/fixtures/extract").join(name)).expect("fixture exists");
    decode_html(&bytes, None).0
}

fn css(text: &str) -> Option<Css> {
    Some(Css {
        text: text.to_owned(),
        selector: scraper::Selector::parse(text).expect("test selector is valid"),
    })
}

/// `html` extracted as the page at `url` with `rules`, fetched at [`FETCHED_AT`].
fn extract_page(html: &str, url: &str, rules: &ArticleRules) -> Result<Article, ExtractError> {
    let url = Url::parse(url).expect("valid");
    let fetched_at = FETCHED_AT.parse().expect("valid RFC 3339");
    let input = extract::Input {
        url: &url,
        rules,
        zone: HCM,
        fetched_at,
    };
    extract::article(html, &input)
}

fn extract(name: &str, url: &str, rules: &ArticleRules) -> Article {
    extract_page(&fixture(name), url, rules).expect("fixture has an article")
}

/// The fields every fixture is checked on.
struct Expected<'a> {
    title: &'a str,
    published: &'a str,
    lead: &'a str,
    authors: &'a [&'a str],
    image: &'a str,
    body_start: &'a str,
    body_end: &'a str,
    not_in_body: &'a [&'a str],
}

fn check(a: &Article, e: &Expected) {
    assert_eq!(a.title, e.title);
    assert_eq!(
        a.published.map(|d| d.to_rfc3339()).as_deref(),
        Some(e.published)
    );
    assert_eq!(a.lead.as_deref(), Some(e.lead));
    assert_eq!(a.authors, e.authors);
    assert_eq!(a.image.as_ref().map(Url::as_str), Some(e.image));
    assert!(
        a.body_text.starts_with(e.body_start),
        "body starts {:?}",
        &a.body_text
    );
    assert!(
        a.body_text.ends_with(e.body_end),
        "body ends {:?}",
        &a.body_text
    );
    for junk in e.not_in_body {
        assert!(
            !a.body_text.contains(junk),
            "{junk:?} in body {:?}",
            a.body_text
        );
        assert!(!a.body_html.contains(junk), "{junk:?} in body html");
    }
}

const CAND_URL: &str = "https://cand.com.vn/Hoat-dong-LL-CAND/tuan-tra-dem-i700001/";
const CAND: Expected = Expected {
    title: "Công an phường Tân Định tuần tra đêm, thu giữ 4 xe độ chế",
    published: "2024-03-04T06:15:00+07:00",
    lead: "(CAND) Đêm 3/3, tổ tuần tra Công an phường Tân Định phát hiện nhóm thanh niên tụ tập đua xe, thu giữ 4 xe máy độ chế.",
    authors: &["Lê Minh"],
    image: "https://img.cand.com.vn/resize/800x800/NewFiles/Images/2024/03/04/tuan-tra-dem.jpg",
    body_start: "Khoảng 23h ngày 3/3, tổ công tác",
    body_end: "nhắc nhở các em trong độ tuổi thanh thiếu niên.",
    not_in_body: &[
        "Tin liên quan",
        "Bình luận",
        "quảng cáo",
        "Chia sẻ",
        "(CAND) Đêm 3/3",
    ],
};

#[test]
fn cand_current_template_without_selectors() {
    let a = extract("cand-current.html", CAND_URL, &ArticleRules::default());
    check(&a, &CAND);
    assert_eq!(a.canonical_url.as_ref().map(Url::as_str), Some(CAND_URL));
    assert!(
        a.body_text
            .contains("Các xe máy độ chế bị thu giữ tại trụ sở."),
        "caption kept"
    );
    assert!(
        a.body_html
            .contains(r#"src="https://cand.com.vn/NewFiles/Images/2024/03/04/xe-do-che.jpg""#),
        "lazy relative image resolved: {}",
        a.body_html
    );
    assert_eq!(a.tags, ["tuần tra", "đua xe"]);
    assert_eq!(a.section.as_deref(), Some("Hoạt động của lực lượng CAND"));
    assert_eq!(a.language.as_deref(), Some("vi"));
    assert_eq!(a.provenance[&Field::Title], Origin::JsonLd);
    assert_eq!(a.provenance[&Field::BodyText], Origin::Heuristic);
}

#[test]
fn cand_current_template_with_selectors() {
    let rules = ArticleRules {
        title: css("h1.box-title-detail"),
        published: css("div.box-date"),
        published_format: None,
        author: css("div.box-author strong"),
        lead: css("div.box-des-detail"),
        body: css("div.detail-content-body"),
        image: css("div.box-detail-thumb img"),
        remove: vec![css("div.contref").expect("valid")],
        ..ArticleRules::default()
    };
    let a = extract("cand-current.html", CAND_URL, &rules);
    check(&a, &CAND);
    for field in [
        Field::Title,
        Field::Published,
        Field::Authors,
        Field::Lead,
        Field::BodyHtml,
        Field::Image,
    ] {
        assert_eq!(a.provenance[&field], Origin::Selector, "{field}");
    }
}

const OLD_URL: &str = "https://cand.com.vn/Ban-tin-113/bat-hai-doi-tuong-trom-cap-dien-530200/";
const OLD: Expected = Expected {
    title: "Bắt hai đối tượng trộm cáp điện ở Phú Thọ",
    published: "2019-11-12T09:20:00+07:00",
    lead: "(CAND) Công an huyện Lâm Thao vừa bắt giữ hai đối tượng chuyên trộm cáp điện tại các trạm bơm ven sông.",
    authors: &["Hải Yến", "Tiến Dũng"],
    image: "https://cand.com.vn/Files/Image/2019/11/12/cap-dien.jpg",
    body_start: "Trước đó, nhiều trạm bơm",
    body_end: "với giá rẻ.",
    not_in_body: &["Hải Yến", "Tin cùng chuyên mục", "Từ khóa"],
};

#[test]
fn cand_old_template_without_selectors() {
    let a = extract("cand-old.html", OLD_URL, &ArticleRules::default());
    check(&a, &OLD);
    assert_eq!(a.tags, ["trộm cáp", "Công an Phú Thọ"]);
}

#[test]
fn cand_old_template_with_selectors() {
    let rules = ArticleRules {
        title: css(".titledetail"),
        published: css(".timepost"),
        published_format: Some("%H:%M %d/%m/%Y".into()),
        author: css(".post-content p[style*=right]"),
        lead: css(".desnews"),
        body: css(".post-content"),
        image: css(".imgdetail img"),
        tags: css(".tags li:not(.first) a"),
        section: css(".catename > a"),
        ..ArticleRules::default()
    };
    let a = extract("cand-old.html", OLD_URL, &rules);
    check(&a, &OLD);
    assert_eq!(a.tags, ["trộm cáp", "Công an Phú Thọ"]);
    assert_eq!(a.section.as_deref(), Some("Bản tin 113"));
}

#[test]
fn lead_image_caption_above_the_body_is_not_its_start() {
    // Regression: the caption of the lead image box opened the body text.
    let a = extract(
        "cand-old-lead-caption.html",
        "https://cand.com.vn/Ban-tin-113/triet-pha-o-nhom-trom-cho-530300/",
        &ArticleRules::default(),
    );
    assert!(
        a.body_text.starts_with("Từ đầu năm, người dân"),
        "body starts {:?}",
        a.body_text
    );
    assert!(!a.body_text.contains("Ba đối tượng cùng tang vật"));
    assert!(
        a.body_text.contains("Súng điện tự chế bị thu giữ."),
        "a caption inside the body stays"
    );
    assert!(a.body_text.ends_with("tiếp tục điều tra, mở rộng."));
    assert_eq!(
        a.image.as_ref().map(Url::as_str),
        Some("https://cand.com.vn/Files/Image/2020/03/05/thumb_660_trom-cho.jpg")
    );
}

const ND_URL: &str =
    "https://nhandan.vn/quang-tri-tap-huan-nghiep-vu-cong-tac-dang-post800001.html";
const ND: Expected = Expected {
    title: "Quảng Trị tập huấn nghiệp vụ công tác đảng cho cấp ủy cơ sở",
    published: "2024-05-08T15:40:00+07:00",
    lead: "Ngày 8/5, Ban Tổ chức Tỉnh ủy Quảng Trị mở lớp tập huấn nghiệp vụ công tác đảng cho hơn 200 bí thư chi bộ.",
    authors: &["Thanh Hải"],
    image: "https://image.nhandan.vn/1200x630/Uploaded/2024/quang-tri-tap-huan.jpg",
    body_start: "Lớp tập huấn kéo dài ba ngày",
    body_end: "sinh hoạt định kỳ ở thôn, bản.",
    not_in_body: &["Tin mới", "Ngày 8/5, Ban Tổ chức"],
};

#[test]
fn nhandan_template_without_selectors() {
    let a = extract("nhandan.html", ND_URL, &ArticleRules::default());
    check(&a, &ND);
    assert!(
        a.body_text
            .contains("Quang cảnh lớp tập huấn. Ảnh: Thanh Hải")
    );
    assert!(
        a.body_text.contains("Chú trọng thực hành"),
        "sub-heading kept"
    );
}

#[test]
fn nhandan_template_with_selectors() {
    let rules = ArticleRules {
        title: css("h1.article__title"),
        published: css("time.time"),
        lead: css("div.article__sapo"),
        body: css("div.article__body"),
        author: css(".article__meta .author"),
        ..ArticleRules::default()
    };
    check(&extract("nhandan.html", ND_URL, &rules), &ND);
}

const VNE_URL: &str = "https://vnexpress.net/chay-kho-phe-lieu-o-thu-duc-4760001.html";
const VNE: Expected = Expected {
    title: "Cháy kho phế liệu ở Thủ Đức",
    published: "2024-06-10T14:50:00+07:00",
    lead: "Đám cháy bùng lên trong kho phế liệu rộng khoảng 500 m2, cảnh sát mất hai giờ để khống chế.",
    authors: &["Đình Văn"],
    image: "https://i1-vnexpress.vnecdn.net/2024/06/10/chay-kho.jpg?w=1200&h=0&q=100",
    body_start: "Khoảng 13h, người dân thấy khói đen",
    body_end: "cơ quan chức năng điều tra làm rõ.",
    not_in_body: &["Xem thêm", "Ý kiến bạn đọc", "TP HCM"],
};

#[test]
fn vnexpress_template_without_selectors() {
    let a = extract("vnexpress.html", VNE_URL, &ArticleRules::default());
    check(&a, &VNE);
    assert!(
        a.body_text
            .contains("Lính cứu hỏa phun nước dập lửa. Ảnh: Đình Văn")
    );
}

#[test]
fn vnexpress_template_with_selectors() {
    let rules = ArticleRules {
        title: css("h1.title-detail"),
        published: css("span.date"),
        lead: css("p.description"),
        body: css("article.fck_detail"),
        author: css("article.fck_detail p[style*=right] strong"),
        remove: vec![
            css("span.location-stamp").expect("valid"),
            css("article.fck_detail p[style*=right]").expect("valid"),
        ],
        ..ArticleRules::default()
    };
    let mut expected = VNE;
    // The author paragraph is removed before fields are read, so the byline comes from meta.
    expected.authors = &["Đình Văn"];
    check(&extract("vnexpress.html", VNE_URL, &rules), &expected);
}

const EN_URL: &str = "https://news.example.com/local/cycle-path?ref=home";
const EN: Expected = Expected {
    title: "City opens riverside cycle path after two years of work",
    // The page gives UTC; the same instant is shown in the source's zone.
    published: "2023-09-14T15:30:00+07:00",
    lead: "The six-kilometre path links the old harbour with the university campus.",
    authors: &["Jane Doe"],
    image: "https://news.example.com/images/cycle-path.jpg",
    body_start: "Cyclists lined up before sunrise",
    body_end: "once the last lamps are installed.",
    not_in_body: &["Share on X", "Bus lanes", "First comment", "By Jane Doe"],
};

#[test]
fn english_page_without_selectors() {
    let a = extract("english.html", EN_URL, &ArticleRules::default());
    check(&a, &EN);
    assert_eq!(
        a.canonical_url.as_ref().map(Url::as_str),
        Some("https://news.example.com/local/cycle-path")
    );
    assert!(
        a.body_html
            .contains(r#"href="https://news.example.com/local/path-delays""#)
    );
    assert_eq!(a.language.as_deref(), Some("en"));
}

#[test]
fn english_page_with_selectors() {
    let rules = ArticleRules {
        title: css("article h1"),
        author: css("p.byline"),
        lead: css("p.standfirst"),
        body: css("div.story-body"),
        remove: vec![
            css(".share-tools").expect("valid"),
            css("aside").expect("valid"),
        ],
        ..ArticleRules::default()
    };
    let mut expected = EN;
    expected.authors = &["Jane Doe", "John Roe"];
    check(&extract("english.html", EN_URL, &rules), &expected);
}

#[test]
fn page_without_article_is_no_article_error() {
    let err = extract_page(
        &fixture("no-article.html"),
        "https://example.vn/",
        &ArticleRules::default(),
    )
    .expect_err("a section front has no article");
    assert!(matches!(err, ExtractError::NoArticle { .. }));
    assert_eq!(err.to_string(), "no article found at https://example.vn/");
}

fn paragraphs(n: usize) -> String {
    (0..n)
        .map(|i| format!("<p>Đoạn văn số {i}, một câu đủ dài để được tính là nội dung bài viết thật sự.</p>\n"))
        .collect()
}

/// The body is exactly the `n` paragraphs of [`paragraphs`], in order, none dropped.
fn assert_all_paragraphs(body_text: &str, n: usize) {
    assert!(body_text.starts_with("Đoạn văn số 0,"), "{body_text:?}");
    assert_eq!(body_text.matches("Đoạn văn số").count(), n, "{body_text:?}");
    assert!(
        body_text.contains(&format!("Đoạn văn số {},", n - 1)),
        "{body_text:?}"
    );
}

#[test]
fn twenty_megabyte_page_is_extracted() {
    let body = paragraphs(200_000);
    assert!(body.len() > 20_000_000);
    let html = format!(
        "<html><head><title>Bài rất dài</title></head><body><h1>Bài rất dài</h1><div class=\"content\">{body}</div></body></html>"
    );
    let a = extract_with(&html, &ArticleRules::default()).expect("long page has an article");
    assert!(a.body_text.starts_with("Đoạn văn số 0,"));
    assert!(a.body_text.contains("Đoạn văn số 199999,"));
}

#[test]
fn ten_thousand_deep_nesting_does_not_overflow() {
    let depth = 10_000;
    let html = format!(
        "<html><body><h1>Sâu</h1>{}{}{}</body></html>",
        "<div>".repeat(depth),
        paragraphs(5),
        "</div>".repeat(depth)
    );
    let result = extract_with(&html, &ArticleRules::default());
    match result {
        Ok(a) => assert!(a.body_text.contains("Đoạn văn số 4,")),
        Err(ExtractError::NoArticle { .. }) => {}
    }
}

/// `html` extracted as the page at https://example.vn/a with `rules`.
fn extract_with(html: &str, rules: &ArticleRules) -> Result<Article, ExtractError> {
    extract_page(html, "https://example.vn/a", rules)
}

fn extract_html(html: &str) -> Article {
    extract_with(html, &ArticleRules::default()).expect("page has an article")
}

#[test]
fn ad_slot_labelled_advertisement_does_not_make_the_text_a_related_box() {
    // Regression: the ad label was read as the heading of the whole text box.
    let html = format!(
        "<html><body><h1>T</h1><aside>{}</aside><div class=\"post-content\"><div class=\"ad-slot\"><span>Advertisement</span></div>{}</div></body></html>",
        "<a href=/x>Một liên kết khác ở cột bên</a> ".repeat(30),
        paragraphs(4)
    );
    let a = extract_html(&html);
    assert_all_paragraphs(&a.body_text, 4);
    assert!(!a.body_text.contains("Advertisement"));
}

#[test]
fn text_box_holding_a_link_list_keeps_its_paragraphs() {
    // Regression: a box mostly made of links was dropped with the paragraphs around the list.
    let links = "<li><a href=/r>Giống chó có tên khá dài số một</a></li>".repeat(60);
    let html = format!(
        "<html><body><h1>T</h1><div class=\"entry\">{}<div class=\"widget\"><ul>{links}</ul></div></div></body></html>",
        paragraphs(6)
    );
    let a = extract_html(&html);
    assert_all_paragraphs(&a.body_text, 6);
    assert!(!a.body_text.contains("Giống chó"));
}

#[test]
fn text_box_with_a_share_class_is_still_the_text() {
    // Regression: "share" among the classes of the text box made the whole text junk.
    let menu = "<li><a href=/m>Một mục trình đơn khá dài</a></li>".repeat(40);
    let html = format!(
        "<html><body><h1>T</h1><div class=\"post\"><div class=\"entry share\">{}</div></div><div class=\"col\"><ul>{menu}</ul></div></body></html>",
        paragraphs(10)
    );
    let a = extract_html(&html);
    assert_all_paragraphs(&a.body_text, 10);
    assert!(!a.body_text.contains("trình đơn"));
}

#[test]
fn invalid_utf8_and_control_characters_are_cleaned() {
    let mut bytes = b"<html><head><meta charset=utf-8><title>T</title></head><body><h1>Ti\x00tle</h1><div class=content>".to_vec();
    for _ in 0..4 {
        bytes.extend_from_slice(b"<p>Valid text then bad bytes \xff\xfe\xc3 and a NUL \x00 and bell \x07 in a long enough paragraph.</p>");
    }
    bytes.extend_from_slice(b"</div></body></html>");
    let (html, _) = decode_html(&bytes, None);
    let a = extract_html(&html);
    assert!(!a.body_text.chars().any(|c| c.is_control() && c != '\n'));
    assert!(!a.body_html.contains('\u{0}') && !a.body_html.contains('\u{7}'));
    assert!(!a.title.contains('\u{0}'));
    assert!(a.body_text.contains("Valid text then bad bytes"));
}

#[test]
fn scripts_handlers_and_javascript_urls_are_sanitized() {
    let html = format!(
        "<html><body><h1>X</h1><div class=content>{}<p>Text <img src=x onerror=alert(1)> <a href=\"javascript:alert(2)\">click</a> <script>alert(3)</script><iframe src=\"https://evil.example/\"></iframe><iframe src=\"https://www.youtube.com/embed/abc\"></iframe><span onclick=\"alert(4)\">tail</span></p></div></body></html>",
        paragraphs(4)
    );
    let a = extract_html(&html);
    for bad in [
        "onerror",
        "javascript:",
        "<script",
        "alert(3)",
        "evil.example",
        "onclick",
    ] {
        assert!(!a.body_html.contains(bad), "{bad} in {}", a.body_html);
    }
    assert!(
        a.body_html.contains("https://www.youtube.com/embed/abc"),
        "video iframe kept"
    );
}

#[test]
fn lead_selector_skips_an_empty_first_match_and_keeps_the_lead_out_of_the_body() {
    // Regression: the first (empty) match was taken out of the body, not the lead itself.
    let lead = "Lời dẫn của bài viết này đủ dài để được nhận ra là một đoạn mở đầu.";
    let html = format!(
        "<html><body><h1>T</h1><p class=mo-dau></p><div class=content>{}<p class=mo-dau>{lead}</p></div></body></html>",
        paragraphs(4)
    );
    let rules = ArticleRules {
        lead: css("p.mo-dau"),
        ..ArticleRules::default()
    };
    let a = extract_with(&html, &rules).expect("page has an article");
    assert_eq!(a.lead.as_deref(), Some(lead));
    assert_all_paragraphs(&a.body_text, 4);
    assert!(!a.body_text.contains("Lời dẫn"), "{}", a.body_text);
}

#[test]
fn image_and_canonical_are_web_addresses_only() {
    // Regression: a `javascript:` og:image or `data:` JSON-LD image became the feed's enclosure.
    let html = format!(
        r#"<html><head>
<meta property="og:image" content="javascript:alert(1)">
<link rel="canonical" href="javascript:alert(2)">
<meta property="og:url" content="https://example.vn/bai-viet">
<script type="application/ld+json">{{"@type":"NewsArticle","image":"data:image/png;base64,AAAA"}}</script>
</head><body><h1>T</h1><div class=content>{}</div></body></html>"#,
        paragraphs(4)
    );
    let a = extract_html(&html);
    assert_eq!(a.image, None);
    assert_eq!(
        a.canonical_url.map(String::from).as_deref(),
        Some("https://example.vn/bai-viet"),
        "a bad rel=canonical falls back to og:url"
    );
}

#[test]
fn preview_prints_one_json_line_per_file_with_exact_keys() {
    let out = Command::cargo_bin("bantin")
        .expect("binary builds")
        .args(["--config", "tests/fixtures/extract/missing.toml", "preview"])
        .args([
            "tests/fixtures/extract/english.html",
            "tests/fixtures/extract/nhandan.html",
        ])
        .args(["--url", EN_URL])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json line");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "authors",
            "body_html",
            "body_text",
            "canonical_url",
            "image",
            "language",
            "lead",
            "provenance",
            "published",
            "section",
            "tags",
            "title",
            "updated",
            "url"
        ]
    );
    assert_eq!(v["published"], "2023-09-14T15:30:00+07:00");
    assert_eq!(v["provenance"]["published"], "meta");
}

#[test]
fn preview_exits_1_when_an_input_fails_after_printing_the_others() {
    let out = Command::cargo_bin("bantin")
        .expect("binary builds")
        .args(["--config", "tests/fixtures/extract/missing.toml", "preview"])
        .args([
            "tests/fixtures/extract/no-such-file.html",
            "tests/fixtures/extract/english.html",
            "tests/fixtures/extract/no-article.html",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-file.html"), "{stderr}");
    assert!(stderr.contains("no article found at"), "{stderr}");
}

#[test]
fn preview_without_inputs_is_bad_usage() {
    Command::cargo_bin("bantin")
        .expect("binary builds")
        .arg("preview")
        .assert()
        .code(2);
}

#[test]
fn landing_page_split_into_modules_keeps_every_module() {
    // Regression: only the best-scoring module was kept, the other sections were lost.
    let module = |i: usize| {
        format!(
            "<div class=\"module\"><div class=\"container\"><div class=\"card\"><h2>Phần {i}</h2><div class=\"row\"><div class=\"col\"><div class=\"text\"><p>Đoạn văn số {i}, một câu đủ dài để được tính là nội dung bài viết thật sự.</p><p>Một câu nữa của phần {i}, cũng đủ dài để được tính là một đoạn văn.</p></div></div></div></div></div></div>"
        )
    };
    let html = format!(
        "<html><body><h1>T</h1><div class=\"page\">{}</div></body></html>",
        (0..5).map(module).collect::<String>()
    );
    let a = extract_html(&html);
    for i in 0..5 {
        assert!(
            a.body_text.contains(&format!("Đoạn văn số {i},")),
            "{:?}",
            a.body_text
        );
    }
}

#[test]
fn heading_of_a_dropped_link_list_is_left_out() {
    // Regression: "More from this column:" stayed at the end of the body after its links went.
    let links = "<p><a href=/r>Một bài viết khác của chuyên mục này</a></p>".repeat(4);
    let html = format!(
        "<html><body><h1>T</h1><div class=\"entry\">{}<h2>Bài khác trong chuyên mục:</h2>{links}</div></body></html>",
        paragraphs(6)
    );
    let a = extract_html(&html);
    assert_all_paragraphs(&a.body_text, 6);
    assert!(!a.body_text.contains("chuyên mục"), "{:?}", a.body_text);
    assert!(!a.body_html.contains("<h2>"), "{}", a.body_html);
}

#[test]
fn module_with_a_little_over_half_of_the_text_is_not_the_whole_text() {
    // Regression: a section with 55% of the page's prose was taken for the whole text.
    let module = |from: usize, to: usize| {
        format!(
            "<div class=\"module-{from}\"><div class=\"container\"><div class=\"card\"><div class=\"row\"><div class=\"col\"><div class=\"text\">{}</div></div></div></div></div></div>",
            (from..to)
                .map(|i| format!("<p>Đoạn văn số {i}, một câu đủ dài để được tính là nội dung bài viết thật sự.</p>"))
                .collect::<String>()
        )
    };
    let html = format!(
        "<html><body><h1>T</h1><div class=\"page\">{}{}</div></body></html>",
        module(0, 11),
        module(11, 20)
    );
    let a = extract_html(&html);
    assert_all_paragraphs(&a.body_text, 20);
}

const SHARED_IMAGE_URL: &str = "https://cand.com.vn/Xay-dung-Dang/hoi-nghi-chuyen-de-i700002/";

/// The extraction rules of the shipped cand.com.vn config.
fn shipped_cand_rules() -> ArticleRules {
    let config = bantin::config::Config::load(Path::new("config/bantin.toml"))
        .expect("the shipped config is valid");
    let source = config
        .source("cand-xay-dung-dang")
        .expect("the shipped config has the cand sources");
    source.extract.clone()
}

#[test]
fn shipped_cand_config_takes_the_picture_the_site_shares_over_the_lead_image() {
    let rules = shipped_cand_rules();
    let a = extract("cand-shared-image.html", SHARED_IMAGE_URL, &rules);
    assert_eq!(
        a.image.as_ref().map(Url::as_str),
        Some(
            "https://img.cand.com.vn/resize/800x800/NewFiles/Images/2024/05/12/hoi-nghi-toan-canh.jpg"
        )
    );
    assert_eq!(a.provenance[&Field::Image], Origin::Selector);

    let without_og = fixture("cand-shared-image.html").replace("og:image", "og:unused");
    let a = extract_page(&without_og, SHARED_IMAGE_URL, &rules).expect("an article");
    assert_eq!(
        a.image.as_ref().map(Url::as_str),
        Some(
            "https://img.cand.com.vn/resize/300x200/NewFiles/Images/2024/05/12/dai-bieu-phat-bieu.jpg"
        ),
        "without og:image, the lead image"
    );
}

#[test]
fn shipped_cand_config_takes_the_deepest_breadcrumb_as_section() {
    let a = extract(
        "cand-shared-image.html",
        SHARED_IMAGE_URL,
        &shipped_cand_rules(),
    );
    assert_eq!(a.section.as_deref(), Some("Xây dựng Đảng"));
    assert_eq!(a.provenance[&Field::Section], Origin::Selector);
}

#[test]
fn exact_article_tags_are_preferred_over_a_joined_keywords_string() {
    let a = extract(
        "cand-shared-image.html",
        SHARED_IMAGE_URL,
        &ArticleRules::default(),
    );
    assert_eq!(a.tags, ["xây dựng, chỉnh đốn Đảng", "hội nghị chuyên đề"]);
    assert_eq!(a.provenance[&Field::Tags], Origin::Meta);

    let without_metas = fixture("cand-shared-image.html").replace("article:tag", "article:unused");
    let a = extract_page(&without_metas, SHARED_IMAGE_URL, &ArticleRules::default())
        .expect("an article");
    assert_eq!(
        a.tags,
        ["xây dựng", "chỉnh đốn Đảng", "hội nghị chuyên đề"],
        "without metas, the joined string is all there is"
    );
    assert_eq!(a.provenance[&Field::Tags], Origin::JsonLd);
}
