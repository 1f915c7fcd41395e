//! Checks a [`RawGrant`] and turns it into a [`Grant`], the validated form that both the
//! Cedar text and the pre-filter index are written from.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

use crate::Class;
use crate::args::normalize_path;
use crate::error::{Location, Problem};
use crate::glob::Glob;
use crate::raw::{RawArgumentCondition, RawEffect, RawGrant};

/// A checked grant.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The rule id: the user's `id` or `grant-N`.
    pub(crate) id: String,
    /// Where it was written, for error messages.
    pub(crate) location: Location,
    /// Permit or forbid.
    pub(crate) effect: RawEffect,
    /// Who it applies to.
    pub(crate) audience: Audience,
    /// Which items, by kind and name.
    pub(crate) items: ItemScope,
    /// Server name patterns; `None` is every server.
    pub(crate) servers: Option<Vec<Glob>>,
    /// Highest class allowed (permit) or lowest class denied (forbid).
    pub(crate) access: Class,
    /// Required server environment tag.
    pub(crate) environment: Option<String>,
    /// Argument conditions, all of which must hold.
    pub(crate) arguments: Vec<ArgumentCondition>,
    /// When the grant lapses.
    pub(crate) expires: Option<Expiry>,
    /// Why the grant exists.
    pub(crate) reason: Option<String>,
}

/// Who a grant applies to.
#[derive(Debug, Clone)]
pub(crate) enum Audience {
    /// Every caller (`to = ["*"]`).
    Everyone,
    /// These principals (never empty).
    Only(Vec<PrincipalRef>),
}

/// A user, group or team named in a grant's `to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PrincipalRef {
    /// `user:ID`.
    User(String),
    /// `group:NAME`.
    Group(String),
    /// `team:NAME`.
    Team(String),
}

/// Which items a grant covers; all three `None` means every item of every kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemScope {
    /// Tool name patterns.
    pub(crate) tools: Option<Vec<Glob>>,
    /// Prompt name patterns.
    pub(crate) prompts: Option<Vec<Glob>>,
    /// Resource and resource template patterns.
    pub(crate) resources: Option<Vec<Glob>>,
}

impl ItemScope {
    /// True when no kind is named, so every kind is covered.
    pub(crate) fn is_everything(&self) -> bool {
        self.tools.is_none() && self.prompts.is_none() && self.resources.is_none()
    }
}

/// One checked argument condition.
#[derive(Debug, Clone)]
pub(crate) struct ArgumentCondition {
    /// Top-level argument name.
    pub(crate) arg: String,
    /// The test.
    pub(crate) test: ArgumentTest,
}

/// What an argument is tested for.
#[derive(Debug, Clone)]
pub(crate) enum ArgumentTest {
    /// Normalized path is this absolute, normalized directory or inside it.
    Under(String),
    /// Exact string is one of these.
    OneOf(Vec<String>),
    /// Exact string matches the pattern.
    Matches(Glob),
    /// Integer within the bounds (inclusive).
    Range {
        /// Lower bound.
        min: Option<i64>,
        /// Upper bound.
        max: Option<i64>,
    },
}

/// When a grant lapses.
#[derive(Debug, Clone)]
pub(crate) struct Expiry {
    /// Milliseconds since the Unix epoch.
    pub(crate) unix_millis: i64,
    /// The instant in Cedar's `datetime` syntax (UTC, milliseconds).
    pub(crate) cedar: String,
}

/// Checks the `number`-th grant (1-based), collecting every problem in it.
pub(crate) fn check_grant(number: usize, raw: &RawGrant) -> Result<Grant, Vec<Problem>> {
    let location = Location::Grant {
        number,
        id: raw.id.clone(),
    };
    let mut problems = Vec::new();
    let mut problem = |message: String| {
        problems.push(Problem {
            location: location.clone(),
            message,
        })
    };

    let id = match &raw.id {
        Some(id) => {
            if let Err(message) = check_rule_id(id) {
                problem(message);
            }
            id.clone()
        }
        None => format!("grant-{number}"),
    };
    let audience = check_audience(&raw.to).unwrap_or_else(|message| {
        problem(message);
        Audience::Everyone
    });
    if raw.servers.is_none()
        && raw.tools.is_none()
        && raw.prompts.is_none()
        && raw.resources.is_none()
    {
        problem(
            "a grant must name `servers`, `tools`, `prompts` or `resources`; use `servers = [\"*\"]` for everything".to_owned(),
        );
    }
    let mut patterns = |key: &str, list: &Option<Vec<String>>| -> Option<Vec<Glob>> {
        let list = list.as_ref()?;
        if list.is_empty() {
            problem(format!(
                "`{key}` is empty and would match nothing; remove it or add a pattern"
            ));
        }
        let mut globs = Vec::new();
        for pattern in list {
            match Glob::new(pattern) {
                Ok(glob) => globs.push(glob),
                Err(message) => problem(format!("`{key}`: {message}")),
            }
        }
        Some(globs)
    };
    let servers = patterns("servers", &raw.servers);
    let items = ItemScope {
        tools: patterns("tools", &raw.tools),
        prompts: patterns("prompts", &raw.prompts),
        resources: patterns("resources", &raw.resources),
    };
    if let Some(environment) = &raw.environment
        && (environment.is_empty() || environment.chars().any(char::is_control))
    {
        problem("`environment` must be a non-empty name such as `production`".to_owned());
    }
    let mut arguments = Vec::new();
    for (position, condition) in raw.arguments.iter().enumerate() {
        match check_argument(condition) {
            Ok(checked) => arguments.push(checked),
            Err(message) => problem(format!("`arguments` entry {}: {message}", position + 1)),
        }
    }
    let expires = match (&raw.expires, &raw.reason) {
        (Some(_), None) => {
            problem("`expires` needs a `reason` (such as a ticket reference)".to_owned());
            None
        }
        (Some(text), Some(_)) => check_expiry(text).map_or_else(
            |message| {
                problem(message);
                None
            },
            Some,
        ),
        (None, _) => None,
    };
    if raw
        .reason
        .as_deref()
        .is_some_and(|reason| reason.trim().is_empty())
    {
        problem("`reason` is empty".to_owned());
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Grant {
        id,
        location,
        effect: raw.effect.unwrap_or(RawEffect::Allow),
        audience,
        items,
        servers,
        access: raw.access.unwrap_or(Class::Read),
        environment: raw.environment.clone(),
        arguments,
        expires,
        reason: raw.reason.clone(),
    })
}

