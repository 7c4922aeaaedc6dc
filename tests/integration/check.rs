//! `bantin check`: the shipped config passes; every broken config fails with exit 2 and
//! a message naming file, line, column, the problem and a fix.

use assert_cmd::Command;

fn check(case: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("bantin")
        .expect("the bantin binary is built for integration tests")
        .args([
            "--config",
            &format!("tests/fixtures/config/{case}/bantin.toml"),
            "check",
        ])
        .assert()
}

fn stderr_of(case: &str) -> String {
    let out = check(case).code(2).get_output().clone();
    String::from_utf8(out.stderr).expect("diagnostics are UTF-8")
}

#[test]
fn shipped_config_is_valid() {
    Command::cargo_bin("bantin")
        .unwrap()
        .args(["--config", "config/bantin.toml", "check"])
        .assert()
        .success()
        .stdout(predicates::str::contains("ok (4 sources, 2 categories)"));
}

#[test]
fn valid_fixture_config_passes() {
    check("valid").success();
}

#[test]
fn missing_config_is_bad_usage_naming_both_ways_to_give_it() {
    let out = check("does-not-exist").code(2).get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("does-not-exist/bantin.toml"), "{stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
    assert!(stderr.contains("BANTIN_CONFIG"), "{stderr}");
}

#[test]
fn a_syntax_error_hides_neither_the_files_other_errors_nor_adds_false_ones() {
    let stderr = stderr_of("syntax-error-among-other-errors");
    assert!(
        stderr.contains("categories.toml:7:19: string values must be quoted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("categories.toml:15:10: unknown rule field \"boby\""),
        "{stderr}"
    );
    // The category with the syntax error is not also reported as undefined.
    assert!(!stderr.contains("is not defined"), "{stderr}");
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
}

#[test]
fn invalid_link_rules_are_not_also_reported_missing() {
    let stderr = stderr_of("invalid-selector-and-pattern");
    assert!(stderr.contains("is not valid CSS"), "{stderr}");
    assert!(
        stderr.contains("is not a valid regular expression"),
        "{stderr}"
    );
    assert!(!stderr.contains("no way to find article links"), "{stderr}");
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
}

#[test]
fn every_error_of_every_broken_fixture_has_a_help_line() {
    let dirs = std::fs::read_dir("tests/fixtures/config").unwrap();
    let mut errors = 0;
    for case in dirs.map(|d| d.unwrap().file_name().into_string().unwrap()) {
        if case == "valid" {
            continue;
        }
        let stderr = stderr_of(&case);
        let lines: Vec<&str> = stderr.lines().collect();
        for (i, line) in lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("error:"))
        {
            errors += 1;
            let next = lines.get(i + 1).copied().unwrap_or_default();
            assert!(next.starts_with("  help: "), "{case}: no help for {line}");
        }
    }
    assert!(errors >= 40, "{errors} errors seen");
}

/// One row per broken config: the file and line the error must point at, and words the
/// message and its help must contain.
const BROKEN: &[(&str, &str, &str, &[&str])] = &[
    (
        "unknown-key",
        "sources/cand.toml",
        ":4:1:",
        &["unknown key `titel`", "did you mean `title`?"],
    ),
    (
        "unknown-top-level-key",
        "bantin.toml",
        ":4:1:",
        &[
            "unknown key `item_per_feed`",
            "did you mean `items_per_feed`?",
        ],
    ),
    (
        "bad-cron",
        "sources/cand.toml",
        ":11:12:",
        &["schedule \"*/20 * * *\" has 4 field(s)", "\"*/15 * * * *\""],
    ),
    (
        "bad-selector",
        "sources/cand.toml",
        ":4:9:",
        &["selector \"h1..title\" is not valid CSS", "\"h1.title\""],
    ),
    (
        "bad-regex",
        "sources/cand.toml",
        ":16:11:",
        &["is not a valid regular expression", "unclosed group"],
    ),
    (
        "relative-url",
        "sources/cand.toml",
        ":10:9:",
        &["\"/Xay-dung-Dang/\" is a relative URL", "absolute address"],
    ),
    (
        "unknown-database-url",
        "bantin.toml",
        ":1:16:",
        &[
            "names neither SQLite nor PostgreSQL",
            "\"postgres://user:password@host/db\"",
        ],
    ),
    (
        "bad-postgres-url",
        "bantin.toml",
        ":1:16:",
        &[
            "is not a PostgreSQL connection URL: invalid port number",
            "\"postgres://bantin:PASSWORD@db.example.org:5432/bantin\"",
        ],
    ),
    (
        "ftp-url",
        "sources/cand.toml",
        ":10:9:",
        &["uses the scheme `ftp`", "http:// and https://"],
    ),
    (
        "duplicate-source-id",
        "sources/cand.toml",
        ":18:6:",
        &[
            "source id `cand-xay-dung-dang` is used twice",
            "first used at",
        ],
    ),
    (
        "duplicate-category-id",
        "categories.toml",
        ":15:6:",
        &["category id `party-work` is defined twice", "line 2"],
    ),
    (
        "unknown-category",
        "sources/cand.toml",
        ":12:15:",
        &[
            "category `party-wrok` is not defined",
            "did you mean \"party-work\"?",
        ],
    ),
    (
        "reserved-category-all",
        "categories.toml",
        ":9:6:",
        &["`all` is reserved"],
    ),
    (
        "bad-toml-syntax",
        "sources/cand.toml",
        ":9:",
        &["invalid basic string"],
    ),
    (
        "bad-timezone",
        "bantin.toml",
        ":3:12:",
        &[
            "unknown time zone \"Asia/Ho_Chi_Min\"",
            "did you mean \"Asia/Ho_Chi_Minh\"?",
        ],
    ),
    (
        "bad-duration",
        "bantin.toml",
        ":7:11:",
        &["`timeout` = \"10 parsecs\" is not a duration", "\"30s\""],
    ),
    (
        "bad-shutdown-timeout",
        "bantin.toml",
        ":4:20:",
        &[
            "`shutdown_timeout` = \"ten seconds\" is not a duration",
            "\"30s\"",
        ],
    ),
    (
        "bad-server-setting",
        "bantin.toml",
        ":8:19:",
        &["`max_connections` = 0 is out of range", "from 1 to"],
    ),
    (
        "bad-size",
        "bantin.toml",
        ":8:18:",
        &["`max_body_bytes` = \"lots\" is not a size", "\"10 MiB\""],
    ),
    (
        "zero-items-per-feed",
        "bantin.toml",
        ":4:18:",
        &["`items_per_feed` = 0 is out of range", "from 1 to 10000"],
    ),
    (
        "not-a-slug",
        "sources/cand.toml",
        ":8:6:",
        &[
            "source id \"Cand Xây dựng\" is not a slug",
            "\"cand-xay-dung\"",
        ],
    ),
    (
        "listing-without-links",
        "sources/cand.toml",
        ":9:8:",
        &["has no way to find article links", "[source.links]"],
    ),
    (
        "unknown-source-kind",
        "sources/cand.toml",
        ":9:8:",
        &[
            "unknown source kind \"listings\"",
            "did you mean \"listing\"?",
        ],
    ),
    (
        "bad-rule-field",
        "categories.toml",
        ":14:10:",
        &["unknown rule field \"boby\"", "did you mean \"body\"?"],
    ),
];

