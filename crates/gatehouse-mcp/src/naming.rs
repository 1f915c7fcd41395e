//! Stable, collision-free names. Each upstream's tools and prompts are exposed as
//! `PREFIX__name` (the prefix defaults to the server name and never contains `__`), resource URIs
//! of prefixed servers as `gatehouse://PREFIX/ORIGINAL`, and task ids as `SERVER/ORIGINAL`. A
//! name's mapping depends only on its own server's configuration, so adding another server never
//! renames anything.

use gatehouse_config::NAME_SEPARATOR;

/// Scheme and authority form of a mapped resource URI.
pub const URI_SCHEME: &str = "gatehouse://";

/// How one upstream's names appear to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    prefix: Option<String>,
}

impl Namespace {
    /// A namespace with `prefix`, or the identity mapping for `None`.
    pub fn new(prefix: Option<String>) -> Self {
        Self { prefix }
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The client-facing name of an upstream tool or prompt.
    pub fn expose_name(&self, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}{NAME_SEPARATOR}{name}"),
            None => name.to_owned(),
        }
    }

    /// The client-facing form of an upstream resource URI (or URI template).
    pub fn expose_uri(&self, uri: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{URI_SCHEME}{prefix}/{uri}"),
            None => uri.to_owned(),
        }
    }
}

/// Splits a client-facing name into `(prefix, upstream name)`, if it has a prefix.
pub fn split_name(exposed: &str) -> Option<(&str, &str)> {
    exposed
        .split_once(NAME_SEPARATOR)
        .filter(|(prefix, rest)| !prefix.is_empty() && !rest.is_empty())
}

/// Splits a client-facing URI into `(prefix, upstream URI)`, if it is a mapped URI.
pub fn split_uri(exposed: &str) -> Option<(&str, &str)> {
    exposed
        .strip_prefix(URI_SCHEME)?
        .split_once('/')
        .filter(|(prefix, rest)| !prefix.is_empty() && !rest.is_empty())
}

/// The client-facing id of an upstream task.
pub fn expose_task_id(server: &str, task_id: &str) -> String {
    format!("{server}/{task_id}")
}

/// Splits a client-facing task id into `(server, upstream task id)`.
pub fn split_task_id(exposed: &str) -> Option<(&str, &str)> {
    exposed
        .split_once('/')
        .filter(|(server, rest)| !server.is_empty() && !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_never_collide_across_separator() {
        let a = Namespace::new(Some("a".into()));
        let a_b = Namespace::new(Some("a_b".into()));
        assert_eq!(a.expose_name("b__c"), "a__b__c");
        assert_eq!(split_name("a__b__c"), Some(("a", "b__c")));
        assert_eq!(a_b.expose_name("c"), "a_b__c");
        assert_eq!(split_name("a_b__c"), Some(("a_b", "c")));
        assert_eq!(split_name("plain"), None);
        assert_eq!(split_name("__x"), None);
        let none = Namespace::new(None);
        assert_eq!(none.expose_name("search"), "search");
    }

    #[test]
    fn uris_and_task_ids_round_trip() {
        let demo = Namespace::new(Some("demo".into()));
        let exposed = demo.expose_uri("demo://notes/{title}");
        assert_eq!(exposed, "gatehouse://demo/demo://notes/{title}");
        assert_eq!(split_uri(&exposed), Some(("demo", "demo://notes/{title}")));
        assert_eq!(split_uri("file:///x"), None);
        assert_eq!(
            split_task_id(&expose_task_id("srv", "t/1")),
            Some(("srv", "t/1"))
        );
    }
}
