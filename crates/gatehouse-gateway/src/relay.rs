//! Relaying one routed request to its upstream and everything that flows back while it runs:
//! progress and log notifications go to the request's stream, requests from the server
//! (sampling, elicitation, roots) go to the client that caused them and their answers back.
//!
//! Cross-era bridging: a 2026-07-28 server answers with `input_required` instead of sending
//! requests; for a legacy client the gateway asks the client itself, then retries with the
//! answers (`inputResponses`) and the server's `requestState` echoed unchanged.

use std::time::Duration;

use gatehouse_mcp::hub::Route;
use gatehouse_mcp::jsonrpc::{self, code};
use gatehouse_mcp::upstream::{CallOptions, Owner, UpstreamEvent};
use serde_json::{Map, Value, json};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::Gateway;
use crate::audit::CallFacts;
use crate::dispatch::Call;
use crate::envelope::Caller;
use crate::error::GatewayError;
use crate::parked::{Flight, HANDLE_PREFIX, INPUT_KEY, Parked};
use crate::policy::Permit;
use gatehouse_audit::{ErrorSource, Outcome, TargetKind};

/// Most `input_required` rounds bridged for one request.
const MAX_INPUT_ROUNDS: usize = 10;
/// How long a client may take to answer a request the gateway sent it.
const CLIENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

impl Gateway {
    /// Sends `message` to the route's upstream and returns the result object. An error the
    /// upstream answered with becomes a JSON-RPC error for the client with the same code.
    pub(crate) async fn relay(
        &self,
        route: &Route,
        message: Value,
        call: &Call,
        headers: &[(String, String)],
        permit: &Permit,
    ) -> Result<Value, GatewayError> {
        // Intent before effect: nothing is forwarded until its receipt is durable.
        let credential = route
            .upstream
            .credentials_for(&call.requester())
            .await
            .into_iter()
            .next();
        let facts = CallFacts {
            server: route.upstream.name().as_str(),
            target: target_of(call),
            decision: permit.decision(),
            arguments: call.message.pointer("/params/arguments"),
            credential,
        };
        let record = self.audit.begin(&call.trail, facts).await?;
        let result = self
            .relay_rounds(route, message, call, headers)
            .await
            .map_err(|error| offer_sign_in(error, call));
        let (outcome, source) = match &result {
            Ok(result) if result.get("isError") == Some(&Value::Bool(true)) => {
                (Outcome::ToolError, Some(ErrorSource::Upstream))
            }
            Ok(_) => (Outcome::Ok, None),
            Err(GatewayError::Upstream(gatehouse_mcp::upstream::UpstreamError::Timeout {
                ..
            })) => (Outcome::Timeout, Some(ErrorSource::Upstream)),
            // Nothing was sent: the gateway holds no credential for this caller.
            Err(
                GatewayError::Upstream(gatehouse_mcp::upstream::UpstreamError::MissingCredential {
                    ..
                })
                | GatewayError::SignInRequired { .. },
            ) => (Outcome::UpstreamError, Some(ErrorSource::Gateway)),
            Err(GatewayError::Upstream(_) | GatewayError::Relayed(_)) => {
                (Outcome::UpstreamError, Some(ErrorSource::Upstream))
            }
            Err(GatewayError::InvalidRequest(text)) if text.contains("cancelled") => {
                (Outcome::Cancelled, Some(ErrorSource::Client))
            }
            Err(_) => (Outcome::UpstreamError, Some(ErrorSource::Gateway)),
        };
        self.audit
            .complete(&call.trail, record, outcome, source)
            .await;
        result
    }

