//! Receipts on every exit path. A request refused before dispatch gets a decision receipt
//! from `http_api`; a request answered by the gateway itself gets one when it is answered; a
//! request that reaches an upstream gets an intent receipt that is durable *before* it is
//! forwarded, and a completion after (a dropped or crashed call leaves the intent `unknown`).
//! When receipts cannot be written and the audit fails closed, nothing is forwarded and the
//! client gets 503.
//!
//! `[audit] enabled = false` turns receipts off; validation allows that only on a gateway that
//! governs nothing (no `[auth]`, no grants, no policy files), so every gateway that decides who
//! may call what records its decisions.
//!
//! Refusals (denials, refused credentials, header mismatches, Host/Origin rejections, other
//! requests refused for the client's fault) go through a [`RefusalLimiter`]: per kind and
//! subject (the user, or the client's address when it did not authenticate), the first ones in
//! a window are recorded one by one and the rest counted, and [`Audit::record_counted_refusals`]
//! writes one aggregate receipt per window with the count, so a flood cannot fill the log.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gatehouse_audit::{
    Admission, AuditKey, AuditWriter, CheckpointSigner, ClientInfo, CountedRefusals, Decision,
    ErrorSource, ExportSink, FailureMode, JsonLinesSink, Outcome, Principal, Receipt,
    RefusalAggregate, RefusalKey, RefusalKind, RefusalLimiter, RefusalLimits, RefusalSubject,
    Target, TargetKind, Timestamp, Verdict, WriterConfig, WriterTask,
};
use gatehouse_config::{AuditSettings, ReceiptSettings};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::audit_log::StoreLog;
use crate::error::GatewayError;
use crate::identity::Who;
use crate::otlp::OtlpSink;

/// File beside the configuration holding the checkpoint signing key.
pub const SIGNING_KEY_FILE: &str = "audit-signing-key.json";
/// File beside the configuration holding the key of argument digests.
pub const DIGEST_KEY_FILE: &str = "audit-digest.key";

/// The method named in aggregate receipts of counted refusals.
pub const COUNTED_REFUSALS_METHOD: &str = "gatehouse/refusals";

/// The audit trail of the gateway: its receipt writer, or nothing where receipts are off.
pub struct Audit {
    recorder: Option<Recorder>,
}

/// What writes receipts: the writer, the key of argument digests, the refusal counter and the
/// key that signs pruning anchors.
struct Recorder {
    writer: AuditWriter,
    digest: AuditKey,
    refusals: RefusalLimiter,
    /// The key that signs the anchors left by pruning; the writer holds its own copy.
    anchors: CheckpointSigner,
}

/// The intent receipt of a call in flight, completed by [`Audit::complete`]; empty where
/// receipts are off.
pub struct CallRecord(Option<gatehouse_audit::Intent>);

/// What one request's receipts have in common.
pub struct Trail {
    request_id: String,
    started: Instant,
    principal: Option<Principal>,
    client: ClientInfo,
    session_id: Option<String>,
    method: String,
    relayed: AtomicBool,
}

impl Trail {
    /// The trail of a request from `who` at `peer`.
    pub fn new(
        who: Option<&Who>,
        peer: SocketAddr,
        method: &str,
        session_id: Option<String>,
    ) -> Self {
        let principal = who.and_then(|who| match who {
            Who::Anonymous => None,
            Who::Person(person) => Some(Principal {
                user: person.user().to_owned(),
                groups: person.groups().to_vec(),
                credential_id: Some(person.credential().to_string()),
            }),
        });
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            started: Instant::now(),
            principal,
            client: ClientInfo {
                name: None,
                address: Some(peer),
            },
            session_id,
            method: method.to_owned(),
            relayed: AtomicBool::new(false),
        }
    }

    fn receipt(&self, verdict: Verdict) -> Receipt {
        let mut receipt = Receipt::new(
            self.request_id.clone(),
            self.method.clone(),
            Decision::new(verdict),
        );
        receipt.principal = self.principal.clone();
        receipt.client = self.client.clone();
        receipt.session_id = self.session_id.clone();
        receipt.set_latency(self.started.elapsed());
        receipt
    }

    /// Whether an intent receipt was written for this request.
    pub fn relayed(&self) -> bool {
        self.relayed.load(Ordering::Relaxed)
    }

    /// Whom a refusal of this request counts against: the user, or the client's address
    /// without its port when it did not authenticate.
    fn refusal_subject(&self) -> RefusalSubject {
        match (&self.principal, self.client.address) {
            (Some(principal), _) => RefusalSubject::User(principal.user.clone()),
            (None, Some(address)) => RefusalSubject::Address(address.ip()),
            (None, None) => RefusalSubject::Others,
        }
    }
}

