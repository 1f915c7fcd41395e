//! One decision: build the Cedar request and entities, evaluate the rules that can apply,
//! and turn Cedar's answer into a [`Decision`] where any evaluation error is a deny.

use std::cell::RefCell;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet as CedarSet, Request,
    RestrictedExpression,
};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::args::ArgumentValues;
use crate::{Action, Decision, DecisionRequest, Effect, ItemKind, PolicySet};

/// Entity type names, parsed once per policy set rather than once per request.
#[derive(Debug, Clone)]
pub(crate) struct CedarNames {
    user: EntityTypeName,
    group: EntityTypeName,
    team: EntityTypeName,
    server: EntityTypeName,
    tool: EntityTypeName,
    prompt: EntityTypeName,
    resource: EntityTypeName,
    resource_template: EntityTypeName,
    text_arguments: EntityTypeName,
    path_arguments: EntityTypeName,
    number_arguments: EntityTypeName,
    action: EntityTypeName,
}

impl CedarNames {
    /// Parses the type names. They are plain identifiers, so this cannot fail in practice;
    /// `None` keeps the code free of panics all the same.
    pub(crate) fn new() -> Option<Self> {
        let name = |text: &str| EntityTypeName::from_str(text).ok();
        Some(Self {
            user: name("User")?,
            group: name("Group")?,
            team: name("Team")?,
            server: name("Server")?,
            tool: name("Tool")?,
            prompt: name("Prompt")?,
            resource: name("Resource")?,
            resource_template: name("ResourceTemplate")?,
            text_arguments: name("TextArguments")?,
            path_arguments: name("PathArguments")?,
            number_arguments: name("NumberArguments")?,
            action: name("Action")?,
        })
    }
}

/// `Type::"id"`.
fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

thread_local! {
    /// The context of the last request decided on this thread, by `now` in milliseconds.
    /// The context depends on nothing else, and building it is a large part of a decision
    /// (Cedar parses the `datetime` text each time), so filtering a list at one instant
    /// builds it once.
    static CONTEXT: RefCell<Option<(i64, Context)>> = const { RefCell::new(None) };
}

impl PolicySet {
    /// Decides one request at the instant `now`.
    ///
    /// Default deny; a satisfied deny rule beats every allow; an error while evaluating any
    /// rule that could apply makes the answer a deny that lists the error, so a broken deny
    /// rule can never be skipped into an allow. The same call answers listing
    /// ([`Action::List`]) and use ([`Action::Use`]), so the two cannot disagree except
    /// through argument conditions, which a listing has no arguments for.
    pub fn decide(&self, request: &DecisionRequest<'_>, now: SystemTime) -> Decision {
        let now_millis = unix_millis(now);
        let item = request.item;
        let candidates: Vec<usize> = self
            .index
            .candidates(request.principal)
            .into_iter()
            .filter(|position| self.policies[*position].1.admits(item, now_millis))
            .collect();
        if candidates.is_empty() {
            return self.finish(
                request,
                Effect::Deny,
                Vec::new(),
                Vec::new(),
                NO_RULE.to_owned(),
            );
        }
        let subset;
        let policies = if candidates.len() == self.policies.len() {
            &self.all
        } else {
            let mut set = CedarSet::new();
            for position in &candidates {
                if let Err(error) = set.add(self.policies[*position].0.clone()) {
                    return self.error_deny(request, format!("could not assemble rules: {error}"));
                }
            }
            subset = set;
            &subset
        };
        self.evaluate(request, now, policies)
    }

    /// Decides against every rule, without the pre-filter; the reference the index is tested
    /// against.
    #[cfg(test)]
    pub(crate) fn decide_unfiltered(
        &self,
        request: &DecisionRequest<'_>,
        now: SystemTime,
    ) -> Decision {
        self.evaluate(request, now, &self.all)
    }

