//! The job's own `job:` config section and its validation.
//!
//! Every source is optional: a config with only `postgres` reports tenants and their quotas and
//! nothing else. A source that is configured but fails makes the run `partial`.

use std::path::PathBuf;
use std::time::Duration;

use common::config::{HttpUrl, HumanDuration};
use serde::Deserialize;

use crate::period::PeriodKind;

/// The `job:` section of `usage-reporting`'s config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// The period a run reports when `--period` is not given.
    #[serde(default = "default_period")]
    pub period: PeriodKind,
    /// The control-plane database: tenants, contacts, quotas. Required: it says who the
    /// tenants are.
    pub postgres: PostgresSource,
    /// API usage from the gateway's metrics.
    #[serde(default)]
    pub prometheus: Option<PrometheusSource>,
    /// Kafka Connect connectors per department.
    #[serde(default)]
    pub kafka_connect: Option<ConnectSource>,
    /// Cloud and cluster resources per tenant (the shared inventory).
    #[serde(default)]
    pub inventory: Option<InventorySource>,
    /// Quota thresholds.
    #[serde(default)]
    pub quotas: QuotaSettings,
    /// What is rendered and sent.
    #[serde(default)]
    pub reports: ReportSettings,
}

fn default_period() -> PeriodKind {
    PeriodKind::Weekly
}

/// How a connection to PostgreSQL is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostgresTls {
    /// TLS required, the server's certificate verified against the webpki roots and `ca_file`.
    #[default]
    Verify,
    /// No TLS: only for a database on the same host or a test cluster.
    Off,
}

/// The control-plane PostgreSQL database (schema: `migrations/`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// Server host name (also the name its certificate must carry).
    pub host: String,
    /// Port.
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// Database name.
    pub dbname: String,
    /// A role with `SELECT` on the schema's tables (the job never writes).
    pub user: String,
    /// File holding the password (a mounted Secret); or `GOV_CONTROL_PLANE_PASSWORD`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Transport security.
    #[serde(default)]
    pub tls: PostgresTls,
    /// Extra PEM roots for the server's certificate (a private CA); relative to the config file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connect timeout, and the `statement_timeout` of every query.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_pg_port() -> u16 {
    5432
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Which label of the gateway's metrics names who made a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The metrics carry the tenant's slug: Prometheus aggregates per tenant.
    #[default]
    Tenant,
    /// The metrics carry the application's slug: we fetch per application and sum per tenant
    /// (the applications table maps them), buckets included, and compute quantiles ourselves.
    Application,
}

/// The Prometheus HTTP API holding the gateway's metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: HttpUrl,
    /// Timeout of each query.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Which label says who made a call.
    #[serde(default)]
    pub group_by: GroupBy,
    /// Label names.
    #[serde(default)]
    pub labels: LabelNames,
    /// Metric names.
    #[serde(default)]
    pub metrics: MetricNames,
}

/// Label names of the gateway's metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelNames {
    /// The tenant's slug (`group_by: tenant`). Default `tenant`.
    #[serde(default = "default_tenant_label")]
    pub tenant: String,
    /// The application's slug (`group_by: application`). Default `application`.
    #[serde(default = "default_application_label")]
    pub application: String,
}

fn default_tenant_label() -> String {
    "tenant".to_string()
}
fn default_application_label() -> String {
    "application".to_string()
}

impl Default for LabelNames {
    fn default() -> Self {
        LabelNames {
            tenant: default_tenant_label(),
            application: default_application_label(),
        }
    }
}

/// Metric names of the gateway (and of this job's own history).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricNames {
    /// Counter of requests. Default `gateway_requests_total`.
    #[serde(default = "default_requests")]
    pub requests: String,
    /// The label matchers that make a request failed, e.g. `code=~"5.."`.
    #[serde(default = "default_failed")]
    pub failed_selector: String,
    /// Counter of request bytes received. Default `gateway_request_bytes_total`.
    #[serde(default = "default_bytes_in")]
    pub bytes_in: String,
    /// Counter of response bytes sent. Default `gateway_response_bytes_total`.
    #[serde(default = "default_bytes_out")]
    pub bytes_out: String,
    /// Histogram of request latency in seconds (its base name, without `_bucket`). Default
    /// `gateway_request_duration_seconds`.
    #[serde(default = "default_latency")]
    pub latency: String,
    /// Where the count forecasts find the daily history of resource usage: this job's own
    /// `tenant_quota_used` gauge, scraped from the Pushgateway.
    #[serde(default = "default_history")]
    pub quota_history: String,
}

