//! The shared sinks against real local services: the Kafka publisher (librdkafka's mock cluster
//! and a real tansu broker, also behind stunnel and our SASL gate), the Pushgateway pusher (also
//! over TLS with basic auth or a bearer token), and the notifier (aiosmtpd over plain SMTP
//! and STARTTLS, chat and pager webhooks served on loopback), and the AWS and Kubernetes clients
//! (moto, the project's fake API server), and the run lock on a Lease.

mod clients;
mod kafka;
mod kafka_security;
mod lock;
mod metrics;
mod notify;
mod pushgateway_security;

use common::event::{Finding, ResultEvent, SCHEMA_VERSION, Severity, Status, Summary};

/// A result event with every field set, for round trips.
pub fn sample_event(job: &str) -> ResultEvent {
    let t = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
    let findings = vec![
        Finding::new(
            "resource-expired",
            Severity::Critical,
            "arn:aws:ec2:us-east-1:111111111111:instance/i-1",
            "expired",
        )
        .with("action", "delete")
        .with("cost_avoided_usd", 59.9),
        Finding::new(
            "tag-violation",
            Severity::Warning,
            "k8s:preview",
            "missing owner",
        )
        .with("action", "none"),
    ];
    ResultEvent {
        schema_version: SCHEMA_VERSION.to_string(),
        job_name: job.to_string(),
        run_id: uuid_like(),
        started_at: t("2026-11-23T12:00:00Z"),
        completed_at: t("2026-11-23T12:00:03.5Z"),
        duration_seconds: 3.5,
        status: Status::Partial,
        dry_run: true,
        evaluated_at: t("2026-11-23T12:00:00Z"),
        shard: None,
        summary: Summary::from_findings(7, &findings),
        findings,
        alerts_sent: vec![],
        errors: vec!["one thing failed".to_string()],
        details: serde_json::Map::new(),
    }
}

fn uuid_like() -> String {
    format!("run-{}", std::process::id())
}