    /// Runs Cedar over `policies` and reads its answer strictly.
    fn evaluate(
        &self,
        request: &DecisionRequest<'_>,
        now: SystemTime,
        policies: &CedarSet,
    ) -> Decision {
        let (cedar_request, entities) = match self.cedar_request(request, now) {
            Ok(built) => built,
            Err(error) => return self.error_deny(request, error),
        };
        let response = self
            .authorizer
            .is_authorized(&cedar_request, policies, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        let decided = self.in_rule_order(diagnostics.reason().map(ToString::to_string));
        if !errors.is_empty() {
            let failed = self.in_rule_order(diagnostics.errors().map(|error| match error {
                cedar_policy::AuthorizationError::PolicyEvaluationError(error) => {
                    error.policy_id().to_string()
                }
            }));
            // Name the satisfied denies if there are any, else the rules that failed.
            if response.decision() == cedar_policy::Decision::Deny && !decided.is_empty() {
                let why = format!(
                    "denied by {} (and {} could not be evaluated)",
                    decided.join(", "),
                    failed.join(", ")
                );
                return self.finish(request, Effect::Deny, decided, errors, why);
            }
            let why = format!(
                "{} could not be evaluated, and a rule that fails counts as a deny",
                failed.join(", ")
            );
            return self.finish(request, Effect::Deny, failed, errors, why);
        }
        match response.decision() {
            cedar_policy::Decision::Allow => {
                let why = format!("allowed by {}", decided.join(", "));
                self.finish(request, Effect::Allow, decided, errors, why)
            }
            cedar_policy::Decision::Deny if decided.is_empty() => {
                self.finish(request, Effect::Deny, decided, errors, NO_RULE.to_owned())
            }
            cedar_policy::Decision::Deny => {
                let why = format!("denied by {}", decided.join(", "));
                self.finish(request, Effect::Deny, decided, errors, why)
            }
        }
    }

    /// The Cedar request and the entities it refers to.
    fn cedar_request(
        &self,
        request: &DecisionRequest<'_>,
        now: SystemTime,
    ) -> Result<(Request, Entities), String> {
        let names = self
            .names
            .as_ref()
            .ok_or("entity type names are unavailable")?;
        let principal = request.principal;
        let item = request.item;
        let user = uid(&names.user, &principal.user);
        let parents = principal
            .groups
            .iter()
            .map(|group| uid(&names.group, group))
            .chain(principal.teams.iter().map(|team| uid(&names.team, team)));
        let user_entity = Entity::new_no_attrs(user.clone(), parents.collect());

        let type_name = match item.kind {
            ItemKind::Tool(_) => &names.tool,
            ItemKind::Prompt => &names.prompt,
            ItemKind::Resource => &names.resource,
            ItemKind::ResourceTemplate => &names.resource_template,
        };
        let resource = uid(type_name, &item.name);
        let class = item.kind.class();
        let mut attributes = vec![
            (
                "name".to_owned(),
                RestrictedExpression::new_string(item.name.clone()),
            ),
            (
                "server".to_owned(),
                RestrictedExpression::new_string(item.server.clone()),
            ),
            (
                "class".to_owned(),
                RestrictedExpression::new_string(class.as_str().to_owned()),
            ),
            (
                "level".to_owned(),
                RestrictedExpression::new_long(class.level()),
            ),
        ];
        if let Some(environment) = &item.environment {
            attributes.push((
                "environment".to_owned(),
                RestrictedExpression::new_string(environment.clone()),
            ));
        }
        let server = uid(&names.server, &item.server);
        let item_entity = Entity::new_with_tags(resource.clone(), attributes, [server], [])
            .map_err(|error| error.to_string())?;

        let mut entities = vec![user_entity, item_entity];
        if let (Action::Use, Some(arguments)) = (request.action, request.arguments) {
            // Argument entities are left out when empty: `hasTag` on a missing entity is
            // false, and strict validation lets `getTag` run only after `hasTag`.
            let values = ArgumentValues::from_json(arguments);
            let strings = |pairs: Vec<(String, String)>| {
                pairs
                    .into_iter()
                    .map(|(key, value)| (key, RestrictedExpression::new_string(value)))
                    .collect::<Vec<_>>()
            };
            let numbers = values
                .number
                .into_iter()
                .map(|(key, value)| (key, RestrictedExpression::new_long(value)))
                .collect::<Vec<_>>();
            for (type_name, tags) in [
                (&names.text_arguments, strings(values.text)),
                (&names.path_arguments, strings(values.path)),
                (&names.number_arguments, numbers),
            ] {
                if !tags.is_empty() {
                    let entity = Entity::new_with_tags(uid(type_name, ""), [], [], tags)
                        .map_err(|error| error.to_string())?;
                    entities.push(entity);
                }
            }
        }
        let entities =
            Entities::from_entities(entities, None).map_err(|error| error.to_string())?;
        let context = context_at(names, now)?;
        let action = uid(&names.action, request.cedar_action());
        let cedar_request = Request::new(user, action, resource, context, None)
            .map_err(|error| error.to_string())?;
        Ok((cedar_request, entities))
    }

    /// Rule ids sorted by where the rules are written (Cedar reports them unordered).
    fn in_rule_order(&self, ids: impl Iterator<Item = String>) -> Vec<String> {
        let mut ids: Vec<String> = ids.collect();
        ids.sort_by_key(|id| self.positions.get(id).copied().unwrap_or(usize::MAX));
        ids
    }

    /// A deny for an error outside any one rule.
    fn error_deny(&self, request: &DecisionRequest<'_>, error: String) -> Decision {
        let why = format!("the request could not be evaluated ({error}), which counts as a deny");
        self.finish(request, Effect::Deny, Vec::new(), vec![error], why)
    }

    /// The decision with its sentence: `alice may not call `x`: WHY`.
    fn finish(
        &self,
        request: &DecisionRequest<'_>,
        effect: Effect,
        rules: Vec<String>,
        errors: Vec<String>,
        why: String,
    ) -> Decision {
        let verb = match request.cedar_action() {
            "list" => "see",
            other => other,
        };
        let may = match effect {
            Effect::Allow => "may",
            Effect::Deny => "may not",
        };
        Decision {
            effect,
            rules,
            reason: format!(
                "{} {may} {verb} `{}`: {why}",
                request.principal.user, request.item.name
            ),
            errors,
            policy_hash: self.hash.clone(),
        }
    }
}

/// The reason for a default deny.
const NO_RULE: &str = "no rule allows it";

/// The request context at `now`: the instant, and the argument entities by reference.
fn context_at(names: &CedarNames, now: SystemTime) -> Result<Context, String> {
    let now_millis = unix_millis(now);
    let cached = CONTEXT.with_borrow(|cached| match cached {
        Some((millis, context)) if *millis == now_millis => Some(context.clone()),
        _ => None,
    });
    if let Some(context) = cached {
        return Ok(context);
    }
    let argument =
        |type_name: &EntityTypeName| RestrictedExpression::new_entity_uid(uid(type_name, ""));
    let context = Context::from_pairs([
        (
            "now".to_owned(),
            RestrictedExpression::new_datetime(cedar_datetime(now)),
        ),
        (
            "args".to_owned(),
            RestrictedExpression::new_record([
                ("text".to_owned(), argument(&names.text_arguments)),
                ("path".to_owned(), argument(&names.path_arguments)),
                ("number".to_owned(), argument(&names.number_arguments)),
            ])
            .map_err(|error| error.to_string())?,
        ),
    ])
    .map_err(|error| error.to_string())?;
    CONTEXT.set(Some((now_millis, context.clone())));
    Ok(context)
}

/// Milliseconds since the Unix epoch (negative before it).
fn unix_millis(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

/// `now` in Cedar's `datetime` syntax, UTC with milliseconds.
fn cedar_datetime(now: SystemTime) -> String {
    DateTime::<Utc>::from(now).to_rfc3339_opts(SecondsFormat::Millis, true)
}
