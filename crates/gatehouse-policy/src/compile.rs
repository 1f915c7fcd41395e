//! Grants and Cedar files in, one validated, immutable [`PolicySet`] out.
//!
//! Every problem is collected with its location before the set is refused, so an operator
//! fixes a broken policy in one pass; nothing is half-applied.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Authorizer, PolicyId, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::cedar_text::grant_to_cedar;
use crate::decide::CedarNames;
use crate::error::{Location, PolicyError, Problem};
use crate::grant::{check_grant, check_rule_id};
use crate::index::{RuleFilter, RuleIndex};
use crate::raw::{PolicyFile, RawGrant};
use crate::schema::SCHEMA_TEXT;
use crate::{PolicySet, Rule};

/// One compiled rule before validation.
struct Pending {
    rule: Rule,
    policy: cedar_policy::Policy,
    filter: RuleFilter,
}

impl PolicySet {
    /// Compiles grants and Cedar policy files into a policy set, validated in strict mode
    /// against [`crate::SCHEMA_TEXT`].
    ///
    /// On error nothing changes for the caller: keep serving the previous set and report
    /// the [`PolicyError`], which lists every problem with its grant or file line.
    pub fn compile(grants: &[RawGrant], files: &[PolicyFile]) -> Result<Self, PolicyError> {
        let mut problems = Vec::new();
        let mut pending = Vec::new();
        for (position, raw) in grants.iter().enumerate() {
            match check_grant(position + 1, raw) {
                Ok(grant) => {
                    let text = grant_to_cedar(&grant);
                    match cedar_policy::Policy::parse(Some(PolicyId::new(&grant.id)), &text) {
                        Ok(policy) => pending.push(Pending {
                            filter: RuleFilter::for_grant(&grant),
                            rule: Rule {
                                id: grant.id.clone(),
                                location: grant.location.clone(),
                                text,
                                expires: grant.expires.as_ref().map(|e| e.cedar.clone()),
                                reason: grant.reason.clone(),
                            },
                            policy,
                        }),
                        Err(error) => problems.push(Problem {
                            location: grant.location.clone(),
                            message: format!("could not be written as Cedar: {error}"),
                        }),
                    }
                }
                Err(found) => problems.extend(found),
            }
        }
        for file in files {
            parse_file(file, &mut pending, &mut problems);
        }
        check_unique_ids(&pending, &mut problems);
        let schema = match Schema::from_cedarschema_str(SCHEMA_TEXT) {
            Ok((schema, _warnings)) => schema,
            Err(error) => {
                problems.push(Problem {
                    location: Location::File {
                        name: "built-in schema".to_owned(),
                        line: None,
                    },
                    message: error.to_string(),
                });
                return Err(PolicyError { problems });
            }
        };
        if !problems.is_empty() {
            return Err(PolicyError { problems });
        }
        build(pending, schema, files)
    }

    /// A set with no rules: every request is denied.
    pub fn empty() -> Self {
        assemble(Vec::new(), cedar_policy::PolicySet::new(), Vec::new())
    }
}

/// Validates the whole set and assembles the [`PolicySet`].
fn build(
    pending: Vec<Pending>,
    schema: Schema,
    files: &[PolicyFile],
) -> Result<PolicySet, PolicyError> {
    let mut all = cedar_policy::PolicySet::new();
    let mut problems = Vec::new();
    for item in &pending {
        if let Err(error) = all.add(item.policy.clone()) {
            problems.push(Problem {
                location: item.rule.location.clone(),
                message: error.to_string(),
            });
        }
    }
    let validation = Validator::new(schema).validate(&all, ValidationMode::Strict);
    for error in validation.validation_errors() {
        problems.push(Problem {
            location: locate(&pending, files, error.policy_id(), error),
            message: error.to_string(),
        });
    }
    if !problems.is_empty() {
        return Err(PolicyError { problems });
    }
    let warnings = validation
        .validation_warnings()
        .map(|warning| {
            let location = locate(&pending, files, warning.policy_id(), warning);
            format!("{location}: {warning}")
        })
        .collect();
    Ok(assemble(pending, all, warnings))
}