/// The kind of refusal an error is, or `None` when the client is not at fault (the upstream
/// or the gateway failed): those are always recorded one by one.
fn refusal_kind(error: &GatewayError) -> Option<RefusalKind> {
    match error {
        GatewayError::PolicyDenied { .. } => Some(RefusalKind::Denied),
        GatewayError::HeaderMismatch(_) => Some(RefusalKind::HeaderMismatch),
        GatewayError::Parse(_)
        | GatewayError::InvalidRequest(_)
        | GatewayError::InvalidParams(_)
        | GatewayError::MissingEnvelope(_)
        | GatewayError::UnsupportedVersion(_)
        | GatewayError::MethodNotFound(_)
        | GatewayError::Route(_)
        | GatewayError::SessionNotFound
        | GatewayError::SessionNotOwned
        | GatewayError::SessionRequired
        | GatewayError::MissingCapability { .. } => Some(RefusalKind::Invalid),
        GatewayError::Upstream(_)
        | GatewayError::CannotBridge(_)
        | GatewayError::AuditUnavailable(_)
        | GatewayError::SignInRequired { .. }
        | GatewayError::Relayed(_) => None,
    }
}

/// What a relayed call is about, for its intent receipt.
pub struct CallFacts<'a> {
    /// The server it goes to.
    pub server: &'a str,
    /// Its target, if the method names one.
    pub target: Option<(TargetKind, String)>,
    /// The rules that allowed it and the policy hash.
    pub decision: Option<&'a gatehouse_policy::Decision>,
    /// Its arguments, digested.
    pub arguments: Option<&'a Value>,
    /// The upstream credential it uses, by id and version.
    pub credential: Option<gatehouse_mcp::credentials::CredentialUse>,
}

impl Audit {
    /// Opens the audit trail over the store as `settings` say: with receipts, creates the keys
    /// beside the configuration on first use and starts the writer, whose task is returned.
    pub async fn open(
        store: &gatehouse_store::Store,
        folder: &Path,
        settings: &AuditSettings,
    ) -> Result<(Self, Option<WriterTask>), String> {
        match settings {
            AuditSettings::Off => Ok((Self { recorder: None }, None)),
            AuditSettings::Receipts(receipts) => {
                let (recorder, task) = Recorder::open(store, folder, receipts).await?;
                Ok((
                    Self {
                        recorder: Some(recorder),
                    },
                    Some(task),
                ))
            }
        }
    }

    /// The key that signs the anchors left by pruning; `None` where receipts are off.
    pub fn anchor_signer(&self) -> Option<&CheckpointSigner> {
        self.recorder.as_ref().map(|recorder| &recorder.anchors)
    }

    /// The writer's counters and queue depth, for metrics; `None` where receipts are off.
    pub fn stats(&self) -> Option<gatehouse_audit::WriterStats> {
        self.recorder
            .as_ref()
            .map(|recorder| recorder.writer.stats())
    }

    /// Records a decision that did not reach an upstream. Under fail-closed, an error means the
    /// request must be refused.
    pub async fn record_decision_about(
        &self,
        trail: &Trail,
        verdict: Verdict,
        error: Option<&GatewayError>,
        target: Option<(TargetKind, String)>,
    ) -> Result<(), GatewayError> {
        self.record(trail, verdict, error, target).await
    }

    /// Records a decision that did not reach an upstream, about nothing in particular.
    pub async fn record_decision(
        &self,
        trail: &Trail,
        verdict: Verdict,
        error: Option<&GatewayError>,
    ) -> Result<(), GatewayError> {
        self.record(trail, verdict, error, None).await
    }

    /// Records a refusal that is not a [`GatewayError`]: a refused credential, a Host or
    /// Origin that is not the gateway's. Counted instead when its subject has had its share of
    /// receipts in this window.
    pub async fn record_refusal(
        &self,
        trail: &Trail,
        kind: RefusalKind,
    ) -> Result<(), GatewayError> {
        self.write_decision(trail, kind.verdict(), None, None, Some(kind))
            .await
    }

