//! OpenTelemetry export of receipts: every appended receipt becomes one OTLP log record, and
//! each appended batch one protobuf `ExportLogsServiceRequest` posted to an OTLP/HTTP collector
//! (`[audit] otlp_endpoint`, path `/v1/logs`).
//!
//! A record's body is the receipt's export line ([`StoredReceipt::to_json_line`]: sequence
//! number, hashes and the canonical receipt), so a copy kept by the observability stack can be
//! checked against the chain; its attributes are the fields people search by. Severity is
//! INFO for an allowed call that went well (or has not ended yet: an intent), WARN for a
//! denial, an error, or a call that failed. The resource is `service.name = "gatehouse"`.
//!
//! The generated `opentelemetry-proto` types, encoded with prost and posted with reqwest, are
//! used rather than the OpenTelemetry SDK's log pipeline because the audit writer already
//! batches receipts and gives every sink a bounded queue of its own
//! ([`gatehouse_audit::ExportSink`]): the SDK's batch processor would add a second queue and
//! worker behind it, and report a failed export only to its internal log, where the sink
//! contract needs the failure returned so it is counted. A failed batch is not retried; it is
//! counted and logged, and the receipts remain in the store (`gatehouse audit export`).

use std::io;
use std::time::Duration;

use gatehouse_audit::{ExportSink, Receipt, SinkFuture, StoredReceipt, Timestamp};
use gatehouse_config::OtlpExport;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

/// Longest wait for the collector's answer to one batch.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a connection to the collector.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The instrumentation scope of the records, and the event name of each.
const SCOPE: &str = "gatehouse.audit";
const EVENT_NAME: &str = "gatehouse.audit.receipt";

/// Sends receipts to an OTLP/HTTP collector as log records.
pub struct OtlpSink {
    url: String,
    client: reqwest::Client,
}

impl OtlpSink {
    /// A sink posting to `export.logs_url` with `export.headers` on every request.
    pub fn new(export: &OtlpExport) -> Result<Self, String> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &export.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("otlp_headers: `{name}` is not a valid header name"))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("otlp_headers: the value of `{name}` is not valid"))?;
            // Header values may be credentials; keep them out of debug output.
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| format!("cannot build the OTLP client: {error}"))?;
        Ok(Self {
            url: export.logs_url.clone(),
            client,
        })
    }

    async fn post(&self, receipts: &[StoredReceipt]) -> io::Result<()> {
        let request = export_request(receipts, Timestamp::now());
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            .map_err(io::Error::other)?;
        let status = response.status();
        let body = response.bytes().await.map_err(io::Error::other)?;
        if !status.is_success() {
            return Err(io::Error::other(format!(
                "the collector answered {status} to {} records",
                receipts.len()
            )));
        }
        // An empty or undecodable body is a plain success; a partial success names the
        // records the collector dropped.
        if let Ok(answer) = ExportLogsServiceResponse::decode(body)
            && let Some(partial) = answer.partial_success
            && partial.rejected_log_records > 0
        {
            return Err(io::Error::other(format!(
                "the collector rejected {} of {} records: {}",
                partial.rejected_log_records,
                receipts.len(),
                partial.error_message
            )));
        }
        Ok(())
    }
}

impl ExportSink for OtlpSink {
    fn name(&self) -> &str {
        &self.url
    }

    fn export<'a>(&'a self, receipts: &'a [StoredReceipt]) -> SinkFuture<'a> {
        Box::pin(self.post(receipts))
    }
}

