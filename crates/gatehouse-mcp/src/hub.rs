//! All configured upstreams behind one set of names: merged lists under stable, collision-free
//! names, routing of a client-facing name, URI or task id back to exactly one upstream, and the
//! catalog cache that `list_changed` notifications invalidate.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_config::{Config, ServerName};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::catalog::{FetchError, ListKind, UpstreamList, fetch_list};
use crate::credentials::CredentialSource;
use crate::naming::{self, split_name, split_uri};
use crate::upstream::{CallOptions, Requester, Upstream};

/// Something clients should hear about.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// A list changed upstream.
    ListChanged(ListKind),
    /// A resource changed; the URI is client-facing.
    ResourceUpdated(String),
}

/// A list learned from a server, to keep so that listing never needs to start the server,
/// even after the gateway restarts.
#[derive(Debug, Clone)]
pub struct LearnedList {
    /// The server's name.
    pub server: ServerName,
    /// Which list.
    pub kind: ListKind,
    /// The items as the server named them.
    pub items: Vec<Value>,
}

/// One item of a merged list and the upstream it comes from.
#[derive(Debug, Clone)]
pub struct MergedItem {
    /// The upstream.
    pub upstream: Arc<Upstream>,
    /// The item, under its client-facing name.
    pub item: Value,
}

/// A merged list.
#[derive(Debug, Clone)]
pub struct MergedList {
    /// Items with client-facing names, in server order then upstream order.
    pub items: Vec<MergedItem>,
    /// The shortest cache lifetime any upstream allowed.
    pub ttl_ms: Option<u64>,
    /// Servers whose list could not be read, with the reason.
    pub unavailable: Vec<(ServerName, String)>,
}

/// Why a name could not be routed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// No server offers it.
    #[error("no server offers `{0}`")]
    NotFound(String),
    /// More than one server offers it under that name.
    #[error("`{name}` is offered by more than one server ({servers}); give one of them a `prefix`")]
    Ambiguous {
        /// The name.
        name: String,
        /// The servers offering it.
        servers: String,
    },
}

/// An upstream and the name it knows the item by.
pub struct Route {
    /// The upstream.
    pub upstream: Arc<Upstream>,
    /// The name, URI or task id as the upstream knows it.
    pub upstream_name: String,
}

/// One cached list and the link generation it was learned from.
#[derive(Clone)]
struct CatalogEntry {
    list: Arc<UpstreamList>,
    generation: u64,
}

/// Every upstream, with their catalogs.
pub struct Hub {
    upstreams: Vec<Arc<Upstream>>,
    by_prefix: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    unprefixed: Vec<usize>,
    catalogs: Vec<Mutex<HashMap<ListKind, CatalogEntry>>>,
    events: broadcast::Sender<HubEvent>,
    learned: broadcast::Sender<LearnedList>,
    list_timeout: Duration,
}

impl Hub {
    /// Builds the hub for a configuration; starts no server.
    pub fn new(config: &Config, credentials: Arc<dyn CredentialSource>) -> Arc<Self> {
        let http_client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let call_timeout = config.gateway.call_timeout;
        let upstreams: Vec<Arc<Upstream>> = config
            .servers
            .iter()
            .map(|server| {
                Upstream::new(
                    server.clone(),
                    http_client.clone(),
                    call_timeout,
                    Arc::clone(&credentials),
                )
            })
            .collect();
        let mut by_prefix = HashMap::new();
        let mut by_name = HashMap::new();
        let mut unprefixed = Vec::new();
        for (index, upstream) in upstreams.iter().enumerate() {
            by_name.insert(upstream.name().to_string(), index);
            match upstream.namespace().prefix() {
                Some(prefix) => {
                    by_prefix.insert(prefix.to_owned(), index);
                }
                None => unprefixed.push(index),
            }
        }
        let (events, _) = broadcast::channel(256);
        let (learned, _) = broadcast::channel(256);
        let hub = Arc::new(Self {
            catalogs: upstreams
                .iter()
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            upstreams,
            by_prefix,
            by_name,
            unprefixed,
            events,
            learned,
            list_timeout: call_timeout.min(Duration::from_secs(60)),
        });
        for index in 0..hub.upstreams.len() {
            tokio::spawn(watch_notifications(Arc::downgrade(&hub), index));
        }
        tokio::spawn(stop_idle_servers(Arc::downgrade(&hub)));
        hub
    }

