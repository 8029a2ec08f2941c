//! The one value per tenant: [`TenantReport`]. The PDF, the email, the CSV, the
//! `tenant-usage-report` event, the findings and the metrics are all rendered from it, so they
//! cannot disagree: every figure is computed here once, and the summary table's cells are
//! formatted here once ([`Row`]) and printed as they are by every renderer.

use std::collections::BTreeMap;

use common::event::{Finding, Severity};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::connect::{Connector, Health};
use crate::controlplane::{ControlPlane, Tenant};
use crate::forecast::{self, fmt_num};
use crate::histogram::Quantile;
use crate::period::{Period, PeriodKind, utc_date};
use crate::prometheus::{ApiUsage, QUANTILES, QueryNote, TenantApi};
use crate::quota::{Measure, QuotaKind, QuotaState, QuotaUse, ResourceUsage, label_of};

/// Rate quota: requests per calendar month.
pub const API_CALLS_PER_MONTH: &str = "api_calls_per_month";
/// Rate quota: bytes in + out per calendar month, in GB.
pub const BANDWIDTH_GB_PER_MONTH: &str = "bandwidth_gb_per_month";
/// Count quota: Kafka Connect connectors of the department.
pub const KAFKA_CONNECTORS: &str = "kafka_connectors";
/// Count quota: tasks of those connectors.
pub const KAFKA_CONNECT_TASKS: &str = "kafka_connect_tasks";

/// The state of one source for one report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SourceState {
    /// Not in the config.
    NotConfigured,
    /// Configured, but reading it failed (the run is partial).
    Failed {
        /// One line.
        error: String,
    },
    /// Read.
    Ok,
}

/// Who the report is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantInfo {
    /// Machine name.
    pub slug: String,
    /// Name for people.
    pub name: String,
    /// Kafka Connect prefix.
    pub department: String,
    /// `project` tag of its resources.
    pub project: String,
    /// Report recipients.
    pub contacts: Vec<String>,
}

/// The period, with its label for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodInfo {
    /// daily, weekly, custom.
    pub kind: PeriodKind,
    /// Inclusive start (UTC midnight).
    pub start: Timestamp,
    /// Exclusive end (UTC midnight): the instant every query is evaluated at.
    pub end: Timestamp,
    /// Whole days.
    pub days: i64,
    /// `2026-11-23 to 2026-11-29 (UTC, 7 days)`.
    pub label: String,
}

/// What the control plane counts for the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ControlPlaneCounts {
    /// APIs it publishes.
    pub apis: u64,
    /// Its applications.
    pub applications: u64,
    /// Active users.
    pub users: u64,
    /// Active subscriptions.
    pub subscriptions: u64,
}

/// API usage over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiFigures {
    /// Requests.
    pub calls: u64,
    /// Requests that did not fail.
    pub successful: u64,
    /// Failed requests.
    pub failed: u64,
    /// `failed / calls` (0 without calls).
    pub error_rate: f64,
    /// Request bytes received.
    pub bytes_in: u64,
    /// Response bytes sent.
    pub bytes_out: u64,
    /// `bytes_in / 10⁶`.
    pub mb_in: f64,
    /// `bytes_out / 10⁶`.
    pub mb_out: f64,
}

/// Latency over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Observations.
    pub observations: u64,
    /// Mean, seconds (`sum / count`).
    pub avg_seconds: Option<f64>,
    /// Percentiles with their buckets: `p50`, `p95`, `p99`.
    pub percentiles: BTreeMap<String, Quantile>,
}

/// One day of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// UTC date.
    pub date: Date,
    /// Requests (None: no data that day).
    pub calls: Option<u64>,
    /// Failed requests.
    pub failed: Option<u64>,
}

/// Which part of the report a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// API usage over the period.
    Api,
    /// Monthly rate quotas.
    Rate,
    /// Cloud and cluster resources.
    Resources,
    /// Kafka Connect.
    Connect,
}

/// One row of the summary table, formatted once for every renderer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Where it is shown.
    pub section: Section,
    /// What it is.
    pub metric: String,
    /// The figure.
    pub value: String,
    /// The limit, or `—`.
    pub quota: String,
    /// Used %, or `—`.
    pub used: String,
    /// `ok`, `near`, `exceeded`, `no_quota` or empty for figures without a quota.
    pub state: String,
}