    async fn record(
        &self,
        trail: &Trail,
        verdict: Verdict,
        error: Option<&GatewayError>,
        target: Option<(TargetKind, String)>,
    ) -> Result<(), GatewayError> {
        let refusal = error.and_then(refusal_kind);
        self.write_decision(trail, verdict, error, target, refusal)
            .await
    }

    async fn write_decision(
        &self,
        trail: &Trail,
        verdict: Verdict,
        error: Option<&GatewayError>,
        target: Option<(TargetKind, String)>,
        refusal: Option<RefusalKind>,
    ) -> Result<(), GatewayError> {
        let Some(recorder) = &self.recorder else {
            return Ok(());
        };
        if let Some(kind) = refusal {
            let key = RefusalKey {
                kind,
                subject: trail.refusal_subject(),
            };
            if recorder.refusals.admit(key, Timestamp::now()) == Admission::Counted {
                return Ok(());
            }
        }
        let mut receipt = trail.receipt(verdict);
        receipt.target = target.map(|(kind, name)| Target { kind, name });
        if let Some(GatewayError::PolicyDenied {
            rules, policy_hash, ..
        }) = error
        {
            receipt.decision.rule_ids = rules.clone();
            receipt.decision.policy_hash = Some(policy_hash.clone());
        }
        let refused = error.is_some() || refusal.is_some();
        receipt.outcome = Some(if refused {
            Outcome::Unknown
        } else {
            Outcome::Ok
        });
        receipt.error_source = match (error, refusal) {
            (_, Some(_)) => Some(ErrorSource::Client),
            (None, None) => None,
            (Some(GatewayError::Upstream(_) | GatewayError::Relayed(_)), None) => {
                Some(ErrorSource::Upstream)
            }
            (Some(_), None) => Some(ErrorSource::Gateway),
        };
        receipt.refusal = refusal;
        let unavailable =
            |error: gatehouse_audit::AuditError| GatewayError::AuditUnavailable(error.to_string());
        let pending = recorder
            .writer
            .record(&receipt)
            .await
            .map_err(unavailable)?;
        // Fail-closed means the answer waits for its receipt to be durable.
        pending.durable().await.map(drop).map_err(unavailable)
    }

    /// Writes one aggregate receipt for each window of counted refusals that has ended, or,
    /// when `all` (at shutdown), for every window, and waits until they are durable.
    pub async fn record_counted_refusals(&self, all: bool) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let counts = if all {
            recorder.refusals.take_all()
        } else {
            recorder.refusals.take_ended(Timestamp::now())
        };
        for counted in counts {
            let count = counted.count;
            let receipt = aggregate_receipt(counted);
            let written = match recorder.writer.record(&receipt).await {
                Ok(pending) => pending.durable().await.map(drop),
                Err(error) => Err(error),
            };
            if let Err(error) = written {
                tracing::error!(%error, count, "the receipt of counted refusals was not written");
            }
        }
    }

    /// Durably records the intent of a call before it is forwarded.
    pub async fn begin(
        &self,
        trail: &Trail,
        facts: CallFacts<'_>,
    ) -> Result<CallRecord, GatewayError> {
        let Some(recorder) = &self.recorder else {
            return Ok(CallRecord(None));
        };
        let mut receipt = trail.receipt(Verdict::Allow);
        receipt.server = Some(facts.server.to_owned());
        receipt.target = facts.target.map(|(kind, name)| Target { kind, name });
        if let Some(decision) = facts.decision {
            receipt.decision.rule_ids = decision.rules.clone();
            receipt.decision.policy_hash = Some(decision.policy_hash.to_string());
        }
        receipt.arguments_digest = facts
            .arguments
            .map(|arguments| recorder.digest.digest_value(arguments));
        receipt.credential = facts.credential.map(|used| gatehouse_audit::CredentialUse {
            id: used.id,
            version: u64::try_from(used.version).unwrap_or_default(),
        });
        receipt.latency_us = None;
        let intent = recorder
            .writer
            .begin(receipt)
            .await
            .map_err(|error| GatewayError::AuditUnavailable(error.to_string()))?;
        trail.relayed.store(true, Ordering::Relaxed);
        Ok(CallRecord(Some(intent)))
    }

    /// Records how a call ended. The upstream effect has happened, so a failure here is only
    /// logged: the intent on record then verifies as `unknown`.
    pub async fn complete(
        &self,
        trail: &Trail,
        record: CallRecord,
        outcome: Outcome,
        source: Option<ErrorSource>,
    ) {
        let CallRecord(Some(intent)) = record else {
            return;
        };
        let completion = gatehouse_audit::Completion {
            outcome,
            error_source: source,
            latency: trail.started.elapsed(),
        };
        if let Err(error) = intent.complete(completion).await {
            tracing::error!(%error, request = %trail.request_id, "completion receipt not written; the call verifies as unknown");
        }
    }
}