    /// The upstreams, in configuration order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Changes clients should hear about.
    pub fn events(&self) -> broadcast::Receiver<HubEvent> {
        self.events.subscribe()
    }

    /// Lists learned from servers, as they are learned, for persisting.
    pub fn learned_lists(&self) -> broadcast::Receiver<LearnedList> {
        self.learned.subscribe()
    }

    /// Seeds the catalog with a list persisted earlier. It stands in for the server's own
    /// list until the server has started and can be asked again.
    pub fn seed_catalog(&self, server: &str, kind: ListKind, items: Vec<Value>) {
        let Some(index) = self.by_name.get(server).copied() else {
            return;
        };
        let list = UpstreamList {
            items,
            ttl_ms: None,
            private: false,
        };
        // Generation 0: valid until the server first starts in this process.
        self.catalog(index).insert(
            kind,
            CatalogEntry {
                list: Arc::new(list),
                generation: 0,
            },
        );
    }

    /// Stops every running upstream.
    pub async fn shutdown(&self) {
        futures::future::join_all(self.upstreams.iter().map(|upstream| upstream.shutdown())).await;
    }

    /// The merged list of one kind under client-facing names. Servers that cannot be read are
    /// reported in `unavailable`, never silently left out.
    pub async fn list(&self, kind: ListKind, requester: &Requester) -> MergedList {
        let lists = futures::future::join_all(
            (0..self.upstreams.len()).map(|index| self.upstream_list(index, kind, requester)),
        )
        .await;
        let mut merged = MergedList {
            items: Vec::new(),
            ttl_ms: None,
            unavailable: Vec::new(),
        };
        let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut exposed: Vec<(usize, Value)> = Vec::new();
        for (index, list) in lists.into_iter().enumerate() {
            let upstream = &self.upstreams[index];
            match list {
                Ok(None) => {}
                Ok(Some(list)) => {
                    let failure = match upstream.status().state {
                        crate::upstream::Status::Failed { reason } => Some(reason),
                        _ => None,
                    };
                    if let Some(ttl) = list.ttl_ms {
                        merged.ttl_ms = Some(merged.ttl_ms.map_or(ttl, |current| current.min(ttl)));
                    }
                    for item in &list.items {
                        let Some(item) = expose_item(upstream, kind, item) else {
                            continue;
                        };
                        if kind == ListKind::Tools {
                            let schema = item.get("inputSchema").cloned().unwrap_or(Value::Null);
                            if let Err(problem) = crate::headers::check_annotations(&schema) {
                                // Clients could not call such a tool correctly, so it is not offered.
                                tracing::warn!(server = %upstream.name(), tool = ?item.get("name"), %problem, "tool withheld");
                                continue;
                            }
                        }
                        let key = item
                            .get(kind.key())
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        owners.entry(key).or_default().push(index);
                        let item = match &failure {
                            // The server is down: its items are still listed, marked unavailable.
                            Some(reason) => mark_unavailable(item, reason),
                            None => item,
                        };
                        exposed.push((index, item));
                    }
                }
                Err(error) => {
                    tracing::warn!(server = %upstream.name(), list = kind.method(), %error, "list unavailable");
                    merged
                        .unavailable
                        .push((upstream.name().clone(), error.to_string()));
                }
            }
        }
        for (index, item) in exposed {
            let key = item
                .get(kind.key())
                .and_then(Value::as_str)
                .unwrap_or_default();
            let holders = owners.get(key).map(Vec::len).unwrap_or_default();
            if holders > 1 {
                continue;
            }
            merged.items.push(MergedItem {
                upstream: Arc::clone(&self.upstreams[index]),
                item,
            });
        }
        for (key, holders) in owners.iter().filter(|(_, holders)| holders.len() > 1) {
            let servers: Vec<String> = holders
                .iter()
                .map(|i| self.upstreams[*i].name().to_string())
                .collect();
            tracing::error!(name = %key, servers = %servers.join(", "), "name offered by several servers is withheld; give one a prefix");
        }
        merged
    }

