//! Values that refer to stored secrets by name: a stdio server's environment and arguments, an
//! HTTP server's headers. `{secret:NAME}` is the service credential `NAME`, one for everyone;
//! `{user_secret:NAME}` is the calling person's own credential `NAME`. Everything else is taken
//! literally. A template is parsed once at load; the values are filled in by the gateway when a
//! process starts or a request is sent, and are never written back into the configuration.

use std::fmt;

const SERVICE_OPENING: &str = "{secret:";
const USER_OPENING: &str = "{user_secret:";

/// Whose credential a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretScope {
    /// One credential for everyone who uses the server.
    Service,
    /// The calling person's own credential.
    User,
}

/// A reference to a stored secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretUse {
    /// The secret's name.
    pub name: String,
    /// Whose secret.
    pub scope: SecretScope,
}

impl fmt::Display for SecretUse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            SecretScope::Service => write!(formatter, "{SERVICE_OPENING}{}}}", self.name),
            SecretScope::User => write!(formatter, "{USER_OPENING}{}}}", self.name),
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text used as written.
    Text(String),
    /// A secret's value, filled in when used.
    Secret(SecretUse),
}

/// A configured value that may refer to secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    written: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `written`; the error says which reference is malformed and how to write it.
    pub fn parse(written: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = written;
        while let Some((start, opening, scope)) = next_reference(rest) {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + opening.len()..];
            let Some(end) = after.find('}') else {
                return Err(format!(
                    "`{opening}` is not closed; write `{opening}NAME}}`"
                ));
            };
            let name = &after[..end];
            check_secret_name(name)?;
            parts.push(Part::Secret(SecretUse {
                name: name.to_owned(),
                scope,
            }));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self {
            written: written.to_owned(),
            parts,
        })
    }

    /// A template without references.
    pub fn literal(text: &str) -> Self {
        Self {
            written: text.to_owned(),
            parts: vec![Part::Text(text.to_owned())],
        }
    }

    /// The value as written in the configuration, references unresolved; safe to show.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    /// Its pieces in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The secrets it refers to.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretUse> {
        self.parts.iter().filter_map(|part| match part {
            Part::Secret(secret) => Some(secret),
            Part::Text(_) => None,
        })
    }

    /// Whether it refers to any secret.
    pub fn has_secrets(&self) -> bool {
        self.secrets().next().is_some()
    }
}

fn next_reference(text: &str) -> Option<(usize, &'static str, SecretScope)> {
    let service = text
        .find(SERVICE_OPENING)
        .map(|at| (at, SERVICE_OPENING, SecretScope::Service));
    let user = text
        .find(USER_OPENING)
        .map(|at| (at, USER_OPENING, SecretScope::User));
    match (service, user) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (found, None) | (None, found) => found,
    }
}

/// Checks a secret name: ASCII letters, digits, `-`, `_` and `.`, 1 to 64 characters, starting
/// with a letter or digit.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() {
        Err("a secret name must not be empty".to_owned())
    } else if !starts_well || !allowed || name.len() > 64 {
        Err(format!(
            "`{name}` is not a secret name: use up to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, scope: SecretScope) -> Part {
        Part::Secret(SecretUse {
            name: name.to_owned(),
            scope,
        })
    }

    #[test]
    fn references_are_found_among_text() {
        let template = Template::parse("Bearer {secret:github} for {user_secret:jira.token}!")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            template.parts(),
            &[
                Part::Text("Bearer ".to_owned()),
                secret("github", SecretScope::Service),
                Part::Text(" for ".to_owned()),
                secret("jira.token", SecretScope::User),
                Part::Text("!".to_owned()),
            ]
        );
        assert_eq!(
            template.as_written(),
            "Bearer {secret:github} for {user_secret:jira.token}!"
        );
        assert!(template.has_secrets());
    }

    #[test]
    fn plain_text_and_other_braces_are_literal() {
        let template =
            Template::parse("{\"a\": {b}} {secret}").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            template.parts(),
            &[Part::Text("{\"a\": {b}} {secret}".to_owned())]
        );
        assert!(!template.has_secrets());
        assert!(Template::parse("").is_ok_and(|template| template.parts().is_empty()));
    }

    #[test]
    fn malformed_references_are_explained() {
        assert_eq!(
            Template::parse("Bearer {secret:github").err().as_deref(),
            Some("`{secret:` is not closed; write `{secret:NAME}`")
        );
        assert!(
            Template::parse("{user_secret:}")
                .err()
                .is_some_and(|error| error.contains("must not be empty"))
        );
        assert!(
            Template::parse("{secret:a b}")
                .err()
                .is_some_and(|error| error.contains("`a b` is not a secret name"))
        );
    }
}