impl Recorder {
    /// Loads or creates the keys, opens the export sinks and starts the writer.
    async fn open(
        store: &gatehouse_store::Store,
        folder: &Path,
        settings: &ReceiptSettings,
    ) -> Result<(Self, WriterTask), String> {
        let signer = load_or_create(&folder.join(SIGNING_KEY_FILE), parse_signer, || {
            let signer = CheckpointSigner::generate().map_err(|e| e.to_string())?;
            let text = signer.to_secret_json().expose_secret().to_owned();
            Ok((signer, text))
        })?;
        let anchors = load_signer(folder)?;
        let digest = load_or_create(
            &folder.join(DIGEST_KEY_FILE),
            |text| AuditKey::from_hex(text.trim()).map_err(|e| e.to_string()),
            || {
                let key = AuditKey::generate().map_err(|e| e.to_string())?;
                let text = key.to_hex().expose_secret().to_owned();
                Ok((key, text))
            },
        )?;
        let mut sinks: Vec<Arc<dyn ExportSink>> = Vec::new();
        match settings.export.as_deref() {
            None => {}
            Some("stdout") => sinks.push(Arc::new(JsonLinesSink::stdout())),
            Some(path) => {
                let sink = JsonLinesSink::append_to_file(Path::new(path))
                    .await
                    .map_err(|error| format!("audit export file {path}: {error}"))?;
                sinks.push(Arc::new(sink));
            }
        }
        if let Some(otlp) = &settings.otlp {
            sinks.push(Arc::new(OtlpSink::new(otlp)?));
        }
        let config = WriterConfig {
            failure_mode: if settings.fail_closed {
                FailureMode::FailClosed
            } else {
                FailureMode::FailOpen
            },
            ..WriterConfig::default()
        };
        let (writer, task) =
            AuditWriter::spawn(Arc::new(StoreLog(store.clone())), signer, config, sinks);
        let recorder = Self {
            writer,
            digest,
            refusals: RefusalLimiter::new(RefusalLimits::default()),
            anchors,
        };
        Ok((recorder, task))
    }
}

/// The receipt of refusals counted in one window: the kind, the subject (user or address),
/// the count and the times of the first and last.
fn aggregate_receipt(counted: CountedRefusals) -> Receipt {
    let kind = counted.key.kind;
    let mut receipt = Receipt::new(
        uuid::Uuid::new_v4().to_string(),
        COUNTED_REFUSALS_METHOD,
        Decision::new(kind.verdict()),
    );
    receipt.error_source = Some(ErrorSource::Client);
    receipt.refusal = Some(kind);
    let address = match counted.key.subject {
        RefusalSubject::User(user) => {
            receipt.principal = Some(Principal {
                user,
                groups: Vec::new(),
                credential_id: None,
            });
            None
        }
        RefusalSubject::Address(address) => Some(address),
        RefusalSubject::Others => None,
    };
    receipt.refusals = Some(RefusalAggregate {
        kind,
        address,
        count: counted.count,
        first: counted.first,
        last: counted.last,
    });
    receipt
}

/// Reads the checkpoint signing key kept beside the configuration; it is created by the
/// first `gatehouse serve`.
pub fn load_signer(folder: &Path) -> Result<CheckpointSigner, String> {
    let path = folder.join(SIGNING_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|error| {
        format!(
            "cannot read the signing key {}: {error}; it is created by `gatehouse serve`",
            path.display()
        )
    })?;
    parse_signer(&text).map_err(|error| format!("{}: {error}", path.display()))
}

fn parse_signer(text: &str) -> Result<CheckpointSigner, String> {
    CheckpointSigner::from_secret_json(&secrecy::SecretString::from(text.to_owned()))
        .map_err(|error| error.to_string())
}

fn load_or_create<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, String>,
    create: impl Fn() -> Result<(T, String), String>,
) -> Result<T, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|error| format!("{}: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (value, text) = create()?;
            write_private(path, &text)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
            Ok(value)
        }
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