/// One export request holding a log record for each of `receipts`, observed at `observed`.
pub fn export_request(receipts: &[StoredReceipt], observed: Timestamp) -> ExportLogsServiceRequest {
    let resource = Resource {
        attributes: vec![
            text("service.name", "gatehouse"),
            text("service.version", env!("CARGO_PKG_VERSION")),
        ],
        ..Resource::default()
    };
    let scope = InstrumentationScope {
        name: SCOPE.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope),
                log_records: receipts
                    .iter()
                    .map(|receipt| log_record(receipt, observed))
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The log record of one receipt.
///
/// Attributes: `gatehouse.audit.seq`, `gatehouse.audit.hash`, `gatehouse.audit.kind`
/// (`decision`, `intent`, `completion`), `gatehouse.audit.intent_seq` (completions),
/// `gatehouse.request.id`, `gatehouse.method`, `gatehouse.user`, `gatehouse.server`,
/// `gatehouse.target`, `gatehouse.decision`, `gatehouse.rule_ids` (an array),
/// `gatehouse.outcome` and `gatehouse.latency_us`, each present when the receipt has it.
pub fn log_record(stored: &StoredReceipt, observed: Timestamp) -> LogRecord {
    let index = &stored.index;
    let mut attributes = vec![
        integer("gatehouse.audit.seq", stored.seq),
        text("gatehouse.audit.hash", &stored.hash),
        text("gatehouse.audit.kind", stored.kind.as_str()),
    ];
    if let Some(intent_seq) = stored.kind.intent_seq() {
        attributes.push(integer("gatehouse.audit.intent_seq", intent_seq));
    }
    // The body was written by this gateway as canonical JSON; should it not read back, the
    // record still carries the index fields and the body itself.
    let receipt: Option<Receipt> = stored.receipt().ok();
    if let Some(receipt) = &receipt {
        attributes.push(text("gatehouse.request.id", &receipt.request_id));
        attributes.push(text("gatehouse.method", &receipt.method));
    }
    let optional = [
        ("gatehouse.user", &index.user),
        ("gatehouse.server", &index.server),
        ("gatehouse.target", &index.tool),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            attributes.push(text(key, value));
        }
    }
    attributes.push(text("gatehouse.decision", &index.decision));
    if let Some(receipt) = &receipt
        && !receipt.decision.rule_ids.is_empty()
    {
        attributes.push(strings("gatehouse.rule_ids", &receipt.decision.rule_ids));
    }
    if let Some(outcome) = &index.outcome {
        attributes.push(text("gatehouse.outcome", outcome));
    }
    if let Some(latency_us) = receipt.as_ref().and_then(|receipt| receipt.latency_us) {
        attributes.push(integer(
            "gatehouse.latency_us",
            i64::try_from(latency_us).unwrap_or(i64::MAX),
        ));
    }
    let went_well = index.decision == "allow"
        && index
            .outcome
            .as_deref()
            .is_none_or(|outcome| outcome == "ok");
    let severity = if went_well {
        SeverityNumber::Info
    } else {
        SeverityNumber::Warn
    };
    LogRecord {
        time_unix_nano: unix_nanos(stored.recorded_at),
        observed_time_unix_nano: unix_nanos(observed),
        severity_number: severity as i32,
        severity_text: if went_well { "INFO" } else { "WARN" }.to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(stored.to_json_line())),
        }),
        attributes,
        event_name: EVENT_NAME.to_owned(),
        ..LogRecord::default()
    }
}

fn unix_nanos(time: Timestamp) -> u64 {
    u64::try_from(time.as_unix_millis())
        .unwrap_or(0)
        .saturating_mul(1_000_000)
}

fn text(key: &str, value: &str) -> KeyValue {
    attribute(key, any_value::Value::StringValue(value.to_owned()))
}

fn integer(key: &str, value: i64) -> KeyValue {
    attribute(key, any_value::Value::IntValue(value))
}