    /// Routes a client-facing tool or prompt name.
    pub async fn route_name(
        &self,
        kind: ListKind,
        exposed: &str,
        requester: &Requester,
    ) -> Result<Route, RouteError> {
        if let Some((prefix, rest)) = split_name(exposed)
            && let Some(index) = self.by_prefix.get(prefix)
        {
            return Ok(self.route(*index, rest));
        }
        self.route_unprefixed(kind, exposed, requester).await
    }

    /// Routes a client-facing resource URI.
    pub async fn route_uri(
        &self,
        exposed: &str,
        requester: &Requester,
    ) -> Result<Route, RouteError> {
        if let Some((prefix, rest)) = split_uri(exposed)
            && let Some(index) = self.by_prefix.get(prefix)
        {
            return Ok(self.route(*index, rest));
        }
        self.route_unprefixed(ListKind::Resources, exposed, requester)
            .await
    }

    /// Routes a client-facing task id.
    pub fn route_task(&self, exposed: &str) -> Result<Route, RouteError> {
        let (server, task) = naming::split_task_id(exposed)
            .ok_or_else(|| RouteError::NotFound(exposed.to_owned()))?;
        let index = self
            .by_name
            .get(server)
            .ok_or_else(|| RouteError::NotFound(exposed.to_owned()))?;
        Ok(self.route(*index, task))
    }

    /// The definition of a routed tool, as the upstream describes it.
    pub async fn tool_definition(&self, route: &Route, requester: &Requester) -> Option<Value> {
        let index = self
            .upstreams
            .iter()
            .position(|u| Arc::ptr_eq(u, &route.upstream))?;
        let list = self
            .upstream_list(index, ListKind::Tools, requester)
            .await
            .ok()??;
        list.items
            .iter()
            .find(|tool| {
                tool.get("name").and_then(Value::as_str) == Some(route.upstream_name.as_str())
            })
            .cloned()
    }

