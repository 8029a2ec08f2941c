//! The job's metric families, set from the [`TenantReport`]s (the numbers the PDFs show).
//!
//! All are gauges of the last run (the Pushgateway keeps the last push; counters of pushed runs
//! never increase). `tenant_quota_used{tenant,resource}` doubles as the history the count
//! forecasts read back from Prometheus after it scraped the Pushgateway.

use std::sync::atomic::AtomicU64;

use common::metrics::{Labels, Metrics};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::report::TenantReport;

type F64Gauge = Family<Labels, Gauge<f64, AtomicU64>>;

/// The families this job pushes.
#[derive(Debug, Default, Clone)]
pub struct ReportMetrics {
    ratio: F64Gauge,
    used: F64Gauge,
    limit: F64Gauge,
    exceeded: F64Gauge,
    calls: F64Gauge,
    failed: F64Gauge,
    error_ratio: F64Gauge,
    bandwidth: F64Gauge,
    latency: F64Gauge,
    connectors: F64Gauge,
    tasks: F64Gauge,
    tenants: F64Gauge,
    source_up: F64Gauge,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl ReportMetrics {
    /// Registers every family.
    pub fn register(&self, metrics: &mut Metrics) {
        let r = metrics.registry_mut();
        let families: [(&str, &str, &F64Gauge); 13] = [
            (
                "tenant_quota_usage_ratio",
                "Used share of a quota (absent without a limit or with a limit of 0)",
                &self.ratio,
            ),
            (
                "tenant_quota_used",
                "Current usage of a quota (month to date for monthly quotas)",
                &self.used,
            ),
            ("tenant_quota_limit", "The quota's limit", &self.limit),
            (
                "tenant_quota_exceeded",
                "1 when usage is above the limit",
                &self.exceeded,
            ),
            (
                "tenant_api_calls",
                "Requests in the reported period",
                &self.calls,
            ),
            (
                "tenant_api_failed_calls",
                "Failed requests in the reported period",
                &self.failed,
            ),
            (
                "tenant_api_error_ratio",
                "Failed / all requests in the reported period",
                &self.error_ratio,
            ),
            (
                "tenant_bandwidth_bytes",
                "Bytes in the reported period by direction",
                &self.bandwidth,
            ),
            (
                "tenant_api_latency_seconds",
                "Latency in the reported period: avg, p50, p95, p99",
                &self.latency,
            ),
            (
                "tenant_connect_connectors",
                "Kafka Connect connectors of the department by state",
                &self.connectors,
            ),
            (
                "tenant_connect_tasks",
                "Kafka Connect tasks of the department by state",
                &self.tasks,
            ),
            (
                "usage_report_tenants",
                "Tenants reported by the run",
                &self.tenants,
            ),
            (
                "usage_report_source_up",
                "1 when the source was read, 0 when it failed",
                &self.source_up,
            ),
        ];
        for (name, help, family) in families {
            r.register(name, help, family.clone());
        }
    }

    /// Sets every tenant's series from its report; `window` is the period's length (`7d`).
    pub fn record(&self, reports: &[TenantReport], window: &str) {
        self.tenants
            .get_or_create(&Vec::new())
            .set(reports.len() as f64);
        for r in reports {
            let t = r.tenant.slug.as_str();
            for q in &r.quotas {
                let l = labels(&[("tenant", t), ("resource", &q.dimension)]);
                self.used.get_or_create(&l).set(q.used);
                if let Some(limit) = q.limit {
                    self.limit.get_or_create(&l).set(limit);
                }
                if let Some(ratio) = q.ratio {
                    self.ratio.get_or_create(&l).set(ratio);
                }
                self.exceeded.get_or_create(&l).set(
                    if q.state == crate::quota::QuotaState::Exceeded {
                        1.0
                    } else {
                        0.0
                    },
                );
            }
            if let Some(a) = &r.api {
                let l = labels(&[("tenant", t), ("window", window)]);
                self.calls.get_or_create(&l).set(a.calls as f64);
                self.failed.get_or_create(&l).set(a.failed as f64);
                self.error_ratio.get_or_create(&l).set(a.error_rate);
                for (direction, bytes) in [("in", a.bytes_in), ("out", a.bytes_out)] {
                    self.bandwidth
                        .get_or_create(&labels(&[
                            ("tenant", t),
                            ("direction", direction),
                            ("window", window),
                        ]))
                        .set(bytes as f64);
                }
            }
            if let Some(l) = &r.latency {
                let mut stats: Vec<(String, f64)> = l
                    .percentiles
                    .iter()
                    .map(|(k, q)| (k.clone(), q.value))
                    .collect();
                if let Some(avg) = l.avg_seconds {
                    stats.push(("avg".to_string(), avg));
                }
                for (stat, v) in stats {
                    self.latency
                        .get_or_create(&labels(&[
                            ("tenant", t),
                            ("stat", &stat),
                            ("window", window),
                        ]))
                        .set(v);
                }
            }
            for (family, by) in [
                (&self.connectors, &r.connect.connectors_by_state),
                (&self.tasks, &r.connect.tasks_by_state),
            ] {
                for (state, n) in by {
                    family
                        .get_or_create(&labels(&[("tenant", t), ("state", state)]))
                        .set(*n as f64);
                }
            }
        }
    }

    /// Records whether each configured source was read.
    pub fn source(&self, source: &str, up: bool) {
        self.source_up
            .get_or_create(&labels(&[("source", source)]))
            .set(if up { 1.0 } else { 0.0 });
    }
}