    /// Relays a request, bridging `input_required` rounds for legacy clients.
    async fn relay_rounds(
        &self,
        route: &Route,
        message: Value,
        call: &Call,
        headers: &[(String, String)],
    ) -> Result<Value, GatewayError> {
        let mut message = message;
        for _round in 0..=MAX_INPUT_ROUNDS {
            let response = self
                .relay_once(route, message.clone(), call, headers.to_vec())
                .await?;
            let result = match response.get("result") {
                Some(result) => result.clone(),
                None => return Err(upstream_error(response)),
            };
            let input_required =
                result.get("resultType").and_then(Value::as_str) == Some("input_required");
            if !input_required || call.caller.is_modern() {
                return Ok(fit_result_to_client(result, &call.caller));
            }
            // A legacy client cannot read `input_required`: ask it each question directly,
            // then retry the original request with the answers.
            let answers = self.answer_input_requests(&result, call).await?;
            let params = message
                .get_mut("params")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| {
                    GatewayError::InvalidParams("params must be an object".to_owned())
                })?;
            params.insert("inputResponses".to_owned(), Value::Object(answers));
            match result.get("requestState") {
                Some(state) => params.insert("requestState".to_owned(), state.clone()),
                None => params.remove("requestState"),
            };
        }
        Err(GatewayError::CannotBridge(format!(
            "the server asked for input more than {MAX_INPUT_ROUNDS} times; the request was abandoned"
        )))
    }

    async fn relay_once(
        &self,
        route: &Route,
        message: Value,
        call: &Call,
        headers: Vec<(String, String)>,
    ) -> Result<Value, GatewayError> {
        let flight = match self.resume_parked(call)? {
            Some(flight) => flight,
            None => self.start_flight(route, message, call, headers),
        };
        self.drive(flight, call).await
    }

    fn start_flight(
        &self,
        route: &Route,
        message: Value,
        call: &Call,
        headers: Vec<(String, String)>,
    ) -> Flight {
        let (events, incoming) = mpsc::channel(64);
        // Requests a server sends without naming their call are routed only when every call
        // waiting on that server has the same owner: a legacy session, or this one request.
        let owner: Owner = match &call.caller {
            Caller::Legacy(session) => session.id.as_str().into(),
            _ => format!("request-{}", uuid::Uuid::new_v4()).into(),
        };
        let options = CallOptions {
            events: Some(events),
            owner: Some(owner),
            client_capabilities: call.caller.capabilities(),
            log_level: call.caller.log_level(),
            timeout: self.settings.call_timeout,
            headers,
            requester: call.requester(),
        };
        let upstream = Arc::clone(&route.upstream);
        let task = tokio::spawn(async move { upstream.call(message, options).await });
        Flight {
            task,
            incoming,
            incoming_closed: false,
        }
    }

    /// Waits for the upstream's answer, passing on what it sends meanwhile. A request the
    /// upstream sends to a 2026-07-28 client parks the call and answers `input_required`.
    async fn drive(&self, mut flight: Flight, call: &Call) -> Result<Value, GatewayError> {
        enum Step {
            Answer(
                Result<
                    Result<Value, gatehouse_mcp::upstream::UpstreamError>,
                    tokio::task::JoinError,
                >,
            ),
            Event(Option<UpstreamEvent>),
            Cancelled,
        }
        loop {
            // Events first: a server sends its notifications before the response they precede,
            // and they must reach the client before the response does.
            let step = tokio::select! {
                biased;
                event = flight.incoming.recv(), if !flight.incoming_closed => Step::Event(event),
                answer = &mut flight.task => Step::Answer(answer),
                () = call.cancel.cancelled() => Step::Cancelled,
            };
            match step {
                Step::Answer(Ok(answer)) => {
                    while let Ok(event) = flight.incoming.try_recv() {
                        self.forward_event(event, call).await;
                    }
                    return answer.map_err(GatewayError::from);
                }
                Step::Answer(Err(_)) => {
                    return Err(GatewayError::CannotBridge(
                        "the upstream call was abandoned".to_owned(),
                    ));
                }
                Step::Event(None) => flight.incoming_closed = true,
                Step::Event(Some(UpstreamEvent::Request { message, reply }))
                    if call.caller.is_modern() =>
                {
                    match missing_capability(&message, &call.caller) {
                        Some(refusal) => {
                            let _ = reply.send(refusal);
                        }
                        None => return Ok(self.park(flight, message, reply, call)),
                    }
                }
                Step::Event(Some(event)) => self.forward_event(event, call).await,
                Step::Cancelled => {
                    return Err(GatewayError::InvalidRequest(
                        "the request was cancelled".to_owned(),
                    ));
                }
            }
        }
    }

    /// Holds the call and tells the client what the server asked, as an `input_required`
    /// response.
    fn park(
        &self,
        flight: Flight,
        message: Value,
        reply: oneshot::Sender<Value>,
        call: &Call,
    ) -> Value {
        let upstream_request_id = message.get("id").cloned().unwrap_or(Value::Null);
        let mut input_request =
            json!({"method": message.get("method").cloned().unwrap_or(Value::Null)});
        if let Some(params) = message.get("params") {
            input_request["params"] = params.clone();
        }
        let handle = self.parked.park(Parked::new(
            flight,
            reply,
            upstream_request_id,
            call_origin(call),
        ));
        // Shaped as a response message, like everything `drive` returns.
        json!({"result": {
            "resultType": "input_required",
            "inputRequests": {INPUT_KEY: input_request},
            "requestState": handle,
        }})
    }

    /// Resumes the parked call named by the retry's `requestState`, handing it the client's
    /// answer. `None` when the request resumes nothing of the gateway's.
    fn resume_parked(&self, call: &Call) -> Result<Option<Flight>, GatewayError> {
        let Some(handle) = call
            .message
            .pointer("/params/requestState")
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        if !handle.starts_with(HANDLE_PREFIX) {
            return Ok(None);
        }
        let expired = || {
            GatewayError::InvalidParams(
                "requestState is unknown or expired; call again without it".to_owned(),
            )
        };
        let parked = self.parked.take(handle).ok_or_else(expired)?;
        if parked.origin != call_origin(call) {
            // A handle only resumes the call it came from.
            return Err(expired());
        }
        let answer = call
            .message
            .pointer(&format!("/params/inputResponses/{INPUT_KEY}"))
            .cloned();
        let response = match answer {
            Some(answer) => {
                json!({"jsonrpc": "2.0", "id": parked.upstream_request_id, "result": answer})
            }
            None => jsonrpc::error(
                parked.upstream_request_id,
                code::INTERNAL_ERROR,
                "the client gave no answer",
                None,
            ),
        };
        let _ = parked.reply.send(response);
        Ok(Some(parked.flight))
    }

    async fn forward_event(&self, event: UpstreamEvent, call: &Call) {
        match event {
            UpstreamEvent::Notification(message) => {
                if jsonrpc::method(&message) == Some("notifications/message")
                    && !wants_log(&message, &call.caller)
                {
                    return;
                }
                if let Some(stream) = &call.stream {
                    let _ = stream.send(message).await;
                }
            }
            UpstreamEvent::Request { message, reply } => {
                let pending = self.ask_client(message, call);
                tokio::spawn(async move {
                    let _ = reply.send(pending.await);
                });
            }
        }
    }

    /// Sends a request to a legacy client on the request's stream (or the session's GET
    /// stream) and resolves to the client's response message.
    fn ask_client(
        &self,
        mut message: Value,
        call: &Call,
    ) -> impl Future<Output = Value> + Send + 'static {
        let upstream_id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = jsonrpc::method(&message).unwrap_or_default().to_owned();
        let refusal =
            |text: String| jsonrpc::error(upstream_id.clone(), code::INTERNAL_ERROR, &text, None);
        let session = call.caller.session().cloned();
        let declared = call.caller.capabilities();
        let stream = call.stream.clone();
        let ready: Result<(oneshot::Receiver<Value>, mpsc::Sender<Value>), Value> = (|| {
            let session = session.ok_or_else(|| refusal("no client session to ask".to_owned()))?;
            let capability = match method.as_str() {
                "sampling/createMessage" => Some("sampling"),
                "elicitation/create" => Some("elicitation"),
                "roots/list" => Some("roots"),
                _ => None,
            };
            if let Some(capability) = capability
                && declared.get(capability).is_none()
            {
                return Err(refusal(format!(
                    "the client did not declare the {capability} capability"
                )));
            }
            let channel = stream.or_else(|| session.get_stream()).ok_or_else(|| {
                refusal(format!("the client has no open stream to receive {method}"))
            })?;
            let answer = session.register_client_request(&mut message);
            Ok((answer, channel))
        })();
        async move {
            let (answer, channel) = match ready {
                Ok(ready) => ready,
                Err(refused) => return refused,
            };
            if channel.send(message).await.is_err() {
                return jsonrpc::error(
                    upstream_id,
                    code::INTERNAL_ERROR,
                    "the client stream closed",
                    None,
                );
            }
            match tokio::time::timeout(CLIENT_ANSWER_TIMEOUT, answer).await {
                Ok(Ok(response)) => response,
                _ => jsonrpc::error(
                    upstream_id,
                    code::INTERNAL_ERROR,
                    "the client did not answer",
                    None,
                ),
            }
        }
    }

    async fn answer_input_requests(
        &self,
        result: &Value,
        call: &Call,
    ) -> Result<Map<String, Value>, GatewayError> {
        let requests = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                GatewayError::CannotBridge(
                    "the server asked for input without inputRequests".to_owned(),
                )
            })?;
        let mut answers = Map::new();
        for (key, request) in requests {
            let method = request
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let message = jsonrpc::request(json!(0), method, request.get("params").cloned());
            let response = self.ask_client(message, call).await;
            match response.get("result") {
                Some(answer) => {
                    answers.insert(key.clone(), answer.clone());
                }
                None => {
                    let reason = response
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("no answer");
                    return Err(GatewayError::CannotBridge(format!(
                        "the client could not answer {method}: {reason}"
                    )));
                }
            }
        }
        Ok(answers)
    }
}