fn default_requests() -> String {
    "gateway_requests_total".to_string()
}
fn default_failed() -> String {
    r#"code=~"5..""#.to_string()
}
fn default_bytes_in() -> String {
    "gateway_request_bytes_total".to_string()
}
fn default_bytes_out() -> String {
    "gateway_response_bytes_total".to_string()
}
fn default_latency() -> String {
    "gateway_request_duration_seconds".to_string()
}
fn default_history() -> String {
    "tenant_quota_used".to_string()
}

impl Default for MetricNames {
    fn default() -> Self {
        MetricNames {
            requests: default_requests(),
            failed_selector: default_failed(),
            bytes_in: default_bytes_in(),
            bytes_out: default_bytes_out(),
            latency: default_latency(),
            quota_history: default_history(),
        }
    }
}

/// The Kafka Connect REST API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSource {
    /// Base URL of a Connect worker, e.g. `http://connect.kafka:8083`.
    pub url: HttpUrl,
    /// Request timeout.
    #[serde(default = "default_connect_timeout")]
    pub timeout: HumanDuration,
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// The shared inventory: which kinds and where (the `aws:` and `kubernetes:` sections say how
/// to connect).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySource {
    /// List every (account, region) of the `aws:` section.
    #[serde(default)]
    pub aws: bool,
    /// List namespaces (and namespaced objects) of the `kubernetes:` cluster: the inventory's
    /// own section (`annotation_prefix`, `namespace_selector`, `kinds`, `object_selector`).
    #[serde(default)]
    pub kubernetes: Option<inventory::KubeSource>,
    /// The tag (AWS) or annotation (Kubernetes, under `annotation_prefix`) naming the project.
    #[serde(default = "default_project_tag")]
    pub project_tag: String,
}

fn default_project_tag() -> String {
    "project".to_string()
}

/// When a quota is worth a warning.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// `quota_near` (warning) from this share of the limit; default 0.8.
    #[serde(default = "default_near")]
    pub near_ratio: f64,
}

fn default_near() -> f64 {
    0.8
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            near_ratio: default_near(),
        }
    }
}

/// Rendering and sending.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Render PDFs for daily runs too (weekly and explicit periods always get one).
    #[serde(default)]
    pub daily_pdf: bool,
    /// Send tenants their report on daily runs even without a quota warning (weekly and explicit
    /// periods always go to every tenant with contacts).
    #[serde(default)]
    pub daily_email: bool,
    /// Where PDFs and CSVs are written when `--out-dir` is not given; none: not written.
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
}

