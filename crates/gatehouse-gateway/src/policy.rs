//! Authorization: one evaluator both filters what a caller can list and gates what they can
//! call, read or get, so the two can never disagree. A call can reach an upstream only with a
//! [`Permit`], and only [`Gateway::authorize`] makes one.
//!
//! With neither `[auth]` nor any grant configured the gateway is open (a local, anonymous
//! setup); otherwise the policy is enforced and nothing is allowed that no grant allows.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use gatehouse_config::{Config, ServerConfig};
use gatehouse_mcp::catalog::ListKind;
pub use gatehouse_policy::Item;
use gatehouse_policy::{
    Action, Class, Decision, DecisionRequest, ItemKind, PolicyFile, PolicySet, RawGrant,
};
use serde_json::{Map, Value};

use crate::Gateway;
use crate::error::GatewayError;
use crate::identity::Who;

/// Whether and how calls are authorized.
pub enum PolicyGate {
    /// Everything is allowed: no `[auth]` and no grants.
    Open,
    /// The policy in force; a reload swaps it whole.
    Enforced(RwLock<Arc<PolicySet>>),
}

/// Proof that a request was authorized. It cannot be made outside this module.
#[derive(Debug)]
pub struct Permit {
    /// The decision, when a policy is enforced. Private, so that no other module can build one.
    decision: Option<Decision>,
}

impl Permit {
    /// The decision that allowed the request, when a policy is enforced.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }
}

impl PolicyGate {
    /// Builds the gate from the configuration; Cedar files are read relative to `base`.
    pub fn from_config(config: &Config, base: &Path) -> Result<Self, String> {
        if config.auth.is_none() && config.grants.is_empty() && config.policy_files.is_empty() {
            return Ok(PolicyGate::Open);
        }
        Ok(PolicyGate::Enforced(RwLock::new(Arc::new(compile(
            config, base,
        )?))))
    }

    /// The policy in force, if one is enforced.
    pub fn current(&self) -> Option<Arc<PolicySet>> {
        match self {
            PolicyGate::Open => None,
            PolicyGate::Enforced(policy) => Some(Arc::clone(
                &policy
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )),
        }
    }

    /// Replaces the policy in force; an open gate stays open.
    pub fn replace(&self, policy: PolicySet) {
        if let PolicyGate::Enforced(current) = self {
            *current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
        }
    }
}

/// Compiles the grants and Cedar files of a configuration; the error names every problem.
pub fn compile(config: &Config, base: &Path) -> Result<PolicySet, String> {
    let mut grants = Vec::new();
    for (position, table) in config.grants.iter().enumerate() {
        let grant: RawGrant =
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|error: toml::de::Error| {
                    format!("grant {}: {}", position + 1, error.message())
                })?;
        grants.push(grant);
    }
    let mut files = Vec::new();
    for name in &config.policy_files {
        let text = std::fs::read_to_string(base.join(name))
            .map_err(|error| format!("policy file {name}: {error}"))?;
        files.push(PolicyFile {
            name: name.clone(),
            text,
        });
    }
    PolicySet::compile(&grants, &files).map_err(|error| error.to_string())
}

/// The policy's view of the caller.
fn principal(who: &Who) -> gatehouse_policy::Principal {
    match who {
        Who::Anonymous => gatehouse_policy::Principal {
            // No real user name contains a space, so this id never collides with one.
            user: "anonymous caller".to_owned(),
            ..Default::default()
        },
        Who::Person(person) => gatehouse_policy::Principal {
            user: person.user().to_owned(),
            groups: person.groups().to_vec(),
            teams: person.teams().to_vec(),
        },
    }
}

/// The policy's view of an item an upstream offers, under its client-facing name. A tool is
/// classified by the operator's override first, then its annotations, then heuristics.
pub fn describe(
    server: &ServerConfig,
    kind: ListKind,
    exposed_name: &str,
    definition: Option<&Value>,
) -> Item {
    let item_kind = match kind {
        ListKind::Tools => {
            let upstream_name = match server.prefix.as_deref() {
                Some(prefix) => exposed_name
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix("__"))
                    .unwrap_or(exposed_name),
                None => exposed_name,
            };
            let operator =
                server
                    .classes
                    .get(upstream_name)
                    .and_then(|class| match class.as_str() {
                        "read" => Some(Class::Read),
                        "write" => Some(Class::Write),
                        "destructive" => Some(Class::Destructive),
                        _ => None,
                    });
            let empty = Value::Null;
            ItemKind::Tool(gatehouse_policy::classify(definition.unwrap_or(&empty), operator).0)
        }
        ListKind::Prompts => ItemKind::Prompt,
        ListKind::Resources => ItemKind::Resource,
        ListKind::ResourceTemplates => ItemKind::ResourceTemplate,
    };
    Item {
        kind: item_kind,
        server: server.name.to_string(),
        name: exposed_name.to_owned(),
        environment: server.environment.clone(),
    }
}

impl Gateway {
    /// Which of `items` the caller may see in a list, decided at one instant for the whole list.
    pub(crate) fn visible(&self, who: &Who, items: &[Item]) -> Vec<bool> {
        let Some(policy) = self.policy.current() else {
            return vec![true; items.len()];
        };
        let principal = principal(who);
        let now = SystemTime::now();
        items
            .iter()
            .map(|item| {
                let request = DecisionRequest {
                    principal: &principal,
                    action: Action::List,
                    item,
                    arguments: None,
                };
                policy.decide(&request, now).is_allowed()
            })
            .collect()
    }

    /// A permit for anything, given only when no policy is enforced (for methods the policy
    /// has no item for, which are relayed only then).
    pub(crate) fn open_permit(&self) -> Option<Permit> {
        self.policy
            .current()
            .is_none()
            .then_some(Permit { decision: None })
    }

    /// A permit to follow up on a task: the task id routes only to the server that made it for
    /// a call the policy allowed. Under an enforced policy the caller must be identified.
    pub(crate) fn continue_task(&self, who: &Who, task_id: &str) -> Result<Permit, GatewayError> {
        match (self.policy.current(), who) {
            (Some(_), Who::Anonymous) => Err(GatewayError::PolicyDenied {
                reason: format!("anonymous callers may not follow task `{task_id}`"),
                rules: Vec::new(),
                policy_hash: String::new(),
            }),
            _ => Ok(Permit { decision: None }),
        }
    }

    /// Decides whether the caller may use an item with these arguments.
    pub(crate) fn authorize(
        &self,
        who: &Who,
        item: &Item,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<Permit, GatewayError> {
        let Some(policy) = self.policy.current() else {
            return Ok(Permit { decision: None });
        };
        let principal = principal(who);
        let request = DecisionRequest {
            principal: &principal,
            action: Action::Use,
            item,
            arguments,
        };
        let decision = policy.decide(&request, SystemTime::now());
        if !decision.errors.is_empty() {
            tracing::error!(errors = ?decision.errors, rules = ?decision.rules, "policy evaluation failed; the request is denied");
        }
        if decision.is_allowed() {
            Ok(Permit {
                decision: Some(decision),
            })
        } else {
            tracing::info!(user = %principal.user, item = %item.name, rules = ?decision.rules, reason = %decision.reason, "denied");
            Err(GatewayError::PolicyDenied {
                reason: decision.reason.clone(),
                rules: decision.rules.clone(),
                policy_hash: decision.policy_hash.to_string(),
            })
        }
    }
}