fn strings(key: &str, values: &[String]) -> KeyValue {
    let values = values
        .iter()
        .map(|value| AnyValue {
            value: Some(any_value::Value::StringValue(value.clone())),
        })
        .collect();
    attribute(key, any_value::Value::ArrayValue(ArrayValue { values }))
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_audit::{Decision, NewReceipt, Outcome, Principal, ReceiptKind, Verdict, seal};

    use super::*;

    /// A chain of `receipts` sealed from genesis, rendered as one line per record: severity,
    /// then each attribute as `key=value`.
    fn check(receipts: &[(ReceiptKind, Receipt)], expected: &[&str]) {
        let entries: Vec<NewReceipt> = receipts
            .iter()
            .map(|(kind, receipt)| NewReceipt::new(*kind, receipt).unwrap())
            .collect();
        let stored = seal(None, &entries);
        let request = export_request(&stored, Timestamp::from_unix_millis(2_000));
        let decoded = ExportLogsServiceRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, request);
        let resource = decoded.resource_logs[0].resource.as_ref().unwrap();
        assert_eq!(render(&resource.attributes[0]), "service.name=gatehouse");
        let records = &decoded.resource_logs[0].scope_logs[0].log_records;
        let lines: Vec<String> = records
            .iter()
            .map(|record| {
                let mut line = record.severity_text.clone();
                for attribute in &record.attributes {
                    let rendered = render(attribute);
                    // Hashes are long; the loop below compares each with the chain's.
                    if attribute.key == "gatehouse.audit.hash" {
                        line.push_str(" gatehouse.audit.hash=…");
                    } else {
                        line.push(' ');
                        line.push_str(&rendered);
                    }
                }
                line
            })
            .collect();
        assert_eq!(lines, expected);
        for (record, entry) in records.iter().zip(&stored) {
            assert_eq!(record.time_unix_nano, 1_000_000_000);
            assert_eq!(record.observed_time_unix_nano, 2_000_000_000);
            let body = match record.body.as_ref().and_then(|body| body.value.as_ref()) {
                Some(any_value::Value::StringValue(body)) => body.clone(),
                other => panic!("body {other:?}"),
            };
            assert_eq!(body, entry.to_json_line());
            let hash = records_attribute(record, "gatehouse.audit.hash");
            assert_eq!(hash, entry.hash);
        }
    }

    fn records_attribute(record: &LogRecord, key: &str) -> String {
        let attribute = record
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .unwrap();
        render(attribute)
            .split_once('=')
            .map(|(_, value)| value.to_owned())
            .unwrap()
    }

    fn render(attribute: &KeyValue) -> String {
        let value = attribute
            .value
            .as_ref()
            .and_then(|value| value.value.as_ref());
        let value = match value {
            Some(any_value::Value::StringValue(text)) => text.clone(),
            Some(any_value::Value::IntValue(number)) => number.to_string(),
            Some(any_value::Value::ArrayValue(array)) => {
                let items: Vec<String> = array
                    .values
                    .iter()
                    .map(|item| match &item.value {
                        Some(any_value::Value::StringValue(text)) => text.clone(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                format!("[{}]", items.join(","))
            }
            other => format!("{other:?}"),
        };
        format!("{}={value}", attribute.key)
    }

    fn receipt(verdict: Verdict, outcome: Option<Outcome>) -> Receipt {
        let mut receipt = Receipt::new("req-1", "tools/call", Decision::new(verdict));
        receipt.time = Timestamp::from_unix_millis(1_000);
        receipt.principal = Some(Principal {
            user: "alice".into(),
            groups: Vec::new(),
            credential_id: None,
        });
        receipt.server = Some("demo".into());
        receipt.target = Some(gatehouse_audit::Target {
            kind: gatehouse_audit::TargetKind::Tool,
            name: "demo__echo".into(),
        });
        receipt.decision.rule_ids = vec!["alice-reads".into()];
        receipt.outcome = outcome;
        receipt
    }

    #[test]
    fn each_receipt_is_one_record_with_its_chain_place_and_search_fields() {
        let mut completion = receipt(Verdict::Allow, Some(Outcome::Ok));
        completion.latency_us = Some(900);
        let mut denial = receipt(Verdict::Deny, Some(Outcome::Unknown));
        denial.server = None;
        let mut failed = receipt(Verdict::Allow, Some(Outcome::UpstreamError));
        failed.principal = None;
        failed.decision.rule_ids.clear();
        check(
            &[
                (ReceiptKind::Intent, receipt(Verdict::Allow, None)),
                (ReceiptKind::Completion { intent_seq: 1 }, completion),
                (ReceiptKind::Decision, denial),
                (ReceiptKind::Completion { intent_seq: 1 }, failed),
            ],
            &[
                "INFO gatehouse.audit.seq=1 gatehouse.audit.hash=… gatehouse.audit.kind=intent gatehouse.request.id=req-1 gatehouse.method=tools/call gatehouse.user=alice gatehouse.server=demo gatehouse.target=demo__echo gatehouse.decision=allow gatehouse.rule_ids=[alice-reads]",
                "INFO gatehouse.audit.seq=2 gatehouse.audit.hash=… gatehouse.audit.kind=completion gatehouse.audit.intent_seq=1 gatehouse.request.id=req-1 gatehouse.method=tools/call gatehouse.user=alice gatehouse.server=demo gatehouse.target=demo__echo gatehouse.decision=allow gatehouse.rule_ids=[alice-reads] gatehouse.outcome=ok gatehouse.latency_us=900",
                "WARN gatehouse.audit.seq=3 gatehouse.audit.hash=… gatehouse.audit.kind=decision gatehouse.request.id=req-1 gatehouse.method=tools/call gatehouse.user=alice gatehouse.target=demo__echo gatehouse.decision=deny gatehouse.rule_ids=[alice-reads] gatehouse.outcome=unknown",
                "WARN gatehouse.audit.seq=4 gatehouse.audit.hash=… gatehouse.audit.kind=completion gatehouse.audit.intent_seq=1 gatehouse.request.id=req-1 gatehouse.method=tools/call gatehouse.server=demo gatehouse.target=demo__echo gatehouse.decision=allow gatehouse.outcome=upstream_error",
            ],
        );
    }
}