/// One tenant's Kafka Connect health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectSection {
    /// Whether the source was read.
    pub source: SourceState,
    /// Connectors of the department.
    pub connectors: Vec<Connector>,
    /// Connectors by state.
    pub connectors_by_state: BTreeMap<String, u64>,
    /// Tasks by state.
    pub tasks_by_state: BTreeMap<String, u64>,
}

/// Everything one tenant's report says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantReport {
    /// Who.
    pub tenant: TenantInfo,
    /// When.
    pub period: PeriodInfo,
    /// The run's evaluation instant.
    pub evaluated_at: Timestamp,
    /// Control-plane counts.
    pub control_plane: ControlPlaneCounts,
    /// Whether API usage was read.
    pub api_source: SourceState,
    /// API usage; None when not configured, failed, or no data for this tenant.
    pub api: Option<ApiFigures>,
    /// Latency; None without observations.
    pub latency: Option<Latency>,
    /// Requests per day of the period.
    pub daily: Vec<Day>,
    /// Whether resources were read.
    pub resources_source: SourceState,
    /// Kafka Connect.
    pub connect: ConnectSection,
    /// Every quota: rate, resources, connect.
    pub quotas: Vec<QuotaUse>,
    /// The summary table.
    pub table: Vec<Row>,
    /// Data-quality notes (missing data, counter resets, unknown sizes).
    pub notes: Vec<String>,
    /// The exact queries behind the figures.
    pub queries: Vec<QueryNote>,
}

/// What every tenant's report is built from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The period.
    pub period: &'a Period,
    /// The evaluation instant.
    pub evaluated_at: Timestamp,
    /// `quota_near` threshold.
    pub near_ratio: f64,
    /// Tenants and quotas.
    pub control_plane: &'a ControlPlane,
    /// API usage: None = not configured; Err = failed.
    pub api: Option<Result<&'a ApiUsage, String>>,
    /// Resources per project.
    pub resources: Option<Result<&'a ResourceUsage, String>>,
    /// Connect health per department.
    pub connect: Option<Result<&'a BTreeMap<String, Health>, String>>,
}

fn source_state<T>(s: &Option<Result<T, String>>) -> SourceState {
    match s {
        None => SourceState::NotConfigured,
        Some(Err(e)) => SourceState::Failed { error: e.clone() },
        Some(Ok(_)) => SourceState::Ok,
    }
}

fn seconds(v: f64) -> String {
    format!("{v:.3} s")
}

/// `(0.25, 0.5] s`.
pub fn bucket_text(q: &Quantile) -> String {
    let upper = if q.upper.is_finite() {
        format!("{}", q.upper)
    } else {
        "+Inf".to_string()
    };
    let lower = if q.lower.is_finite() {
        format!("{}", q.lower)
    } else {
        "-Inf".to_string()
    };
    format!("({lower}, {upper}] s")
}

fn api_figures(t: &TenantApi) -> ApiFigures {
    let failed = t.failed.min(t.calls);
    ApiFigures {
        calls: t.calls,
        successful: t.calls - failed,
        failed,
        error_rate: if t.calls == 0 {
            0.0
        } else {
            failed as f64 / t.calls as f64
        },
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
        mb_in: t.bytes_in as f64 / 1e6,
        mb_out: t.bytes_out as f64 / 1e6,
    }
}

fn latency(t: &TenantApi) -> Option<Latency> {
    if t.latency_count <= 0.0 {
        return None;
    }
    let percentiles = QUANTILES
        .iter()
        .filter_map(|q| {
            t.quantile(*q)
                .map(|v| (format!("p{}", (q * 100.0).round() as u32), v))
        })
        .collect();
    Some(Latency {
        observations: t.latency_count.round() as u64,
        avg_seconds: Some(t.latency_sum / t.latency_count),
        percentiles,
    })
}

