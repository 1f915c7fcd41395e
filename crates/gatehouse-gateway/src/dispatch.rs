//! The per-request pipeline, read top to bottom: the method decides the step; names, URIs and
//! task ids are routed to exactly one upstream; the request is relayed with only the routed
//! member rewritten; the result is mapped back to client-facing names and fitted to the
//! client's era.

use std::sync::Arc;

use gatehouse_mcp::catalog::ListKind;
use gatehouse_mcp::era::{self, LATEST_LEGACY_VERSION, MODERN_VERSION};
use gatehouse_mcp::hub::Route;
use gatehouse_mcp::naming;
use gatehouse_mcp::{headers, jsonrpc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::envelope::Caller;
use crate::error::GatewayError;
use crate::pages;
use crate::policy;

/// One client request on its way through the gateway.
pub struct Call {
    /// The client's request id.
    pub id: Value,
    /// The request as received.
    pub message: Value,
    /// Who sent it.
    pub caller: Caller,
    /// The SSE stream of this request's response, when the client accepted one.
    pub stream: Option<mpsc::Sender<Value>>,
    /// Cancelled when the client cancels the request.
    pub cancel: CancellationToken,
    /// Who sent it.
    pub who: crate::identity::Who,
    /// Its receipts.
    pub trail: crate::audit::Trail,
}

impl Call {
    /// Who the request is made for, which picks the process of an isolated server.
    pub(crate) fn requester(&self) -> gatehouse_mcp::upstream::Requester {
        self.caller.requester(&self.who)
    }
}

impl Call {
    pub(crate) fn method(&self) -> &str {
        jsonrpc::method(&self.message).unwrap_or_default()
    }

    fn string_param(&self, key: &str) -> Result<String, GatewayError> {
        match self.message.pointer(&format!("/params/{key}")) {
            Some(Value::String(value)) => Ok(value.clone()),
            Some(_) => Err(GatewayError::InvalidParams(format!(
                "params.{key} must be a string"
            ))),
            None => Err(GatewayError::InvalidParams(format!(
                "params.{key} is required"
            ))),
        }
    }
}

impl Gateway {
    /// Answers one request; the returned message is the response (result or error).
    pub async fn handle_request(&self, call: &Call) -> Value {
        let mut outcome = self.answer(call).await;
        if !call.trail.relayed() {
            // Answered by the gateway itself (or refused before any upstream): one decision
            // receipt. Under a failing fail-closed audit the answer becomes a refusal.
            let verdict = match &outcome {
                Ok(_) => gatehouse_audit::Verdict::Allow,
                Err(GatewayError::PolicyDenied { .. }) => gatehouse_audit::Verdict::Deny,
                Err(_) => gatehouse_audit::Verdict::Error,
            };
            let error = outcome.as_ref().err();
            let target = crate::relay::target_of(call);
            if let Err(refusal) = self
                .audit
                .record_decision_about(&call.trail, verdict, error, target)
                .await
            {
                outcome = Err(refusal);
            }
        }
        let mut response = match outcome {
            Ok(result) => jsonrpc::result(call.id.clone(), result),
            Err(error) => {
                tracing::debug!(method = call.method(), %error, "request failed");
                error.to_message(call.id.clone())
            }
        };
        if call.caller.is_modern()
            && let Some(result) = response.get_mut("result").and_then(Value::as_object_mut)
        {
            result
                .entry("resultType")
                .or_insert_with(|| json!("complete"));
            let meta = result.entry("_meta").or_insert_with(|| json!({}));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(era::META_SERVER_INFO.to_owned(), self.server_info.clone());
            }
        }
        response
    }

    async fn answer(&self, call: &Call) -> Result<Value, GatewayError> {
        let modern = call.caller.is_modern();
        match call.method() {
            "initialize" => Ok(self.initialize(call)),
            "server/discover" if modern => Ok(self.discover()),
            "ping" if !modern => Ok(json!({})),
            "logging/setLevel" if !modern => {
                let level = call.string_param("level")?;
                if let Some(session) = call.caller.session() {
                    session.set_log_level(&level);
                }
                Ok(json!({}))
            }
            "tools/list" => self.list(call, ListKind::Tools).await,
            "prompts/list" => self.list(call, ListKind::Prompts).await,
            "resources/list" => self.list(call, ListKind::Resources).await,
            "resources/templates/list" => self.list(call, ListKind::ResourceTemplates).await,
            "tools/call" => self.call_named(call, ListKind::Tools).await,
            "prompts/get" => self.call_named(call, ListKind::Prompts).await,
            "resources/read" => self.read_resource(call).await,
            "resources/subscribe" | "resources/unsubscribe" if !modern => {
                self.subscribe(call).await
            }
            "completion/complete" => self.complete(call).await,
            "tasks/get" | "tasks/result" | "tasks/cancel" | "tasks/update" => {
                self.task_call(call).await
            }
            "subscriptions/listen" if modern => Err(GatewayError::InvalidRequest(
                "subscriptions/listen needs a response stream; send Accept: text/event-stream"
                    .to_owned(),
            )),
            method => self.unknown_method(call, method).await,
        }
    }

    fn initialize(&self, call: &Call) -> Value {
        let requested = call
            .message
            .pointer("/params/protocolVersion")
            .and_then(Value::as_str);
        let version = match requested {
            Some(version) if era::is_legacy_version(version) => version,
            _ => LATEST_LEGACY_VERSION,
        };
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": self.capabilities(false),
            "serverInfo": self.server_info,
        });
        if let Some(instructions) = &self.instructions {
            result["instructions"] = json!(instructions);
        }
        result
    }

    fn discover(&self) -> Value {
        let mut result = json!({
            "supportedVersions": [MODERN_VERSION],
            "capabilities": self.capabilities(true),
            "serverInfo": self.server_info,
            "ttlMs": 0,
            "cacheScope": "private",
        });
        if let Some(instructions) = &self.instructions {
            result["instructions"] = json!(instructions);
        }
        result
    }

    /// What the gateway offers: the union of what it can relay. 2026-07-28 clients are also
    /// offered the tasks extension, whose task ids the gateway maps per upstream.
    pub(crate) fn capabilities(&self, modern: bool) -> Value {
        let mut capabilities = json!({
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"subscribe": !modern, "listChanged": true},
            "completions": {},
            "logging": {},
        });
        if modern {
            capabilities["extensions"] = json!({ rmcp::model::TASKS_EXTENSION_ID: {} });
        }
        capabilities
    }

    async fn list(&self, call: &Call, kind: ListKind) -> Result<Value, GatewayError> {
        let cursor = match call.message.pointer("/params/cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor.as_str()),
            Some(_) => {
                return Err(GatewayError::InvalidParams(
                    "params.cursor must be a string".to_owned(),
                ));
            }
        };
        let offset = pages::decode_cursor(kind, cursor)?;
        let merged = self.hub.list(kind, &call.requester()).await;
        // The same evaluator that gates calls decides what this caller may see.
        let described: Vec<policy::Item> = merged
            .items
            .iter()
            .map(|merged_item| {
                let name = merged_item
                    .item
                    .get(kind.key())
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                policy::describe(
                    merged_item.upstream.config(),
                    kind,
                    name,
                    Some(&merged_item.item),
                )
            })
            .collect();
        let shown = self.visible(&call.who, &described);
        let visible: Vec<Value> = merged
            .items
            .into_iter()
            .zip(shown)
            .filter_map(|(merged_item, shown)| shown.then_some(merged_item.item))
            .collect();
        let (page, next) = pages::page(&visible, offset, self.settings.page_size);
        let mut result = json!({ kind.field(): page });
        if let Some(next) = next {
            result["nextCursor"] = json!(pages::encode_cursor(kind, next));
        }
        if call.caller.is_modern() {
            result["ttlMs"] = json!(merged.ttl_ms.unwrap_or(0));
            result["cacheScope"] = json!("private");
        }
        if !merged.unavailable.is_empty() {
            let unavailable: Vec<Value> = merged
                .unavailable
                .iter()
                .map(|(server, reason)| json!({"server": server.as_str(), "reason": reason}))
                .collect();
            result["_meta"] = json!({"io.gatehouse/unavailable": unavailable});
        }
        Ok(result)
    }

    async fn call_named(&self, call: &Call, kind: ListKind) -> Result<Value, GatewayError> {
        let name = call.string_param("name")?;
        if call
            .message
            .pointer("/params/arguments")
            .is_some_and(|arguments| !arguments.is_object())
        {
            return Err(GatewayError::InvalidParams(
                "params.arguments must be an object".to_owned(),
            ));
        }
        if !gatehouse_policy::is_canonical_name(&name) {
            return Err(GatewayError::InvalidParams(format!(
                "name `{}` holds characters names may not contain (control, invisible or look-alike characters)",
                name.escape_default()
            )));
        }
        let route = self.hub.route_name(kind, &name, &call.requester()).await?;
        let definition = match kind {
            ListKind::Tools => self.hub.tool_definition(&route, &call.requester()).await,
            _ => None,
        };
        let item = policy::describe(route.upstream.config(), kind, &name, definition.as_ref());
        let permit = self.authorize(&call.who, &item, arguments(call))?;
        let mut message = call.message.clone();
        message["params"]["name"] = json!(route.upstream_name);
        let headers = match kind {
            ListKind::Tools => self.param_headers(&route, call).await?,
            _ => Vec::new(),
        };
        let result = self.relay(&route, message, call, &headers, &permit).await?;
        Ok(expose_result(&route, result))
    }

    /// The `Mcp-Param-*` headers to send upstream for a tool call.
    async fn param_headers(
        &self,
        route: &Route,
        call: &Call,
    ) -> Result<Vec<(String, String)>, GatewayError> {
        let Some(tool) = self.hub.tool_definition(route, &call.requester()).await else {
            return Ok(Vec::new());
        };
        let Some(schema) = tool.get("inputSchema") else {
            return Ok(Vec::new());
        };
        Ok(headers::param_headers_for_call(
            schema,
            call.message.pointer("/params/arguments"),
        ))
    }

    /// Checks that can turn a request away before its response starts streaming (and so can
    /// still choose the HTTP status): a 2026-07-28 tool call's `Mcp-Param-*` headers must
    /// match its arguments.
    pub(crate) async fn preflight(
        &self,
        message: &Value,
        caller: &Caller,
        who: &crate::identity::Who,
    ) -> Result<(), GatewayError> {
        let Caller::Modern(modern) = caller else {
            return Ok(());
        };
        if jsonrpc::method(message) != Some("tools/call") {
            return Ok(());
        }
        let Some(name) = message.pointer("/params/name").and_then(Value::as_str) else {
            return Ok(());
        };
        let Ok(route) = self
            .hub
            .route_name(ListKind::Tools, name, &caller.requester(who))
            .await
        else {
            return Ok(());
        };
        let Some(tool) = self
            .hub
            .tool_definition(&route, &caller.requester(who))
            .await
        else {
            return Ok(());
        };
        let Some(schema) = tool.get("inputSchema") else {
            return Ok(());
        };
        headers::check_param_headers(schema, message.pointer("/params/arguments"), |header| {
            modern.param_header(header)
        })
        .map_err(GatewayError::HeaderMismatch)
    }

    async fn read_resource(&self, call: &Call) -> Result<Value, GatewayError> {
        let uri = call.string_param("uri")?;
        let route = self.hub.route_uri(&uri, &call.requester()).await?;
        let item = policy::describe(route.upstream.config(), ListKind::Resources, &uri, None);
        let permit = self.authorize(&call.who, &item, None)?;
        let mut message = call.message.clone();
        message["params"]["uri"] = json!(route.upstream_name);
        let mut result = self.relay(&route, message, call, &[], &permit).await?;
        if let Some(contents) = result.get_mut("contents").and_then(Value::as_array_mut) {
            for content in contents {
                expose_uri_member(&route, content, "uri");
            }
        }
        Ok(result)
    }

    async fn subscribe(&self, call: &Call) -> Result<Value, GatewayError> {
        let uri = call.string_param("uri")?;
        let route = self.hub.route_uri(&uri, &call.requester()).await?;
        let item = policy::describe(route.upstream.config(), ListKind::Resources, &uri, None);
        let permit = self.authorize(&call.who, &item, None)?;
        let subscribing = call.method() == "resources/subscribe";
        if let Some(session) = call.caller.session() {
            if subscribing {
                session.subscribe(&uri);
            } else {
                session.unsubscribe(&uri);
            }
        }
        let info = route.upstream.server_info(&call.requester()).await?;
        if info.era.is_modern() {
            // A 2026-07-28 server has no resources/subscribe; its updates arrive through the
            // gateway's own listen stream, and the session filter above decides who hears them.
            return Ok(json!({}));
        }
        let mut message = call.message.clone();
        message["params"]["uri"] = json!(route.upstream_name);
        self.relay(&route, message, call, &[], &permit).await
    }

    async fn complete(&self, call: &Call) -> Result<Value, GatewayError> {
        let reference = call
            .message
            .pointer("/params/ref")
            .and_then(Value::as_object)
            .ok_or_else(|| GatewayError::InvalidParams("params.ref is required".to_owned()))?;
        let (route, key, kind) = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (
                    self.hub
                        .route_name(ListKind::Prompts, name, &call.requester())
                        .await?,
                    "name",
                    ListKind::Prompts,
                )
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (
                    self.hub.route_uri(uri, &call.requester()).await?,
                    "uri",
                    ListKind::Resources,
                )
            }
            _ => {
                return Err(GatewayError::InvalidParams(
                    "params.ref.type must be ref/prompt or ref/resource".to_owned(),
                ));
            }
        };
        // Completing an argument of a prompt or resource needs the right to use it.
        let exposed = reference
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let item = policy::describe(route.upstream.config(), kind, exposed, None);
        let permit = self.authorize(&call.who, &item, None)?;
        let mut message = call.message.clone();
        message["params"]["ref"][key] = json!(route.upstream_name);
        self.relay(&route, message, call, &[], &permit).await
    }

    async fn task_call(&self, call: &Call) -> Result<Value, GatewayError> {
        if let Caller::Modern(modern) = &call.caller {
            let negotiated = modern
                .capabilities
                .pointer("/extensions")
                .and_then(|e| e.get(rmcp::model::TASKS_EXTENSION_ID));
            if negotiated.is_none() {
                return Err(GatewayError::MissingCapability {
                    message: format!(
                        "{} needs the {} extension in the client capabilities",
                        call.method(),
                        rmcp::model::TASKS_EXTENSION_ID
                    ),
                    required: json!({"extensions": { rmcp::model::TASKS_EXTENSION_ID: {} }}),
                });
            }
        }
        let task_id = call.string_param("taskId")?;
        let route = self.hub.route_task(&task_id)?;
        let permit = self.continue_task(&call.who, &task_id)?;
        let mut message = call.message.clone();
        message["params"]["taskId"] = json!(route.upstream_name);
        let result = self.relay(&route, message, call, &[], &permit).await?;
        Ok(expose_result(&route, result))
    }

    async fn unknown_method(&self, call: &Call, method: &str) -> Result<Value, GatewayError> {
        // A method the gateway does not know can only be relayed when there is exactly one
        // server it could be meant for.
        match self.hub.upstreams() {
            // Under an enforced policy, only methods the gateway can govern are relayed.
            [only] if !method.is_empty() => {
                let permit = self
                    .open_permit()
                    .ok_or_else(|| GatewayError::MethodNotFound(method.to_owned()))?;
                let route = Route {
                    upstream: Arc::clone(only),
                    upstream_name: String::new(),
                };
                self.relay(&route, call.message.clone(), call, &[], &permit)
                    .await
            }
            _ => Err(GatewayError::MethodNotFound(method.to_owned())),
        }
    }
}