/// The client's era decides the result's envelope: legacy clients never see `resultType`.
fn fit_result_to_client(mut result: Value, caller: &Caller) -> Value {
    if !caller.is_modern()
        && let Some(object) = result.as_object_mut()
    {
        object.remove("resultType");
        if let Some(meta) = object.get_mut("_meta").and_then(Value::as_object_mut) {
            meta.remove(gatehouse_mcp::era::META_SERVER_INFO);
            if meta.is_empty() {
                object.remove("_meta");
            }
        }
    }
    result
}

/// An error the upstream answered with, passed on with its code, message and data.
fn upstream_error(response: Value) -> GatewayError {
    let error = response.get("error").cloned().unwrap_or_else(|| json!({}));
    GatewayError::Relayed(error)
}

/// Whether a log message passes the client's level.
fn wants_log(message: &Value, caller: &Caller) -> bool {
    let Some(wanted) = caller.log_level() else {
        // 2026-07-28: no log messages without an opt-in. Legacy: everything until setLevel.
        return !caller.is_modern();
    };
    let level = message
        .pointer("/params/level")
        .and_then(Value::as_str)
        .unwrap_or("info");
    let rank = |name: &str| LOG_LEVELS.iter().position(|l| *l == name).unwrap_or(0);
    rank(level) >= rank(&wanted)
}