/// Builds `tenant`'s report from the run's inputs.
pub fn build(tenant: &Tenant, inputs: &Inputs<'_>) -> TenantReport {
    let period = inputs.period;
    let cp = inputs.control_plane;
    let as_of = utc_date(period.end);
    let (_, month_end) = period.month();
    let days_left = (month_end.as_second() - period.end.as_second()) / 86_400;
    let mut notes = Vec::new();
    let mut quotas = Vec::new();

    // API usage.
    let api_source = source_state(&inputs.api);
    let api_usage = match &inputs.api {
        Some(Ok(u)) => Some(*u),
        _ => None,
    };
    let tenant_api = api_usage.and_then(|u| u.tenants.get(&tenant.slug));
    let (api, latency, daily) = match (api_usage, tenant_api) {
        (Some(_), Some(t)) if t.seen => {
            let daily = period
                .dates()
                .into_iter()
                .map(|date| {
                    let d = t.daily.get(&date);
                    Day {
                        date,
                        calls: d.map(|d| d.0),
                        failed: d.map(|d| d.1),
                    }
                })
                .collect();
            (Some(api_figures(t)), latency(t), daily)
        }
        (Some(_), _) => {
            notes.push(format!(
                "no API usage series for tenant {} in Prometheus for this period: calls, errors, \
                 bandwidth and latency are unknown, not zero",
                tenant.slug
            ));
            (None, None, Vec::new())
        }
        _ => (None, None, Vec::new()),
    };
    if let Some(t) = tenant_api.filter(|t| t.resets > 0)
        && let Some(start) = api_usage.and_then(|u| u.window_start)
    {
        notes.push(format!(
            "{} counter reset{} between {} and {}: totals stay exact (increase() adds the value \
             before each reset) but the rate forecasts are suppressed",
            t.resets,
            if t.resets == 1 { "" } else { "s" },
            utc_date(start),
            as_of
        ));
    }

    // Rate quotas: only when the tenant's usage is known (an unknown usage has no state).
    if tenant_api.is_some_and(|t| t.seen) {
        let t = tenant_api.cloned().unwrap_or_default();
        // Days before the period's end, oldest first: the forecast takes the last 7.
        let calls_daily: Vec<f64> = t
            .daily
            .iter()
            .filter(|(d, _)| **d < as_of)
            .map(|(_, v)| v.0 as f64)
            .collect();
        let bytes_daily: Vec<f64> = t
            .daily_bytes
            .iter()
            .filter(|(d, _)| **d < as_of)
            .map(|(_, v)| *v as f64 / 1e9)
            .collect();
        for (dimension, label, unit, used, daily) in [
            (
                API_CALLS_PER_MONTH,
                "API calls this month",
                "calls",
                t.month_calls as f64,
                calls_daily,
            ),
            (
                BANDWIDTH_GB_PER_MONTH,
                "bandwidth this month",
                "GB",
                t.month_bytes as f64 / 1e9,
                bytes_daily,
            ),
        ] {
            let limit = cp.limit(tenant, dimension);
            let mut q = QuotaUse::evaluate(
                dimension,
                label,
                unit,
                QuotaKind::Rate,
                used,
                limit,
                inputs.near_ratio,
            );
            q.forecast = forecast::rate(
                used,
                &daily,
                days_left,
                t.resets,
                limit.map(|l| l.value),
                as_of,
            );
            quotas.push(q);
        }
    }

    let history = |dimension: &str| -> Vec<(Date, f64)> {
        api_usage
            .and_then(|u| u.history.get(&(tenant.slug.clone(), dimension.to_string())))
            .cloned()
            .unwrap_or_default()
    };

    // Resource quotas.
    let resources_source = source_state(&inputs.resources);
    if let Some(Ok(r)) = &inputs.resources {
        let used = r.used.get(&tenant.project);
        for (dimension, measure) in &r.dimensions {
            let value = used.and_then(|u| u.get(dimension)).copied().unwrap_or(0.0);
            let limit = cp.limit(tenant, dimension);
            let unit = match measure {
                Measure::Count => "count",
                Measure::SizeGb => "GB",
            };
            let mut q = QuotaUse::evaluate(
                dimension,
                &label_of(dimension),
                unit,
                QuotaKind::Count,
                value,
                limit,
                inputs.near_ratio,
            );
            q.forecast = forecast::count(&history(dimension), value, limit.map(|l| l.value), as_of);
            quotas.push(q);
        }
        for (dimension, why) in &r.missing {
            notes.push(format!(
                "{} could not be counted: {why}",
                label_of(dimension)
            ));
        }
        if let Some(unknown) = r.unknown_size.get(&tenant.project) {
            notes.push(format!(
                "{} resource(s) of unknown size counted as 0 GB: {}",
                unknown.len(),
                unknown.join(", ")
            ));
        }
    }

    // Kafka Connect.
    let connect_source = source_state(&inputs.connect);
    let health = match &inputs.connect {
        Some(Ok(by)) => by.get(&tenant.department).cloned(),
        _ => None,
    };
    let connect = match (&connect_source, health) {
        (SourceState::Ok, h) => {
            let h = h.unwrap_or_default();
            for (dimension, label, used) in [
                (
                    KAFKA_CONNECTORS,
                    "Kafka Connect connectors",
                    h.connector_count(),
                ),
                (KAFKA_CONNECT_TASKS, "Kafka Connect tasks", h.task_count()),
            ] {
                let limit = cp.limit(tenant, dimension);
                let mut q = QuotaUse::evaluate(
                    dimension,
                    label,
                    "count",
                    QuotaKind::Count,
                    used as f64,
                    limit,
                    inputs.near_ratio,
                );
                q.forecast = forecast::count(
                    &history(dimension),
                    used as f64,
                    limit.map(|l| l.value),
                    as_of,
                );
                quotas.push(q);
            }
            let (connectors_by_state, tasks_by_state) = h.by_state();
            ConnectSection {
                source: SourceState::Ok,
                connectors: h.connectors,
                connectors_by_state,
                tasks_by_state,
            }
        }
        (state, _) => ConnectSection {
            source: state.clone(),
            connectors: Vec::new(),
            connectors_by_state: BTreeMap::new(),
            tasks_by_state: BTreeMap::new(),
        },
    };

    for (label, state) in [
        ("API usage", &api_source),
        ("resources", &resources_source),
        ("Kafka Connect", &connect.source),
    ] {
        if let SourceState::Failed { error } = state {
            notes.push(format!("{label} could not be read: {error}"));
        }
    }

    let table = table(&api, &quotas);
    TenantReport {
        tenant: TenantInfo {
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            department: tenant.department.clone(),
            project: tenant.project.clone(),
            contacts: tenant.contacts.iter().map(|e| e.to_string()).collect(),
        },
        period: PeriodInfo {
            kind: period.kind,
            start: period.start,
            end: period.end,
            days: period.days(),
            label: period.to_string(),
        },
        evaluated_at: inputs.evaluated_at,
        control_plane: ControlPlaneCounts {
            apis: tenant.apis,
            applications: tenant.applications.len() as u64,
            users: tenant.users,
            subscriptions: tenant.subscriptions,
        },
        api_source,
        api,
        latency,
        daily,
        resources_source,
        connect,
        quotas,
        table,
        notes,
        queries: api_usage.map(|u| u.queries.clone()).unwrap_or_default(),
    }
}

