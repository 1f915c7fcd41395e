//! The pre-filter: which rules could possibly apply to a request, found without Cedar.
//!
//! Cedar evaluates every policy it is given, so with hundreds of rules most of the time would
//! go to rules for other people and other tools. The index keeps, per user, group and team,
//! the rules whose principal scope names them; grants are then checked against the item's
//! kind, name, server, class, environment and the expiry, exactly as their Cedar text would. Only rules that are
//! certain to be false are dropped, and since those checks come first in each rule's `&&`
//! chain, a dropped rule could not have raised an evaluation error either: the decision is
//! the same as Cedar's over the whole set (a test compares both on a generated matrix).

use std::collections::HashMap;

use cedar_policy::{EntityUid, PrincipalConstraint};

use crate::glob::Glob;
use crate::grant::{Audience, Grant, ItemScope, PrincipalRef};
use crate::raw::RawEffect;
use crate::{Item, ItemKind, Principal};

/// What the pre-filter knows about one rule.
#[derive(Debug, Clone)]
pub(crate) enum RuleFilter {
    /// A compiled grant: everything but the argument conditions.
    Grant {
        /// Who it applies to.
        audience: Audience,
        /// Which items by kind and name.
        items: ItemScope,
        /// Server patterns.
        servers: Option<Vec<Glob>>,
        /// The access condition: the highest level a permit allows, or the lowest a forbid
        /// stops.
        access: AccessBound,
        /// Required environment tag.
        environment: Option<String>,
        /// Expiry in Unix milliseconds.
        expires_millis: Option<i64>,
    },
    /// A raw Cedar policy: only its principal scope is understood.
    Cedar {
        /// The principal it is limited to, or `None` for anyone.
        principal: Option<PrincipalRef>,
    },
}

impl RuleFilter {
    /// The filter for a grant.
    pub(crate) fn for_grant(grant: &Grant) -> Self {
        Self::Grant {
            audience: grant.audience.clone(),
            items: grant.items.clone(),
            servers: grant.servers.clone(),
            access: match grant.effect {
                RawEffect::Allow => AccessBound::AtMost(grant.access.level()),
                RawEffect::Deny => AccessBound::AtLeast(grant.access.level()),
            },
            environment: grant.environment.clone(),
            expires_millis: grant.expires.as_ref().map(|expiry| expiry.unix_millis),
        }
    }

    /// The filter for a raw Cedar policy, from its principal scope.
    pub(crate) fn for_cedar(policy: &cedar_policy::Policy) -> Self {
        let principal = match policy.principal_constraint() {
            PrincipalConstraint::In(uid)
            | PrincipalConstraint::Eq(uid)
            | PrincipalConstraint::IsIn(_, uid) => principal_ref(&uid),
            PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
        };
        Self::Cedar { principal }
    }

    /// The principals under which the index files this rule; empty means everyone.
    fn principals(&self) -> Vec<PrincipalRef> {
        match self {
            Self::Grant {
                audience: Audience::Only(principals),
                ..
            } => principals.clone(),
            Self::Cedar {
                principal: Some(principal),
            } => vec![principal.clone()],
            Self::Grant {
                audience: Audience::Everyone,
                ..
            }
            | Self::Cedar { principal: None } => Vec::new(),
        }
    }

    /// False only when the rule's item, server or expiry condition is certainly false.
    pub(crate) fn admits(&self, item: &Item, now_millis: i64) -> bool {
        let Self::Grant {
            items,
            servers,
            access,
            environment,
            expires_millis,
            ..
        } = self
        else {
            return true;
        };
        let level = item.kind.class().level();
        let within = match access {
            AccessBound::AtMost(highest) => level <= *highest,
            AccessBound::AtLeast(lowest) => level >= *lowest,
        };
        if !within
            || expires_millis.is_some_and(|expires| now_millis >= expires)
            || environment
                .as_ref()
                .is_some_and(|wanted| item.environment.as_ref() != Some(wanted))
        {
            return false;
        }
        if let Some(servers) = servers
            && !servers.iter().any(|glob| glob.matches(&item.server))
        {
            return false;
        }
        if items.is_everything() {
            return true;
        }
        let patterns = match item.kind {
            ItemKind::Tool(_) => &items.tools,
            ItemKind::Prompt => &items.prompts,
            ItemKind::Resource | ItemKind::ResourceTemplate => &items.resources,
        };
        patterns
            .as_ref()
            .is_some_and(|globs| globs.iter().any(|glob| glob.matches(&item.name)))
    }
}

/// A grant's condition on `resource.level`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccessBound {
    /// A permit: `resource.level <= N`.
    AtMost(i64),
    /// A forbid: `resource.level >= N`.
    AtLeast(i64),
}

/// The user, group or team a Cedar scope names; other entity types are left to Cedar.
fn principal_ref(uid: &EntityUid) -> Option<PrincipalRef> {
    let id = uid.id().unescaped().to_owned();
    let type_name = uid.type_name();
    if !type_name.namespace().is_empty() {
        return None;
    }
    match type_name.basename() {
        "User" => Some(PrincipalRef::User(id)),
        "Group" => Some(PrincipalRef::Group(id)),
        "Team" => Some(PrincipalRef::Team(id)),
        _ => None,
    }
}

/// Rule positions by the principal they are limited to.
#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    /// Rules for everyone.
    everyone: Vec<usize>,
    /// Rules naming a principal.
    by_principal: HashMap<PrincipalRef, Vec<usize>>,
}

impl RuleIndex {
    /// Indexes the rules, by position.
    pub(crate) fn new<P>(rules: &[(P, RuleFilter)]) -> Self {
        let mut index = Self::default();
        for (position, (_, filter)) in rules.iter().enumerate() {
            let principals = filter.principals();
            if principals.is_empty() {
                index.everyone.push(position);
            }
            for principal in principals {
                index
                    .by_principal
                    .entry(principal)
                    .or_default()
                    .push(position);
            }
        }
        index
    }

    /// Positions of the rules whose principal scope can match `principal`, ascending.
    pub(crate) fn candidates(&self, principal: &Principal) -> Vec<usize> {
        let mut positions = self.everyone.clone();
        let mut add = |key: PrincipalRef| {
            if let Some(found) = self.by_principal.get(&key) {
                positions.extend_from_slice(found);
            }
        };
        add(PrincipalRef::User(principal.user.clone()));
        for group in &principal.groups {
            add(PrincipalRef::Group(group.clone()));
        }
        for team in &principal.teams {
            add(PrincipalRef::Team(team.clone()));
        }
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}