/// What identifies the call a parked handle belongs to: the method and the target name.
fn call_origin(call: &Call) -> (String, String) {
    let target = ["name", "uri"]
        .iter()
        .find_map(|key| call.message.get("params")?.get(*key)?.as_str())
        .unwrap_or_default();
    (call.method().to_owned(), target.to_owned())
}

/// The error to answer an upstream request with when the client did not declare the
/// capability it needs; `None` when the client can answer.
fn missing_capability(message: &Value, caller: &Caller) -> Option<Value> {
    let method = jsonrpc::method(message).unwrap_or_default();
    let capability = match method {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => return None,
    };
    if caller.capabilities().get(capability).is_some() {
        return None;
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    Some(jsonrpc::error(
        id,
        code::INTERNAL_ERROR,
        &format!("the client did not declare the {capability} capability"),
        None,
    ))
}

/// What a call targets, for its receipt.
pub(crate) fn target_of(call: &Call) -> Option<(TargetKind, String)> {
    let params = call.message.get("params")?;
    match call.method() {
        "tools/call" => Some((TargetKind::Tool, params.get("name")?.as_str()?.to_owned())),
        "prompts/get" => Some((TargetKind::Prompt, params.get("name")?.as_str()?.to_owned())),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some((
            TargetKind::Resource,
            params.get("uri")?.as_str()?.to_owned(),
        )),
        _ => None,
    }
}

/// A person who must sign in to an upstream first is sent there by a URL elicitation when
/// their client takes them; others read the address in the error message.
fn offer_sign_in(error: GatewayError, call: &Call) -> GatewayError {
    match error {
        GatewayError::Upstream(gatehouse_mcp::upstream::UpstreamError::MissingCredential {
            server,
            reason,
            sign_in: Some(url),
        }) if call
            .caller
            .capabilities()
            .pointer("/elicitation/url")
            .is_some() =>
        {
            GatewayError::SignInRequired {
                message: format!("server `{server}` needs a credential: {reason}"),
                url,
            }
        }
        other => other,
    }
}
