//! Grants exactly as written in TOML: serde types with `deny_unknown_fields`, so a misspelt
//! key is an error that names it rather than a condition silently dropped.
//!
//! ```toml
//! [[grant]]
//! id = "eng-reads-sentry"
//! to = ["group:eng"]
//! tools = ["sentry__*"]
//! access = "read"
//! ```

use serde::Deserialize;

use crate::Class;

/// A list of grants, the `[[grant]]` tables of a policy document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// The grants, in the order they are written; a grant without an `id` is named after its
    /// 1-based position (`grant-3`).
    #[serde(default)]
    pub grant: Vec<RawGrant>,
}

/// One grant: who, over what, how far, and under which conditions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// A stable name for the rule, shown in decisions and receipts (letters, digits, `-`, `_`,
    /// `.`); defaults to `grant-N` for the N-th grant, which changes when grants are reordered.
    pub id: Option<String>,
    /// `allow` (the default) or `deny`; a deny always beats an allow.
    pub effect: Option<RawEffect>,
    /// Who it applies to: `user:ID`, `group:NAME`, `team:NAME`, or `*` for every caller.
    #[serde(default)]
    pub to: Vec<String>,
    /// Server name patterns (`sentry`, `git*`); absent means every server.
    pub servers: Option<Vec<String>>,
    /// Exposed tool name patterns (`sentry__*`, `*admin*`).
    pub tools: Option<Vec<String>>,
    /// Exposed prompt name patterns.
    pub prompts: Option<Vec<String>>,
    /// Exposed resource URI and resource template patterns.
    pub resources: Option<Vec<String>>,
    /// For an allow, the highest tool class allowed (`read` < `write` < `destructive`); for a
    /// deny, the lowest class denied. `read` when absent: an allow lets only read tools
    /// through, a deny stops everything. Prompts and resources count as read.
    pub access: Option<Class>,
    /// Applies only to servers tagged with this environment (`production`, `staging`).
    pub environment: Option<String>,
    /// Conditions on the call's top-level arguments, all of which must hold; a listing (which
    /// has no arguments) ignores them.
    #[serde(default)]
    pub arguments: Vec<RawArgumentCondition>,
    /// When the grant lapses by itself, as RFC 3339 (`2026-07-01T00:00:00Z`); requires
    /// `reason`.
    pub expires: Option<String>,
    /// Why the grant exists, such as a ticket reference; required with `expires`.
    pub reason: Option<String>,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawEffect {
    /// Permit what the grant describes.
    Allow,
    /// Forbid what the grant describes, whatever else allows it.
    Deny,
}

/// One condition on one argument; exactly one kind of test (`under`, `one_of`, `matches`, or
/// `min`/`max`) per condition.
///
/// For an allow, the condition holds only when the argument is present and passes. For a
/// deny, it holds unless the argument is present, readable and fails the test, so a missing
/// or unreadable argument is denied rather than waved through.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArgumentCondition {
    /// The top-level argument name, such as `path`.
    pub arg: String,
    /// The argument, as a normalized path, is this directory or inside it (`/workspace`).
    pub under: Option<String>,
    /// The argument is exactly one of these strings.
    pub one_of: Option<Vec<String>>,
    /// The argument, as sent, matches this pattern (`*` is the only wildcard).
    pub matches: Option<String>,
    /// The argument is an integer no smaller than this.
    pub min: Option<i64>,
    /// The argument is an integer no larger than this.
    pub max: Option<i64>,
}

/// A file of Cedar policies given beside the grants.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Where the text came from, used in rule ids and error locations (`policies/base.cedar`).
    pub name: String,
    /// The Cedar policies.
    pub text: String,
}
