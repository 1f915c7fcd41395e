//! Canonical names and path normalization.

use crate::{is_canonical_name, normalize_path};

#[test]
fn canonical_names() {
    for good in [
        "sentry__resolve_issue",
        "a",
        "file:///workspace/a.md",
        "Code Review",
        "a.b-c/d",
    ] {
        assert!(is_canonical_name(good), "{good:?} should be canonical");
    }
    for bad in [
        "",
        " leading",
        "trailing ",
        "tab\there",
        "new\nline",
        "nul\0",
        "del\u{7f}",
        "zero\u{200B}width",
        "bom\u{FEFF}",
        "joiner\u{200D}",
        "bidi\u{202E}override",
        "isolate\u{2066}",
        "\u{0455}lack__post", // Cyrillic dze
        "sl\u{0430}ck__post", // Cyrillic a
        "fullwidth\u{FF3F}",
        "caf\u{E9}",
        "soft\u{AD}hyphen",
    ] {
        assert!(!is_canonical_name(bad), "{bad:?} should be refused");
    }
}

#[test]
fn path_normalization() {
    let table: &[(&str, Option<&str>)] = &[
        ("/workspace/a", Some("/workspace/a")),
        ("/workspace//a///b/", Some("/workspace/a/b")),
        ("/workspace/./a/.", Some("/workspace/a")),
        ("/", Some("/")),
        ("//", None),
        ("a/b", Some("a/b")),
        ("./a", Some("a")),
        (".", None),
        ("", None),
        ("/a/../b", None),
        ("..", None),
        ("/a/%2e%2e/b", None),
        ("/a/%2E%2e/b", None),
        ("/a/%252e/b", None),
        ("/a/100%", Some("/a/100%")),
        ("/a/%zz", Some("/a/%zz")),
        ("/a\\b", None),
        ("C:\\Workspace\\A.txt", Some("c:/workspace/a.txt")),
        ("c:/workspace//a", Some("c:/workspace/a")),
        ("C:\\", Some("c:/")),
        ("C:", None),
        ("C:x", None),
        ("C:\\a\\..\\b", None),
        ("C:\\a\\file.txt:stream", None),
        ("C:\\a\\evil.", None),
        ("C:\\a\\evil ", None),
        ("\\\\server\\share", None),
        ("/a/\u{FF0E}\u{FF0E}/b", None),
        ("/a/\u{2215}b", None),
        ("/a/\u{200B}b", None),
        ("/a/r\u{E9}sum\u{E9}", Some("/a/r\u{E9}sum\u{E9}")),
        ("/a/\u{0}", None),
    ];
    for (raw, expected) in table {
        assert_eq!(normalize_path(raw).as_deref(), *expected, "{raw:?}");
    }
}
