//! The result event: the platform's contract for "what did this run do".
//!
//! Field names are fixed by the platform (`schema_version`, `job_name`, `run_id`, `started_at`,
//! `completed_at`, `duration_seconds`, `status`, `dry_run`, `summary`, `findings`, `alerts_sent`);
//! additions are new optional fields, never renames. Other event types (`resource-expiring`,
//! `resource-deleted`, …) travel in an [`Envelope`] through the same publisher.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of the result-event schema.
pub const SCHEMA_VERSION: &str = "1.0";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything the run set out to do was done (a dry run that planned successfully included).
    Success,
    /// Some items failed; the others were processed.
    Partial,
    /// The run could not do its work.
    Failure,
}

impl Status {
    /// The lowercase name used in events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Partial => "partial",
            Status::Failure => "failure",
        }
    }
}

/// Severity of a finding or a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to act on.
    Ok,
    /// Worth knowing.
    Info,
    /// Act soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// The lowercase name used in events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Ok => "ok",
        }
    }
}

/// How many checked items ended in each severity, plus how many items the run looked at. Every
/// checked item lands in exactly one bucket: the worst severity among its findings, or `ok` when
/// it has none, so `critical + warning + info + ok = total_checked`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Items examined (resources, certificates, secrets, tenants).
    pub total_checked: u64,
    /// Items whose worst finding is critical.
    pub critical: u64,
    /// Items whose worst finding is a warning.
    pub warning: u64,
    /// Items whose worst finding is info.
    pub info: u64,
    /// Items with no finding worse than ok.
    pub ok: u64,
}

impl Summary {
    /// Buckets the items by the worst severity of their findings (findings about the same
    /// `resource` are one item); `total_checked` comes from the job, and what has no finding is
    /// `ok`. A job that reports more findings' resources than it checked gets `total_checked`
    /// raised to match, so the buckets always add up.
    pub fn from_findings(total_checked: u64, findings: &[Finding]) -> Self {
        let mut worst: std::collections::HashMap<&str, Severity> = Default::default();
        for f in findings {
            let w = worst.entry(f.resource.as_str()).or_insert(Severity::Ok);
            if f.severity > *w {
                *w = f.severity;
            }
        }
        let mut s = Summary {
            total_checked,
            ..Summary::default()
        };
        for severity in worst.values() {
            match severity {
                Severity::Critical => s.critical += 1,
                Severity::Warning => s.warning += 1,
                Severity::Info => s.info += 1,
                Severity::Ok => {}
            }
        }
        let flagged = s.critical + s.warning + s.info;
        s.total_checked = s.total_checked.max(flagged);
        s.ok = s.total_checked - flagged;
        s
    }
}

/// One thing a job found about one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Finding type, for example `resource-expired` or `certificate_expiry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// How urgent it is.
    pub severity: Severity,
    /// The resource: an ARN, `k8s:…`, `https://host:port`, `vault:…`.
    pub resource: String,
    /// One human sentence: what and why.
    pub message: String,
    /// Job-specific fields (`action`, `deadline`, `owner`, `not_after`, …), flattened.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Finding {
    /// A finding with no job-specific fields yet.
    pub fn new(
        kind: impl Into<String>,
        severity: Severity,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            kind: kind.into(),
            severity,
            resource: resource.into(),
            message: message.into(),
            fields: Map::new(),
        }
    }

    /// Adds a job-specific field (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }
}

/// One notification the run sent (or tried to send).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSent {
    /// `email`, `chat` or `pager`.
    pub channel: String,
    /// Recipients for email; `webhook` for chat and pager (their URLs and keys are secrets).
    pub target: String,
    /// Subject or summary line.
    pub subject: String,
    /// Severity the notification was routed by.
    pub severity: Severity,
    /// When it was handed to the channel.
    pub sent_at: Timestamp,
    /// Whether the channel accepted it.
    pub delivered: bool,
    /// Why it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The one event every run publishes, on the results topic, keyed by job name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultEvent {
    /// [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// The job's name (also the Kafka key and the metrics' `job_name`).
    pub job_name: String,
    /// Unique per run (UUID v7: time-ordered).
    pub run_id: String,
    /// Wall-clock start, UTC.
    pub started_at: Timestamp,
    /// Wall-clock end, UTC.
    pub completed_at: Timestamp,
    /// `completed_at - started_at`, in seconds.
    pub duration_seconds: f64,
    /// How the run ended.
    pub status: Status,
    /// True unless the run was started with `--execute`.
    pub dry_run: bool,
    /// The instant the rules were evaluated at (differs from `started_at` with `--now`).
    pub evaluated_at: Timestamp,
    /// The shard this run was (`{index, count}`), when sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// Counts.
    pub summary: Summary,
    /// What was found.
    pub findings: Vec<Finding>,
    /// What was sent.
    pub alerts_sent: Vec<AlertSent>,
    /// Errors that made the run partial or failed, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Job-specific run-level data (for example cost avoided per project).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

/// Wraps a non-result event (`resource-expiring`, `resource-deleted`, …) with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The event type, also the default topic name.
    pub event_type: String,
    /// [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// The job that emitted it.
    pub job_name: String,
    /// The run that emitted it.
    pub run_id: String,
    /// Whether that run was a dry run.
    pub dry_run: bool,
    /// When it was emitted (the run's clock).
    pub emitted_at: Timestamp,
    /// The shard of the run that emitted it, when sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// The event's own fields, flattened.
    #[serde(flatten)]
    pub data: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checked_item_lands_in_exactly_one_bucket() {
        let f = |s, r| Finding::new("t", s, r, "m");
        let findings = [
            f(Severity::Critical, "a"),
            // A second, milder finding about the same item does not count it twice.
            f(Severity::Warning, "a"),
            f(Severity::Warning, "b"),
            f(Severity::Warning, "c"),
            f(Severity::Info, "d"),
            f(Severity::Ok, "e"),
        ];
        let s = Summary::from_findings(10, &findings);
        assert_eq!(
            s,
            Summary {
                total_checked: 10,
                critical: 1,
                warning: 2,
                info: 1,
                ok: 6
            }
        );
        assert_eq!(s.critical + s.warning + s.info + s.ok, s.total_checked);
        // More flagged items than the job says it checked: the total follows.
        let s = Summary::from_findings(1, &findings);
        assert_eq!((s.total_checked, s.ok), (4, 0));
    }

    #[test]
    fn finding_serialises_with_contract_names_and_flattened_fields() {
        let f = Finding::new(
            "resource-expired",
            Severity::Critical,
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            "expired",
        )
        .with("action", "delete")
        .with("cost_avoided_usd", 12.5);
        let v = serde_json::to_value(&f).expect("serialise");
        assert_eq!(v["type"], "resource-expired");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["action"], "delete");
        assert_eq!(v["cost_avoided_usd"], 12.5);
        let back: Finding = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, f);
    }
}
