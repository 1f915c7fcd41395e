//! Long-lived notification streams: the legacy session GET stream and the 2026-07-28
//! `subscriptions/listen` stream. Both turn hub events (list changes, resource updates) into
//! notifications for one client; the listen stream delivers only what the client opted in to
//! and tags each message with its subscription id.

use std::sync::Arc;

use gatehouse_mcp::catalog::ListKind;
use gatehouse_mcp::era::META_SUBSCRIPTION_ID;
use gatehouse_mcp::hub::HubEvent;
use gatehouse_mcp::jsonrpc;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::Gateway;
use crate::session::Session;

/// What a `subscriptions/listen` client opted in to.
#[derive(Debug, Default, Clone)]
pub struct ListenFilter {
    tools: bool,
    prompts: bool,
    resources: bool,
    resource_uris: Vec<String>,
}

impl ListenFilter {
    /// Reads `params.notifications`.
    pub fn from_params(params: Option<&Value>) -> Self {
        let flag = |key: &str| {
            params
                .and_then(|p| p.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        Self {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            resource_uris: params
                .and_then(|p| p.get("resourceSubscriptions"))
                .and_then(Value::as_array)
                .map(|uris| {
                    uris.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The accepted filter, as acknowledged to the client.
    pub fn to_value(&self) -> Value {
        let mut accepted = serde_json::Map::new();
        if self.tools {
            accepted.insert("toolsListChanged".into(), json!(true));
        }
        if self.prompts {
            accepted.insert("promptsListChanged".into(), json!(true));
        }
        if self.resources {
            accepted.insert("resourcesListChanged".into(), json!(true));
        }
        if !self.resource_uris.is_empty() {
            accepted.insert("resourceSubscriptions".into(), json!(self.resource_uris));
        }
        Value::Object(accepted)
    }

    fn wants(&self, event: &HubEvent) -> bool {
        match event {
            HubEvent::ListChanged(ListKind::Tools) => self.tools,
            HubEvent::ListChanged(ListKind::Prompts) => self.prompts,
            HubEvent::ListChanged(ListKind::Resources | ListKind::ResourceTemplates) => {
                self.resources
            }
            HubEvent::ResourceUpdated(uri) => self.resource_uris.iter().any(|u| u == uri),
        }
    }
}

/// The notification a client receives for a hub event.
fn notification_for(event: &HubEvent) -> Value {
    match event {
        HubEvent::ListChanged(kind) => jsonrpc::notification(kind.list_changed_method(), json!({})),
        HubEvent::ResourceUpdated(uri) => {
            jsonrpc::notification("notifications/resources/updated", json!({"uri": uri}))
        }
    }
}

impl Gateway {
    /// Feeds a `subscriptions/listen` stream until the client goes away or the gateway stops.
    pub(crate) async fn run_listen(
        self: Arc<Self>,
        request_id: Value,
        filter: ListenFilter,
        stream: mpsc::Sender<Value>,
        revoked: tokio_util::sync::CancellationToken,
    ) {
        // However this stream ends, its registration is then cleared.
        let _registration = revoked.clone().drop_guard();
        let mut events = self.hub.events();
        let tag = |mut message: Value| {
            if let Some(meta) = jsonrpc::meta_mut(&mut message) {
                meta.insert(META_SUBSCRIPTION_ID.to_owned(), request_id.clone());
            }
            message
        };
        let acknowledged = jsonrpc::notification(
            "notifications/subscriptions/acknowledged",
            json!({"notifications": filter.to_value()}),
        );
        if stream.send(tag(acknowledged)).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = stream.closed() => return,
                () = self.closing.cancelled() => return,
                () = revoked.cancelled() => return,
            };
            match event {
                Ok(event) if filter.wants(&event) => {
                    if stream.send(tag(notification_for(&event))).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Feeds a legacy session's GET stream: list changes, updates of subscribed resources, and
    /// requests to the client that have no request stream to travel on.
    pub(crate) async fn run_session_stream(
        self: Arc<Self>,
        session: Arc<Session>,
        stream: mpsc::Sender<Value>,
    ) {
        let mut events = self.hub.events();
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = stream.closed() => return,
                () = session.ended.cancelled() => return,
                () = self.closing.cancelled() => return,
            };
            let forward = match &event {
                Ok(HubEvent::ResourceUpdated(uri)) => session.is_subscribed(uri),
                Ok(HubEvent::ListChanged(_)) => true,
                Err(broadcast::error::RecvError::Lagged(_)) => false,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if let (true, Ok(event)) = (forward, event)
                && stream.send(notification_for(&event)).await.is_err()
            {
                return;
            }
        }
    }
}
