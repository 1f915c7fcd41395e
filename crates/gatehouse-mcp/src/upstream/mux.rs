//! The request table of one upstream link: gives every outgoing request an id unique on that
//! link, rewrites progress tokens so two clients can never collide, and routes each inbound
//! message to the call it belongs to. Transport-neutral: stdio and HTTP feed it alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::credentials::Scrubber;
use crate::jsonrpc::{self, Kind, code};

/// Something an upstream sent that belongs to one downstream call.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A notification for the call: progress (token restored to the client's) or a log message.
    Notification(Value),
    /// A request to the client (sampling, elicitation, roots). Answer through `reply` with the
    /// client's response message; its id is replaced before it goes upstream.
    Request {
        /// The request as the upstream sent it.
        message: Value,
        /// Where the client's response goes.
        reply: oneshot::Sender<Value>,
    },
}

/// Who a call belongs to, so that requests an upstream sends without saying which call caused
/// them can be routed only when the answer is unambiguous.
pub type Owner = Arc<str>;

struct Pending {
    respond: oneshot::Sender<Value>,
    events: Option<mpsc::Sender<UpstreamEvent>>,
    owner: Option<Owner>,
    progress_token: Option<(String, Value)>,
    /// A long-lived request of the gateway's own (a listen stream), never a client's call.
    background: bool,
}

#[derive(Default)]
struct Table {
    pending: HashMap<u64, Pending>,
    progress: HashMap<String, u64>,
}

/// The request table of one link.
pub(crate) struct Mux {
    server: String,
    next_id: AtomicU64,
    table: Mutex<Table>,
    outbound: mpsc::UnboundedSender<Value>,
    unsolicited: broadcast::Sender<Value>,
    reply_timeout: Duration,
    scrubber: Arc<Scrubber>,
}