fn table(api: &Option<ApiFigures>, quotas: &[QuotaUse]) -> Vec<Row> {
    let row = |metric: &str, value: String| Row {
        section: Section::Api,
        metric: metric.to_string(),
        value,
        quota: "—".to_string(),
        used: "—".to_string(),
        state: String::new(),
    };
    let mut rows = Vec::new();
    if let Some(a) = api {
        rows.push(row("API calls", fmt_num(a.calls as f64)));
        rows.push(row("successful", fmt_num(a.successful as f64)));
        rows.push(row("failed", fmt_num(a.failed as f64)));
        rows.push(row(
            "error rate",
            format!("{}%", fmt_num(a.error_rate * 100.0)),
        ));
        rows.push(row("bandwidth in (MB)", fmt_num(a.mb_in)));
        rows.push(row("bandwidth out (MB)", fmt_num(a.mb_out)));
    }
    for q in quotas {
        let unit = match q.unit.as_str() {
            "count" | "calls" => String::new(),
            u => format!(" ({u})"),
        };
        let section = match (q.kind, q.dimension.as_str()) {
            (QuotaKind::Rate, _) => Section::Rate,
            (_, KAFKA_CONNECTORS | KAFKA_CONNECT_TASKS) => Section::Connect,
            _ => Section::Resources,
        };
        rows.push(Row {
            section,
            metric: format!("{}{unit}", q.label),
            value: fmt_num(q.used),
            quota: q.limit_text(),
            used: q.used_percent(),
            state: q.state.as_str().to_string(),
        });
    }
    rows
}

