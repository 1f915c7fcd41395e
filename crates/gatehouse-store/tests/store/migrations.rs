//! The two migration folders must describe the same schema: they may differ only in the
//! dialect words listed here.

#[test]
fn schemas_differ_only_in_dialect() {
    let sqlite = include_str!("../../migrations/sqlite/0001_initial.sql");
    let postgres = include_str!("../../migrations/postgres/0001_initial.sql");
    let body = |text: &'static str| text.lines().skip(2).collect::<Vec<_>>();
    let translated: Vec<String> = body(sqlite)
        .iter()
        .map(|line| {
            line.replace("BLOB", "BYTEA")
                .replace("INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY")
        })
        .collect();
    assert_eq!(translated, body(postgres));
}