impl Mux {
    pub(crate) fn new(
        server: &str,
        outbound: mpsc::UnboundedSender<Value>,
        unsolicited: broadcast::Sender<Value>,
        reply_timeout: Duration,
        scrubber: Arc<Scrubber>,
    ) -> Arc<Self> {
        Arc::new(Self {
            scrubber,
            server: server.to_owned(),
            next_id: AtomicU64::new(1),
            table: Mutex::new(Table::default()),
            outbound,
            unsolicited,
            reply_timeout,
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters more than losing the link, so a poisoned lock is simply taken over.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives `message` a fresh id (and a fresh progress token if it carries one) and records it.
    pub(crate) fn register(
        &self,
        message: &mut Value,
        events: Option<mpsc::Sender<UpstreamEvent>>,
        owner: Option<Owner>,
    ) -> (u64, oneshot::Receiver<Value>) {
        self.register_with(message, events, owner, false)
    }

    /// Registers a long-lived request of the gateway's own, which never takes part in
    /// attributing a server's unaddressed messages to a client call.
    pub(crate) fn register_background(
        &self,
        message: &mut Value,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> (u64, oneshot::Receiver<Value>) {
        self.register_with(message, Some(events), None, true)
    }

    fn register_with(
        &self,
        message: &mut Value,
        events: Option<mpsc::Sender<UpstreamEvent>>,
        owner: Option<Owner>,
        background: bool,
    ) -> (u64, oneshot::Receiver<Value>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        message["id"] = json!(id);
        let mut progress_token = None;
        if let Some(meta) = message
            .get_mut("params")
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut)
            && let Some(original) = meta.get("progressToken").cloned()
        {
            let ours = format!("gh-{id}");
            meta.insert("progressToken".to_owned(), json!(ours));
            progress_token = Some((ours, original));
        }
        let (respond, receiver) = oneshot::channel();
        let mut table = self.table();
        if let Some((ours, _)) = &progress_token {
            table.progress.insert(ours.clone(), id);
        }
        table.pending.insert(
            id,
            Pending {
                respond,
                events,
                owner,
                progress_token,
                background,
            },
        );
        (id, receiver)
    }

    /// Forgets a call; returns whether it was still pending.
    pub(crate) fn forget(&self, id: u64) -> bool {
        let mut table = self.table();
        match table.pending.remove(&id) {
            Some(pending) => {
                if let Some((ours, _)) = pending.progress_token {
                    table.progress.remove(&ours);
                }
                true
            }
            None => false,
        }
    }

    /// Sends a message upstream that is not a request (a response or a notification).
    pub(crate) fn send(&self, message: Value) {
        // The receiver lives as long as the link's writer; if it is gone the link is dead and
        // the calls waiting on it are failed by `fail_all`.
        let _ = self.outbound.send(message);
    }

    /// Fails every pending call, for example because the upstream exited.
    pub(crate) fn fail_all(&self, reason: &str) {
        let pending: Vec<(u64, Pending)> = {
            let mut table = self.table();
            table.progress.clear();
            table.pending.drain().collect()
        };
        for (id, call) in pending {
            let message = jsonrpc::error(json!(id), code::UPSTREAM_ERROR, reason, None);
            let _ = call.respond.send(message);
        }
    }

    /// Number of client calls waiting for an answer.
    pub(crate) fn in_flight(&self) -> usize {
        self.table()
            .pending
            .values()
            .filter(|p| !p.background)
            .count()
    }

    /// Routes one inbound message. `related` is the call whose HTTP response stream carried it.
    pub(crate) fn dispatch(self: &Arc<Self>, mut message: Value, related: Option<u64>) {
        // Whatever an upstream sends may echo a credential it was given: scrubbed here, before
        // it can reach a client, a log line or a receipt.
        self.scrubber.scrub_value(&mut message);
        match jsonrpc::kind(&message) {
            Kind::Response => {
                let Some(id) = message.get("id").and_then(Value::as_u64) else {
                    tracing::debug!(server = %self.server, "response with an id the gateway never sent");
                    return;
                };
                let pending = {
                    let mut table = self.table();
                    let pending = table.pending.remove(&id);
                    if let Some((ours, _)) =
                        pending.as_ref().and_then(|p| p.progress_token.as_ref())
                    {
                        table.progress.remove(ours);
                    }
                    pending
                };
                match pending {
                    Some(call) => {
                        let _ = call.respond.send(message);
                    }
                    None => {
                        tracing::debug!(server = %self.server, id, "response to a call no longer waiting")
                    }
                }
            }
            Kind::Notification => self.dispatch_notification(message, related),
            Kind::Request => {
                // The request keeps the upstream's id; the client's answer is re-addressed to it.
                if jsonrpc::method(&message) == Some("ping") {
                    let id = message["id"].clone();
                    self.send(jsonrpc::result(id, json!({})));
                    return;
                }
                let target = related.or_else(|| self.only_owner_call());
                let events = target.and_then(|id| self.table().pending.get(&id)?.events.clone());
                let upstream_id = message["id"].clone();
                let Some(events) = events else {
                    if jsonrpc::method(&message) == Some("roots/list") {
                        // Outside any client's call the gateway itself is the client, and it
                        // has no roots to offer.
                        self.send(jsonrpc::result(upstream_id, json!({"roots": []})));
                        return;
                    }
                    let method = jsonrpc::method(&message).unwrap_or_default().to_owned();
                    let waiting = self.in_flight();
                    tracing::warn!(server = %self.server, %method, waiting, "upstream request with no single client call to answer it");
                    self.send(jsonrpc::error(
                        upstream_id,
                        code::INTERNAL_ERROR,
                        &format!("gateway cannot route {method}: no single client call is waiting on this server"),
                        None,
                    ));
                    return;
                };
                let (reply, answer) = oneshot::channel();
                let mux = Arc::clone(self);
                tokio::spawn(async move {
                    let gone = || {
                        jsonrpc::error(
                            upstream_id.clone(),
                            code::INTERNAL_ERROR,
                            "the client went away before answering",
                            None,
                        )
                    };
                    let response = if events
                        .send(UpstreamEvent::Request { message, reply })
                        .await
                        .is_err()
                    {
                        gone()
                    } else {
                        match tokio::time::timeout(mux.reply_timeout, answer).await {
                            Ok(Ok(mut response)) => {
                                response["id"] = upstream_id.clone();
                                response
                            }
                            Ok(Err(_)) => gone(),
                            Err(_) => jsonrpc::error(
                                upstream_id.clone(),
                                code::INTERNAL_ERROR,
                                "the client did not answer in time",
                                None,
                            ),
                        }
                    };
                    mux.send(response);
                });
            }
            Kind::Invalid => {
                tracing::debug!(server = %self.server, "ignoring an invalid message from upstream");
            }
        }
    }

    fn dispatch_notification(&self, mut message: Value, related: Option<u64>) {
        let method = jsonrpc::method(&message).unwrap_or_default();
        match method {
            "notifications/progress" => {
                let token = message.pointer("/params/progressToken").cloned();
                let events = token.and_then(|token| {
                    let table = self.table();
                    let key = token.as_str()?;
                    let id = table.progress.get(key)?;
                    let pending = table.pending.get(id)?;
                    let original = pending.progress_token.as_ref()?.1.clone();
                    Some((pending.events.clone()?, original))
                });
                if let Some((events, original)) = events {
                    message["params"]["progressToken"] = original;
                    let _ = events.try_send(UpstreamEvent::Notification(message));
                }
            }
            "notifications/message" => {
                let target = related.or_else(|| self.only_owner_call());
                let events = target.and_then(|id| self.table().pending.get(&id)?.events.clone());
                match events {
                    Some(events) => {
                        let _ = events.try_send(UpstreamEvent::Notification(message));
                    }
                    None => {
                        tracing::debug!(server = %self.server, "log message from upstream with no single call to attribute it to")
                    }
                }
            }
            "notifications/cancelled" => {}
            _ => match related.and_then(|id| self.table().pending.get(&id)?.events.clone()) {
                Some(events) => {
                    let _ = events.try_send(UpstreamEvent::Notification(message));
                }
                None => {
                    let _ = self.unsolicited.send(message);
                }
            },
        }
    }

    /// The newest pending call, if every pending call belongs to the same owner.
    fn only_owner_call(&self) -> Option<u64> {
        let table = self.table();
        let calls: Vec<(&u64, &Pending)> = table
            .pending
            .iter()
            .filter(|(_, p)| !p.background)
            .collect();
        let first = calls.first()?.1.owner.as_ref()?;
        if calls.iter().any(|(_, p)| p.owner.as_ref() != Some(first)) {
            return None;
        }
        calls.iter().map(|(id, _)| **id).max()
    }
}