/// Maps a result's upstream identifiers (task ids, resource links) to client-facing ones.
fn expose_result(route: &Route, mut result: Value) -> Value {
    let server = route.upstream.name().as_str();
    if let Some(task_id) = result.pointer_mut("/task/taskId")
        && let Some(id) = task_id.as_str()
    {
        *task_id = json!(naming::expose_task_id(server, id));
    }
    if let Some(task_id) = result.get_mut("taskId")
        && let Some(id) = task_id.as_str()
    {
        *task_id = json!(naming::expose_task_id(server, id));
    }
    for list in ["content", "messages"] {
        if let Some(items) = result.get_mut(list).and_then(Value::as_array_mut) {
            for item in items {
                // Prompt messages wrap their content one level deeper than tool results.
                let item = if item.get("content").is_some_and(Value::is_object) {
                    &mut item["content"]
                } else {
                    item
                };
                match item.get("type").and_then(Value::as_str) {
                    Some("resource_link") => expose_uri_member(route, item, "uri"),
                    Some("resource") => {
                        if let Some(resource) = item.get_mut("resource") {
                            expose_uri_member(route, resource, "uri");
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    result
}

fn expose_uri_member(route: &Route, object: &mut Value, key: &str) {
    if let Some(uri) = object.get(key).and_then(Value::as_str) {
        let exposed = route.upstream.namespace().expose_uri(uri);
        object[key] = json!(exposed);
    }
}

/// The call's `params.arguments`, when it is an object.
fn arguments(call: &Call) -> Option<&serde_json::Map<String, Value>> {
    call.message
        .pointer("/params/arguments")
        .and_then(Value::as_object)
}