/// The policy set from validated rules; `all` holds the same policies as `pending`.
fn assemble(
    pending: Vec<Pending>,
    all: cedar_policy::PolicySet,
    warnings: Vec<String>,
) -> PolicySet {
    let mut text = String::from(SCHEMA_TEXT);
    for item in &pending {
        text.push_str(&format!("\n// rule {}\n{}", item.rule.id, item.rule.text));
    }
    let hash: Arc<str> = Arc::from(hex(&Sha256::digest(text.as_bytes())));
    let (rules, compiled): (Vec<Rule>, Vec<_>) = pending
        .into_iter()
        .map(|item| (item.rule, (item.policy, item.filter)))
        .unzip();
    let index = RuleIndex::new(&compiled);
    PolicySet {
        positions: rules
            .iter()
            .enumerate()
            .map(|(position, rule)| (rule.id.clone(), position))
            .collect(),
        rules,
        policies: compiled,
        all,
        index,
        names: CedarNames::new(),
        authorizer: Authorizer::new(),
        text,
        hash,
        warnings,
    }
}

/// Parses one Cedar file into pending rules, naming each `@id` or `FILE#N`.
fn parse_file(file: &PolicyFile, pending: &mut Vec<Pending>, problems: &mut Vec<Problem>) {
    let set = match cedar_policy::PolicySet::from_str(&file.text) {
        Ok(set) => set,
        Err(errors) => {
            for error in errors.iter() {
                problems.push(Problem {
                    location: file_location(file, first_offset(error)),
                    message: error.to_string(),
                });
            }
            return;
        }
    };
    if set.templates().next().is_some() {
        problems.push(Problem {
            location: file_location(file, None),
            message: "templates (policies with `?principal` or `?resource`) are not supported"
                .to_owned(),
        });
    }
    // The parser names policies `policy0`, `policy1`, ... in source order.
    let mut policies: Vec<&cedar_policy::Policy> = set.policies().collect();
    policies.sort_by_key(|policy| {
        policy
            .id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let mut search_from = 0;
    for (position, policy) in policies.into_iter().enumerate() {
        let source = policy.to_string();
        let offset = file.text[search_from..]
            .find(&source)
            .map(|found| search_from + found);
        if let Some(offset) = offset {
            search_from = offset + source.len();
        }
        let location = file_location(file, offset);
        let id = match policy.annotation("id") {
            Some(id) => {
                if let Err(message) = check_rule_id(id) {
                    problems.push(Problem {
                        location: location.clone(),
                        message,
                    });
                }
                id.to_owned()
            }
            None => format!("{}#{}", file.name, position + 1),
        };
        pending.push(Pending {
            filter: RuleFilter::for_cedar(policy),
            policy: policy.new_id(PolicyId::new(&id)),
            rule: Rule {
                id,
                location,
                text: source,
                expires: None,
                reason: policy.annotation("reason").map(str::to_owned),
            },
        });
    }
}

/// Refuses two rules with the same id: decisions name rules by id.
fn check_unique_ids(pending: &[Pending], problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    for item in pending {
        if !seen.insert(item.rule.id.as_str()) {
            problems.push(Problem {
                location: item.rule.location.clone(),
                message: format!("rule id `{}` is used more than once", item.rule.id),
            });
        }
    }
}

/// Where a validation error or warning is: the grant, or the file line of the expression.
fn locate(
    pending: &[Pending],
    files: &[PolicyFile],
    id: &PolicyId,
    diagnostic: &dyn Diagnostic,
) -> Location {
    let Some(item) = pending.iter().find(|item| item.rule.id == id.to_string()) else {
        return Location::File {
            name: format!("rule {id}"),
            line: None,
        };
    };
    match &item.rule.location {
        Location::File { name, .. } => match files.iter().find(|file| &file.name == name) {
            Some(file) => file_location(file, first_offset(diagnostic)),
            None => item.rule.location.clone(),
        },
        grant => grant.clone(),
    }
}

/// A file location at a byte offset into its text.
fn file_location(file: &PolicyFile, offset: Option<usize>) -> Location {
    Location::File {
        name: file.name.clone(),
        line: offset.map(|offset| {
            file.text.as_bytes()[..offset.min(file.text.len())]
                .iter()
                .filter(|byte| **byte == b'\n')
                .count()
                + 1
        }),
    }
}

/// The byte offset of a diagnostic's first labelled span.
fn first_offset(diagnostic: &dyn Diagnostic) -> Option<usize> {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
}

/// Lowercase hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
