//! Tool classification: override, then annotations, then heuristics, then write.

use serde_json::json;

use crate::{Class, ClassSource, classify};

#[test]
fn classification_table() {
    use Class::{Destructive, Read, Write};
    use ClassSource::{Annotations, Default, Heuristic, Override};
    let table = [
        // An override beats annotations that claim otherwise.
        (
            json!({ "name": "get_issue", "annotations": { "readOnlyHint": true } }),
            Some(Destructive),
            (Destructive, Override),
        ),
        (
            json!({ "name": "delete_all", "annotations": { "readOnlyHint": true } }),
            Some(Read),
            (Read, Override),
        ),
        // Annotations, with the spec's defaults for what is left out.
        (
            json!({ "name": "delete_all", "annotations": { "readOnlyHint": true } }),
            None,
            (Read, Annotations),
        ),
        (
            json!({ "name": "x", "annotations": { "readOnlyHint": true, "destructiveHint": true } }),
            None,
            (Destructive, Annotations),
        ),
        (
            json!({ "name": "x", "annotations": { "destructiveHint": true } }),
            None,
            (Destructive, Annotations),
        ),
        (
            json!({ "name": "x", "annotations": { "readOnlyHint": false } }),
            None,
            (Destructive, Annotations),
        ),
        (
            json!({ "name": "x", "annotations": { "readOnlyHint": false, "destructiveHint": false } }),
            None,
            (Write, Annotations),
        ),
        (
            json!({ "name": "get_x", "annotations": { "destructiveHint": false } }),
            None,
            (Write, Annotations),
        ),
        // Hints that are not booleans are ignored.
        (
            json!({ "name": "get_x", "annotations": { "readOnlyHint": "true" } }),
            None,
            (Read, Heuristic),
        ),
        (
            json!({ "name": "x", "annotations": { "title": "X" } }),
            None,
            (Write, Default),
        ),
        // Name heuristics: the most dangerous verb wins.
        (json!({ "name": "get_issue" }), None, (Read, Heuristic)),
        (json!({ "name": "listIssues" }), None, (Read, Heuristic)),
        (json!({ "name": "search-code" }), None, (Read, Heuristic)),
        (
            json!({ "name": "sentry.describe_project" }),
            None,
            (Read, Heuristic),
        ),
        (json!({ "name": "create_issue" }), None, (Write, Heuristic)),
        (json!({ "name": "postMessage" }), None, (Write, Heuristic)),
        (
            json!({ "name": "get_or_create_user" }),
            None,
            (Write, Heuristic),
        ),
        (json!({ "name": "run_query" }), None, (Write, Heuristic)),
        (
            json!({ "name": "delete_issue" }),
            None,
            (Destructive, Heuristic),
        ),
        (
            json!({ "name": "DROP_TABLE" }),
            None,
            (Destructive, Heuristic),
        ),
        (
            json!({ "name": "revokeToken" }),
            None,
            (Destructive, Heuristic),
        ),
        (
            json!({ "name": "list_and_purge" }),
            None,
            (Destructive, Heuristic),
        ),
        (
            json!({ "name": "removeHTTPHeader" }),
            None,
            (Destructive, Heuristic),
        ),
        // Words that only contain a verb do not count.
        (json!({ "name": "address_book" }), None, (Write, Default)),
        (
            json!({ "name": "dropdown_options" }),
            None,
            (Write, Default),
        ),
        // The description's first sentence, only when the name says nothing.
        (
            json!({ "name": "issues", "description": "Lists open issues. Use delete_issue to remove one." }),
            None,
            (Read, Heuristic),
        ),
        (
            json!({ "name": "issues", "description": "Deletes an issue for good." }),
            None,
            (Destructive, Heuristic),
        ),
        (
            json!({ "name": "get_page", "description": "Deletes nothing." }),
            None,
            (Read, Heuristic),
        ),
        (
            json!({ "name": "frobnicate", "description": "Does the thing." }),
            None,
            (Write, Default),
        ),
        (json!({}), None, (Write, Default)),
    ];
    for (tool, operator_override, expected) in table {
        assert_eq!(classify(&tool, operator_override), expected, "{tool}");
    }
}
