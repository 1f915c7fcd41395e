//! The policy decision engine: who may see and use which tools, prompts and resources.
//!
//! Grants written in the gateway config ([`RawGrant`]) and raw Cedar files ([`PolicyFile`])
//! compile into one immutable [`PolicySet`], validated in strict mode against a fixed Cedar
//! schema ([`SCHEMA_TEXT`]); a set that fails is refused whole, with every problem located,
//! and the caller keeps the set it had. [`PolicySet::decide`] answers both "may they see it"
//! (listing) and "may they use it" (call, get, read) with one evaluator: default deny, a deny
//! beats any allow, and an error in any rule is a deny. [`classify`] says what a tool does
//! (read, write, destructive) and [`is_canonical_name`] which names are safe to decide on.
//!
//! Architecture invariant: this crate does no IO, spawns nothing, is not async and never
//! reads the clock; the caller passes `now`, so every decision is a pure function of the
//! policy, the request and that instant, and is tested by tables.

#![warn(missing_docs)]

mod args;
mod cedar_text;
mod classify;
mod compile;
mod decide;
mod error;
mod glob;
mod grant;
mod index;
mod names;
pub mod raw;
mod request;
mod schema;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::Authorizer;

pub use args::normalize_path;
pub use classify::{Class, ClassSource, classify};
pub use error::{Location, PolicyError, Problem};
pub use names::is_canonical_name;
pub use raw::{PolicyFile, RawArgumentCondition, RawEffect, RawGrant, RawPolicy};
pub use request::{Action, Decision, DecisionRequest, Effect, Item, ItemKind, Principal};
pub use schema::SCHEMA_TEXT;

/// A compiled, validated, immutable set of rules. Share it behind an `Arc` and swap the
/// `Arc` on reload; a decision always runs against one whole set.
#[derive(Debug)]
pub struct PolicySet {
    /// Rules in order: grants first, then files.
    rules: Vec<Rule>,
    /// Rule positions by id.
    positions: HashMap<String, usize>,
    /// Each rule's Cedar policy and pre-filter, by the same position.
    policies: Vec<(cedar_policy::Policy, index::RuleFilter)>,
    /// Every policy, for requests that no rule can be filtered out of.
    all: cedar_policy::PolicySet,
    /// Rule positions by principal.
    index: index::RuleIndex,
    /// Entity type names (`None` only if Cedar refused a plain identifier).
    names: Option<decide::CedarNames>,
    /// Cedar's evaluator (stateless).
    authorizer: Authorizer,
    /// The schema and every rule's text, as hashed.
    text: String,
    /// SHA-256 of `text`.
    hash: Arc<str>,
    /// Validation warnings (such as a rule that can never apply), each with its location.
    warnings: Vec<String>,
}

/// One rule of a [`PolicySet`], for `policy explain` and `gatehouse access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The id decisions name it by.
    pub id: String,
    /// Where it was written.
    pub location: Location,
    /// Its Cedar text.
    pub text: String,
    /// When it lapses, as Cedar writes the instant, if it does.
    pub expires: Option<String>,
    /// Why it exists, if given (a grant's `reason` or a Cedar `@reason` annotation).
    pub reason: Option<String>,
}

impl PolicySet {
    /// SHA-256 (lowercase hex) of the schema and every rule's id and text, in order: the same
    /// policy always hashes the same, so a receipt names exactly the policy that decided.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The rules, grants first and then files, in the order written.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }

    /// The full text that was hashed: the schema, then each rule's id and Cedar text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Validator warnings that did not refuse the set, each starting with its location.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
