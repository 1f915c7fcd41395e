//! The Cedar schema every policy is validated against, in strict mode, at load.
//!
//! Entities are built per request by [`crate::decide`] in exactly this shape; a change here
//! needs the same change there, and is a change for every raw Cedar file operators have
//! written, so it is versioned through [`SCHEMA_TEXT`] being part of the policy hash.

/// The schema in Cedar's human-readable syntax.
pub const SCHEMA_TEXT: &str = r#"// Gatehouse policy schema 1.
// A caller, and the groups and teams they belong to (from the identity provider).
entity Group;
entity Team;
entity User in [Group, Team];

// An upstream server, the parent of every item it exposes.
entity Server;

// Items the gateway exposes. `name` is the exposed name (`sentry__resolve_issue`, or a resource
// URI); `class` is `read`, `write` or `destructive` (always `read` for prompts and resources)
// and `level` the same as 1, 2 or 3; `environment` is the server's tag, when it has one.
entity Tool, Prompt, Resource, ResourceTemplate in [Server] = {
  name: String,
  server: String,
  class: String,
  level: Long,
  environment?: String,
};

// The call's top-level arguments by name: strings as sent, strings that are paths in their
// normalized form, and integers.
entity TextArguments tags String;
entity PathArguments tags String;
entity NumberArguments tags Long;

type RequestContext = {
  now: datetime,
  args: {
    text: TextArguments,
    path: PathArguments,
    number: NumberArguments,
  },
};

// `list` decides what a caller may see; the others what they may use.
action "list" appliesTo {
  principal: [User],
  resource: [Tool, Prompt, Resource, ResourceTemplate],
  context: RequestContext,
};
action "call" appliesTo { principal: [User], resource: [Tool], context: RequestContext };
action "get" appliesTo { principal: [User], resource: [Prompt], context: RequestContext };
action "read" appliesTo {
  principal: [User],
  resource: [Resource, ResourceTemplate],
  context: RequestContext,
};
"#;
