//! What a decision is asked about, and what it answers.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::Class;

/// The caller, as established by authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// The user id (`alice`, or the identity provider's subject).
    pub user: String,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
    /// Teams the user belongs to.
    pub teams: Vec<String>,
}

/// What kind of item is asked about; a tool carries its [`Class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A tool, with the class [`crate::classify`] gave it.
    Tool(Class),
    /// A prompt.
    Prompt,
    /// A resource.
    Resource,
    /// A resource template.
    ResourceTemplate,
}

impl ItemKind {
    /// The item's class: a tool's own, and read for everything else.
    pub fn class(self) -> Class {
        match self {
            Self::Tool(class) => class,
            Self::Prompt | Self::Resource | Self::ResourceTemplate => Class::Read,
        }
    }
}

/// One item the gateway exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Tool (with class), prompt, resource or resource template.
    pub kind: ItemKind,
    /// The name of the upstream server it comes from.
    pub server: String,
    /// The exposed name exactly as routed (`sentry__resolve_issue`, or the resource URI); see
    /// [`crate::is_canonical_name`].
    pub name: String,
    /// The server's environment tag (`production`, `staging`), if it has one.
    pub environment: Option<String>,
}

/// Seeing an item, or using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// May the caller see the item in a list (`tools/list`, `prompts/list`, ...)?
    List,
    /// May the caller use it: `call` a tool, `get` a prompt, `read` a resource or template.
    Use,
}

/// One question: may this principal do this to this item, with these arguments?
#[derive(Debug, Clone, Copy)]
pub struct DecisionRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// See or use.
    pub action: Action,
    /// What about.
    pub item: &'a Item,
    /// The call's arguments (`params.arguments`); ignored for [`Action::List`].
    pub arguments: Option<&'a Map<String, Value>>,
}

impl DecisionRequest<'_> {
    /// The Cedar action name: `list`, `call`, `get` or `read`.
    pub fn cedar_action(&self) -> &'static str {
        match (self.action, self.item.kind) {
            (Action::List, _) => "list",
            (Action::Use, ItemKind::Tool(_)) => "call",
            (Action::Use, ItemKind::Prompt) => "get",
            (Action::Use, ItemKind::Resource | ItemKind::ResourceTemplate) => "read",
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Go ahead.
    Allow,
    /// Refuse (and hide, for a listing).
    Deny,
}

/// The answer, with what a receipt and a human need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// Ids of the rules that decided: the satisfied denies for a deny, the satisfied allows for
    /// an allow, the rules that failed to evaluate for an error deny; empty for a default deny.
    pub rules: Vec<String>,
    /// One sentence for a person: who may or may not do what, and why.
    pub reason: String,
    /// Evaluation errors, each naming its rule; any error makes the decision a deny.
    pub errors: Vec<String>,
    /// [`crate::PolicySet::hash`] of the policy that decided.
    pub policy_hash: Arc<str>,
}

impl Decision {
    /// True for [`Effect::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}