impl TenantReport {
    /// Quotas at or past `near`, worst first.
    pub fn breaches(&self) -> Vec<&QuotaUse> {
        let mut b: Vec<&QuotaUse> = self
            .quotas
            .iter()
            .filter(|q| matches!(q.state, QuotaState::Near | QuotaState::Exceeded))
            .collect();
        b.sort_by(|a, b| b.state.cmp(&a.state).then(a.dimension.cmp(&b.dimension)));
        b
    }

    /// The result event's findings for this tenant: one per quota breach, plus data problems.
    pub fn findings(&self, invalid_contacts: &[String]) -> Vec<Finding> {
        let mut out = Vec::new();
        // The item checked is the tenant (`summary.total_checked` counts tenants): every finding
        // names it, the quota's dimension is a field of its own.
        let tenant = format!("tenant:{}", self.tenant.slug);
        for q in self.breaches() {
            let (kind, severity, verb) = match q.state {
                QuotaState::Exceeded => ("quota_exceeded", Severity::Critical, "exceeds"),
                _ => ("quota_near", Severity::Warning, "is near"),
            };
            let mut f = Finding::new(
                kind,
                severity,
                tenant.clone(),
                format!(
                    "tenant {} {verb} its {} quota: {} of {} ({})",
                    self.tenant.slug,
                    q.label,
                    fmt_num(q.used),
                    q.limit_text(),
                    q.used_percent()
                ),
            )
            .with("tenant", self.tenant.slug.clone())
            .with("dimension", q.dimension.clone())
            .with("used", q.used)
            .with("limit", q.limit)
            .with("contacts", self.tenant.contacts.clone())
            .with("forecast", q.forecast.summary());
            if let Some(r) = q.ratio {
                f = f.with("ratio", r);
            }
            out.push(f);
        }
        if self.api.is_none() && self.api_source == SourceState::Ok {
            out.push(
                Finding::new(
                    "no_usage_data",
                    Severity::Info,
                    format!("tenant:{}", self.tenant.slug),
                    format!(
                        "tenant {} has no API usage series in Prometheus for {}",
                        self.tenant.slug, self.period.label
                    ),
                )
                .with("tenant", self.tenant.slug.clone()),
            );
        }
        if self.tenant.contacts.is_empty() {
            out.push(
                Finding::new(
                    "no_contacts",
                    Severity::Warning,
                    format!("tenant:{}", self.tenant.slug),
                    format!(
                        "tenant {} has no usable contact address: its report is not mailed",
                        self.tenant.slug
                    ),
                )
                .with("tenant", self.tenant.slug.clone()),
            );
        }
        for c in invalid_contacts {
            out.push(
                Finding::new(
                    "invalid_contact",
                    Severity::Warning,
                    format!("tenant:{}", self.tenant.slug),
                    format!(
                        "tenant {} has a contact that is not an email address: {c:?}",
                        self.tenant.slug
                    ),
                )
                .with("tenant", self.tenant.slug.clone()),
            );
        }
        out
    }

    /// The latency rows: `(name, value, bucket)` formatted once.
    pub fn latency_rows(&self) -> Vec<(String, String, String)> {
        let Some(l) = &self.latency else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        if let Some(avg) = l.avg_seconds {
            rows.push(("average".to_string(), seconds(avg), "—".to_string()));
        }
        for (name, q) in &l.percentiles {
            rows.push((name.to_uppercase(), seconds(q.value), bucket_text(q)));
        }
        rows
    }
}

/// What one run found across tenants, for the platform summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Platform {
    /// Connectors with no department prefix or one no tenant has.
    pub unassigned_connectors: Vec<String>,
    /// Calls of applications no tenant owns.
    pub unattributed_calls: BTreeMap<String, u64>,
}