/// A Prometheus metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (labels: no `:`).
fn valid_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    matches!(chars.next(), Some(c) if ok_first(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

impl UsageConfig {
    /// Cross-field problems, each as `(field, message)`; empty when valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let q = &self.quotas;
        if !(q.near_ratio > 0.0 && q.near_ratio < 1.0) {
            problems.push((
                "job.quotas.near_ratio".into(),
                format!("expected a share between 0 and 1, got {}", q.near_ratio),
            ));
        }
        if self.postgres.host.trim().is_empty() {
            problems.push(("job.postgres.host".into(), "must not be empty".into()));
        }
        if self.postgres.timeout.0.is_zero() {
            problems.push((
                "job.postgres.timeout".into(),
                "must be longer than 0s".into(),
            ));
        }
        if let Some(p) = &self.prometheus {
            if p.timeout.0.is_zero() {
                problems.push((
                    "job.prometheus.timeout".into(),
                    "must be longer than 0s".into(),
                ));
            }
            let m = &p.metrics;
            for (field, name) in [
                ("requests", &m.requests),
                ("bytes_in", &m.bytes_in),
                ("bytes_out", &m.bytes_out),
                ("latency", &m.latency),
                ("quota_history", &m.quota_history),
            ] {
                if !valid_name(name, true) {
                    problems.push((
                        format!("job.prometheus.metrics.{field}"),
                        format!("not a Prometheus metric name: {name:?}"),
                    ));
                }
            }
            for (field, name) in [
                ("tenant", &p.labels.tenant),
                ("application", &p.labels.application),
            ] {
                if !valid_name(name, false) || name == "le" {
                    problems.push((
                        format!("job.prometheus.labels.{field}"),
                        format!("not a usable label name: {name:?}"),
                    ));
                }
            }
            // The selector goes inside `{…}` of a query: it must not close the braces.
            let sel = &m.failed_selector;
            if sel.trim().is_empty() || sel.contains(['{', '}']) {
                problems.push((
                    "job.prometheus.metrics.failed_selector".into(),
                    format!("expected label matchers such as code=~\"5..\", got {sel:?}"),
                ));
            }
        }
        if let Some(c) = &self.kafka_connect
            && c.timeout.0.is_zero()
        {
            problems.push((
                "job.kafka_connect.timeout".into(),
                "must be longer than 0s".into(),
            ));
        }
        if let Some(i) = &self.inventory {
            if !i.aws && i.kubernetes.is_none() {
                problems.push((
                    "job.inventory".into(),
                    "enable aws or kubernetes (or remove the section)".into(),
                ));
            }
            if let Some(k) = &i.kubernetes {
                for p in k.validate() {
                    let (field, message) = p.split_once(": ").unwrap_or(("", p.as_str()));
                    problems.push((
                        format!("job.inventory.kubernetes.{field}"),
                        message.to_string(),
                    ));
                }
            }
            if i.project_tag.trim().is_empty() {
                problems.push((
                    "job.inventory.project_tag".into(),
                    "must not be empty".into(),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<UsageConfig, common::Error> {
        common::config::parse_str(yaml, "test.yaml")
    }

    const MINIMAL: &str = "postgres: {host: db, dbname: cp, user: reader}\n";

    #[test]
    fn defaults() {
        let c = parse(MINIMAL).expect("parse");
        assert_eq!(c.period, PeriodKind::Weekly);
        assert_eq!(c.postgres.port, 5432);
        assert_eq!(c.postgres.tls, PostgresTls::Verify);
        assert_eq!(c.quotas.near_ratio, 0.8);
        let m = MetricNames::default();
        assert_eq!(m.failed_selector, "code=~\"5..\"");
        assert!(c.prometheus.is_none() && c.kafka_connect.is_none() && c.inventory.is_none());
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn names_that_would_break_a_query_are_refused() {
        let c = parse(&format!(
            "{MINIMAL}prometheus:\n  url: http://p:9090\n  metrics: {{requests: 'a b', failed_selector: 'x=\"1\"}} or up{{'}}\n  labels: {{tenant: le}}\nquotas: {{near_ratio: 1.5}}\n"
        ))
        .expect("parse");
        let fields: Vec<String> = c.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "job.quotas.near_ratio",
                "job.prometheus.metrics.requests",
                "job.prometheus.labels.tenant",
                "job.prometheus.metrics.failed_selector"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = parse(&format!("{MINIMAL}reports: {{dayly_pdf: true}}\n")).expect_err("typo");
        assert!(e.to_string().contains("dayly_pdf"), "{e}");
        let e = parse("prometheus: {url: http://p}\n").expect_err("no postgres");
        assert!(e.to_string().contains("postgres"), "{e}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/usage-reporting.yaml");
        let c: common::config::JobConfig<UsageConfig> =
            common::config::load_job_config(&path).expect("examples/usage-reporting.yaml");
        assert!(c.job.validate().is_empty(), "{:?}", c.job.validate());
        let p = c.job.prometheus.as_ref().expect("prometheus");
        assert_eq!(p.group_by, GroupBy::Tenant);
        assert!(c.job.kafka_connect.is_some());
        let i = c.job.inventory.as_ref().expect("inventory");
        assert!(i.aws && i.kubernetes.is_some());
        assert_eq!(
            c.notify.email_to.len(),
            1,
            "the platform summary's recipients"
        );
    }
}