    /// The upstream with this name.
    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.by_name.get(name).map(|index| &self.upstreams[*index])
    }

    fn route(&self, index: usize, upstream_name: &str) -> Route {
        Route {
            upstream: Arc::clone(&self.upstreams[index]),
            upstream_name: upstream_name.to_owned(),
        }
    }

    async fn route_unprefixed(
        &self,
        kind: ListKind,
        exposed: &str,
        requester: &Requester,
    ) -> Result<Route, RouteError> {
        match self.unprefixed.as_slice() {
            [] => Err(RouteError::NotFound(exposed.to_owned())),
            [only] => Ok(self.route(*only, exposed)),
            several => {
                let mut holders = Vec::new();
                for index in several {
                    let kinds = match kind {
                        ListKind::Resources | ListKind::ResourceTemplates => {
                            vec![ListKind::Resources, ListKind::ResourceTemplates]
                        }
                        other => vec![other],
                    };
                    for kind in &kinds {
                        if let Ok(Some(list)) = self.upstream_list(*index, *kind, requester).await
                            && list
                                .items
                                .iter()
                                .any(|item| matches_item(*kind, item, exposed))
                        {
                            holders.push(*index);
                            break;
                        }
                    }
                }
                match holders.as_slice() {
                    [one] => Ok(self.route(*one, exposed)),
                    [] => Err(RouteError::NotFound(exposed.to_owned())),
                    many => Err(RouteError::Ambiguous {
                        name: exposed.to_owned(),
                        servers: many
                            .iter()
                            .map(|i| self.upstreams[*i].name().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    }

    /// One upstream's list of one kind, from the cache or fetched. `Ok(None)` when the server
    /// does not offer that kind.
    async fn upstream_list(
        &self,
        index: usize,
        kind: ListKind,
        requester: &Requester,
    ) -> Result<Option<Arc<UpstreamList>>, FetchError> {
        let upstream = &self.upstreams[index];
        let cached = self.catalog(index).get(&kind).cloned();
        if let Some(entry) = &cached {
            // A stopped server's catalog stays valid, so listing never starts it; a server that
            // has restarted since is asked again, as its tools may have changed.
            if entry.generation == upstream.generation() || !upstream.is_running() {
                return Ok(Some(Arc::clone(&entry.list)));
            }
        }
        let fetched = self.fetch_upstream_list(index, kind, requester).await;
        match (fetched, cached) {
            // Asking again failed for this caller (their own process could not start, say):
            // what was learned before still describes the server.
            (Err(_), Some(entry)) => Ok(Some(entry.list)),
            (fetched, _) => fetched,
        }
    }

    /// Asks upstream `index` for its list of one kind and caches it.
    async fn fetch_upstream_list(
        &self,
        index: usize,
        kind: ListKind,
        requester: &Requester,
    ) -> Result<Option<Arc<UpstreamList>>, FetchError> {
        let upstream = &self.upstreams[index];
        let info = upstream
            .server_info(requester)
            .await
            .map_err(FetchError::Upstream)?;
        if info.capabilities.get(kind.capability()).is_none() {
            return Ok(None);
        }
        let timeout = self.list_timeout;
        let list = match fetch_list(upstream, kind, || CallOptions {
            requester: requester.clone(),
            ..CallOptions::internal(timeout)
        })
        .await
        {
            Ok(list) => list,
            // A server that offers resources but no templates answers "method not found".
            Err(FetchError::Refused { code: -32601, .. }) => UpstreamList {
                items: Vec::new(),
                ttl_ms: None,
                private: false,
            },
            Err(error) => return Err(error),
        };
        let list = Arc::new(list);
        let entry = CatalogEntry {
            list: Arc::clone(&list),
            generation: upstream.generation(),
        };
        self.catalog(index).insert(kind, entry);
        let _ = self.learned.send(LearnedList {
            server: upstream.name().clone(),
            kind,
            items: list.items.clone(),
        });
        Ok(Some(list))
    }

    fn catalog(&self, index: usize) -> std::sync::MutexGuard<'_, HashMap<ListKind, CatalogEntry>> {
        self.catalogs[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn invalidate(&self, index: usize, kinds: &[ListKind]) {
        let mut catalog = self.catalog(index);
        for kind in kinds {
            catalog.remove(kind);
        }
    }
}

/// Marks an item of a server that is down, so clients see it is there but unavailable.
fn mark_unavailable(mut item: Value, reason: &str) -> Value {
    if let Some(object) = item.as_object_mut() {
        let meta = object
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(
                "io.gatehouse/unavailable".to_owned(),
                Value::String(reason.to_owned()),
            );
        }
    }
    item
}

/// An upstream item under its client-facing name.
fn expose_item(upstream: &Upstream, kind: ListKind, item: &Value) -> Option<Value> {
    let original = item.get(kind.key())?.as_str()?;
    let exposed = match kind {
        ListKind::Tools | ListKind::Prompts => upstream.namespace().expose_name(original),
        ListKind::Resources | ListKind::ResourceTemplates => {
            upstream.namespace().expose_uri(original)
        }
    };
    let mut item = item.clone();
    item[kind.key()] = Value::String(exposed);
    Some(item)
}

fn matches_item(kind: ListKind, item: &Value, wanted: &str) -> bool {
    let Some(value) = item.get(kind.key()).and_then(Value::as_str) else {
        return false;
    };
    match kind {
        ListKind::ResourceTemplates => {
            let literal = value.split('{').next().unwrap_or(value);
            !literal.is_empty() && wanted.starts_with(literal)
        }
        _ => value == wanted,
    }
}

async fn watch_notifications(hub: std::sync::Weak<Hub>, index: usize) {
    let Some(mut notifications) = hub
        .upgrade()
        .map(|hub| hub.upstreams[index].notifications())
    else {
        return;
    };
    loop {
        let message = match notifications.recv().await {
            Ok(message) => message,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(hub) = hub.upgrade() else { return };
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kinds = ListKind::from_list_changed(method);
        if !kinds.is_empty() {
            hub.invalidate(index, kinds);
            let _ = hub.events.send(HubEvent::ListChanged(kinds[0]));
        } else if method == "notifications/resources/updated" {
            if let Some(uri) = message.pointer("/params/uri").and_then(Value::as_str) {
                let exposed = hub.upstreams[index].namespace().expose_uri(uri);
                let _ = hub.events.send(HubEvent::ResourceUpdated(exposed));
            }
        } else {
            tracing::debug!(server = %hub.upstreams[index].name(), %method, "upstream notification not forwarded");
        }
    }
}

/// Every second, stops the processes that have been idle longer than their server's adaptive
/// idle period. Ends when the hub is dropped.
async fn stop_idle_servers(hub: std::sync::Weak<Hub>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        for upstream in &hub.upstreams {
            upstream.stop_idle().await;
        }
    }
}