#[test]
fn each_broken_config_names_file_line_and_fix() {
    for (case, file, place, needles) in BROKEN {
        let stderr = stderr_of(case);
        let location = format!("tests/fixtures/config/{case}/{file}{place}");
        assert!(
            stderr.contains(&location),
            "{case}: expected {location} in\n{stderr}"
        );
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{case}: expected {needle:?} in\n{stderr}"
            );
        }
        assert!(
            stderr.contains("1 problem(s) found"),
            "{case}: exactly one problem\n{stderr}"
        );
    }
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let stderr = stderr_of("many-errors");
    for needle in [
        "many-errors/bantin.toml:3:12: unknown time zone \"Mars/Olympus\"",
        "many-errors/categories.toml:9:6: category id \"Police Activities\" is not a slug",
        "many-errors/sources/cand.toml:4:9: selector \"h1..title\" is not valid CSS",
        "many-errors/sources/cand.toml:11:12: schedule \"every hour\" has 2 field(s)",
    ] {
        assert!(stderr.contains(needle), "expected {needle:?} in\n{stderr}");
    }
    assert!(stderr.contains("4 problem(s) found"), "{stderr}");
}

#[test]
fn a_shape_error_in_one_table_does_not_hide_the_next() {
    let stderr = stderr_of("shape-errors-in-several-tables");
    for needle in [
        "categories.toml:7:1: unknown key `feilds`",
        "sources/cand.toml:9:1: unknown key `categorys`",
        "sources/cand.toml:19:16: `max_articles` must be a whole number, not the string \"many\"",
        "sources/cand.toml:31:1: unknown key `patern`",
        "help: did you mean `pattern`?",
    ] {
        assert!(stderr.contains(needle), "expected {needle:?} in\n{stderr}");
    }
    assert!(stderr.contains("4 problem(s) found"), "{stderr}");
}

#[test]
fn every_shape_error_in_one_table_is_reported_in_file_order() {
    let stderr = stderr_of("shape-errors-in-one-table");
    let needles = [
        "bantin.toml:5:18: `items_per_feed` must be a whole number, not the string \"twenty\"",
        "bantin.toml:6:1: unknown key `colour`",
        "bantin.toml:9:11: `timeout` must be a string in quotes, not the number 10",
        "bantin.toml:10:1: unknown key `max_body_bytse`",
        "bantin.toml:11:1: unknown key `user_agent`",
        "sources/cand.toml:5:6: `id` must be a string in quotes, not the number 5",
        "sources/cand.toml:7:47: each entry of `urls` must be a string in quotes, not the number 7",
        "sources/cand.toml:9:16: `max_articles` must be a whole number, not the string \"x\"",
        "sources/cand.toml:14:1: missing required key `id`",
    ];
    let mut last = 0;
    for needle in needles {
        let at = stderr
            .find(needle)
            .unwrap_or_else(|| panic!("expected {needle:?} in\n{stderr}"));
        assert!(at > last, "{needle:?} out of order in\n{stderr}");
        last = at;
    }
    // The `id` of the wrong type is one mistake, not also a missing key.
    assert_eq!(
        stderr.matches("missing required key").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("9 problem(s) found"), "{stderr}");
}

#[test]
fn a_key_in_the_wrong_table_is_told_where_it_belongs() {
    let stderr = stderr_of("keys-in-the-wrong-table");
    for needle in [
        "bantin.toml:5:1: unknown key `max_retries`\n  help: `max_retries` belongs in [fetch]",
        "bantin.toml:9:1: unknown key `user_agent`\n  help: `user_agent` belongs at the top of the file",
        "categories.toml:4:1: unknown key `fields`\n  help: `fields` belongs in [category.rule]",
        "sources/cand.toml:8:1: unknown key `pattern`\n  help: `pattern` belongs in [source.links]",
        "sources/cand.toml:12:1: unknown key `categories`\n  help: `categories` belongs in [source]",
    ] {
        assert!(stderr.contains(needle), "expected {needle:?} in\n{stderr}");
    }
    assert!(stderr.contains("5 problem(s) found"), "{stderr}");
}
