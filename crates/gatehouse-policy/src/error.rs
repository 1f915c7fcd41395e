//! Why a policy set was refused, with every problem and where it is.

use std::fmt;

/// A policy set that was refused at load; the caller keeps the set it already has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy refused: {}", join_problems(.problems))]
pub struct PolicyError {
    /// Every problem found, in grant order, then file order.
    pub problems: Vec<Problem>,
}

/// One problem in a grant or policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub location: Location,
    /// What is wrong, lowercase, saying what to change where possible.
    pub message: String,
}

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The `number`-th grant (1-based), with its `id` when it has one.
    Grant {
        /// 1-based position among the grants.
        number: usize,
        /// The grant's `id`, if it was given one.
        id: Option<String>,
    },
    /// A policy file, at a 1-based line when one is known.
    File {
        /// The file's name as given in [`crate::PolicyFile::name`].
        name: String,
        /// 1-based line of the offending policy or expression.
        line: Option<usize>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grant {
                number,
                id: Some(id),
            } => write!(formatter, "grant {number} (`{id}`)"),
            Self::Grant { number, id: None } => write!(formatter, "grant {number}"),
            Self::File {
                name,
                line: Some(line),
            } => write!(formatter, "{name} line {line}"),
            Self::File { name, line: None } => write!(formatter, "{name}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.location, self.message)
    }
}

/// All problems on one line, separated by `; `.
fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