/// A rule id: letters, digits, `-`, `_`, `.`, `/`, `#`, at most 128 characters.
pub(crate) fn check_rule_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./#".contains(c);
    if id.is_empty() || id.len() > 128 || !id.chars().all(allowed) {
        return Err(format!(
            "id `{}` must be 1 to 128 letters, digits, `-`, `_`, `.`, `/` or `#`",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// Checks `to`.
fn check_audience(to: &[String]) -> Result<Audience, String> {
    if to.is_empty() {
        return Err("`to` is missing or empty; name users, groups or teams (`group:eng`), or `*` for everyone".to_owned());
    }
    if to.iter().any(|entry| entry == "*") {
        return if to.len() == 1 {
            Ok(Audience::Everyone)
        } else {
            Err("`to` lists `*` (everyone) beside other entries; keep only `*`".to_owned())
        };
    }
    let mut principals = Vec::new();
    for entry in to {
        let parsed = match entry.split_once(':') {
            Some(("user", id)) => PrincipalRef::User(id.to_owned()),
            Some(("group", id)) => PrincipalRef::Group(id.to_owned()),
            Some(("team", id)) => PrincipalRef::Team(id.to_owned()),
            _ => {
                return Err(format!(
                    "`to` entry `{}` must be `user:ID`, `group:NAME`, `team:NAME` or `*`",
                    entry.escape_debug()
                ));
            }
        };
        let (PrincipalRef::User(id) | PrincipalRef::Group(id) | PrincipalRef::Team(id)) = &parsed;
        if id.is_empty() || id.chars().any(char::is_control) {
            return Err(format!(
                "`to` entry `{}` has an empty or unprintable name",
                entry.escape_debug()
            ));
        }
        principals.push(parsed);
    }
    Ok(Audience::Only(principals))
}

/// Checks one argument condition.
fn check_argument(raw: &RawArgumentCondition) -> Result<ArgumentCondition, String> {
    if raw.arg.is_empty() {
        return Err("`arg` (the argument name) is missing".to_owned());
    }
    let range = raw.min.is_some() || raw.max.is_some();
    let kinds = [
        raw.under.is_some(),
        raw.one_of.is_some(),
        raw.matches.is_some(),
        range,
    ];
    if kinds.iter().filter(|given| **given).count() != 1 {
        return Err(format!(
            "argument `{}` needs exactly one test: `under`, `one_of`, `matches`, or `min`/`max`",
            raw.arg
        ));
    }
    let test = if let Some(directory) = &raw.under {
        let normalized = normalize_path(directory)
            .filter(|path| path.starts_with('/') || path.get(1..3) == Some(":/"))
            .ok_or_else(|| {
                format!(
                    "`under = \"{}\"` must be an absolute path without `..`",
                    directory.escape_debug()
                )
            })?;
        ArgumentTest::Under(normalized)
    } else if let Some(values) = &raw.one_of {
        if values.is_empty() {
            return Err(format!("`one_of` for argument `{}` is empty", raw.arg));
        }
        ArgumentTest::OneOf(values.clone())
    } else if let Some(pattern) = &raw.matches {
        ArgumentTest::Matches(Glob::new(pattern)?)
    } else {
        if let (Some(min), Some(max)) = (raw.min, raw.max)
            && min > max
        {
            return Err(format!(
                "argument `{}`: `min` {min} is above `max` {max}",
                raw.arg
            ));
        }
        ArgumentTest::Range {
            min: raw.min,
            max: raw.max,
        }
    };
    Ok(ArgumentCondition {
        arg: raw.arg.clone(),
        test,
    })
}

/// Parses an RFC 3339 expiry.
fn check_expiry(text: &str) -> Result<Expiry, String> {
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|error| {
        format!(
            "`expires = \"{}\"` is not an RFC 3339 time such as 2026-07-01T00:00:00Z ({error})",
            text.escape_debug()
        )
    })?;
    let utc = parsed.with_timezone(&Utc);
    if !(1..=9999).contains(&utc.year()) {
        return Err(format!(
            "`expires = \"{text}\"` is outside the years 1 to 9999"
        ));
    }
    Ok(Expiry {
        unix_millis: utc.timestamp_millis(),
        cedar: utc.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}
