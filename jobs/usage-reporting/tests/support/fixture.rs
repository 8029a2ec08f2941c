//! The known world the tests and the benchmark report on: tenants in the control plane, a raw
//! population of requests (latency, failure, bytes per request) turned into the gateway's
//! counters and histograms as Prometheus would have scraped them, Kafka Connect connectors, and
//! the job's own resource history.
//!
//! Everything is deterministic (a fixed LCG per tenant and application), and the raw population
//! is kept, so a test knows the true totals and the true P95 of any window.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use testbed::kafka_connect::ConnectorSpec;
use testbed::prometheus::{MetricType, OpenMetrics};

/// Prometheus' default histogram buckets (client libraries' `DefBuckets`).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Metric names of the fixture's gateway (the job's defaults).
pub const REQUESTS: &str = "gateway_requests_total";
/// Request bytes.
pub const BYTES_IN: &str = "gateway_request_bytes_total";
/// Response bytes.
pub const BYTES_OUT: &str = "gateway_response_bytes_total";
/// Latency histogram.
pub const LATENCY: &str = "gateway_request_duration_seconds";

/// One request of the raw population.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    /// The sample (scrape) time whose interval `(t - step, t]` holds it.
    pub t: i64,
    /// Index of the application in its tenant.
    pub app: usize,
    /// Latency, seconds.
    pub latency: f64,
    /// Failed (code 500) or not (200).
    pub failed: bool,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
}

/// One tenant of the fixture.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// Slug (the `tenant` label).
    pub slug: String,
    /// Name for people.
    pub name: String,
    /// Kafka Connect prefix.
    pub department: String,
    /// Contacts.
    pub contacts: Vec<String>,
    /// Whether the gateway has series for it at all.
    pub has_metrics: bool,
    /// Whether any of its requests fail (without: no `code="500"` series exists).
    pub has_errors: bool,
    /// The sample index at which its first application restarts (counters back to 0).
    pub reset_at: Option<i64>,
    /// Its quota overrides.
    pub quotas: Vec<(String, f64)>,
    /// Its connectors: `(name suffix, state, task states)`.
    pub connectors: Vec<(String, String, Vec<String>)>,
}

impl TenantSpec {
    /// A plain tenant with metrics, errors, one contact, no overrides, no connectors.
    pub fn new(slug: &str, name: &str) -> TenantSpec {
        TenantSpec {
            slug: slug.to_string(),
            name: name.to_string(),
            department: slug.to_string(),
            contacts: vec![format!("owner@{slug}.example.com")],
            has_metrics: true,
            has_errors: true,
            reset_at: None,
            quotas: Vec::new(),
            connectors: Vec::new(),
        }
    }

    /// Its two applications: a fast, busy web front end and a slow batch client.
    pub fn applications(&self) -> [String; 2] {
        [format!("{}-web", self.slug), format!("{}-batch", self.slug)]
    }
}

/// The whole fixture.
#[derive(Debug, Clone)]
pub struct World {
    /// First sample (unix seconds, UTC midnight).
    pub start: i64,
    /// Seconds between samples.
    pub step: i64,
    /// Number of intervals (samples are `0..=intervals`).
    pub intervals: i64,
    /// The tenants.
    pub tenants: Vec<TenantSpec>,
    /// The raw population per tenant slug.
    pub calls: BTreeMap<String, Vec<Call>>,
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The truth over a window `(from, to]` of sample times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    /// Requests.
    pub calls: u64,
    /// Failed requests.
    pub failed: u64,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// Every latency, sorted.
    pub latencies: Vec<f64>,
    /// Latencies per application index, sorted.
    pub per_app: BTreeMap<usize, Vec<f64>>,
    /// Requests per day `(day end, calls, failed)`.
    pub daily: BTreeMap<i64, (u64, u64)>,
}

impl Truth {
    /// Nearest-rank quantile of all latencies.
    pub fn quantile(&self, q: f64) -> f64 {
        nearest_rank(&self.latencies, q)
    }
}

/// Nearest-rank quantile of sorted `v`.
pub fn nearest_rank(v: &[f64], q: f64) -> f64 {
    let n = v.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    v[rank - 1]
}

/// The default bucket `(lower, upper]` holding `v`.
pub fn bucket_of(v: f64) -> (f64, f64) {
    let mut lower = 0.0;
    for b in BUCKETS {
        if v <= b {
            return (lower, b);
        }
        lower = b;
    }
    (lower, f64::INFINITY)
}

impl World {
    /// Generates the population for `tenants` over `intervals` samples of `step` seconds from
    /// `start`.
    pub fn generate(start: i64, step: i64, intervals: i64, tenants: Vec<TenantSpec>) -> World {
        let mut calls = BTreeMap::new();
        for (ti, t) in tenants.iter().enumerate() {
            if !t.has_metrics {
                continue;
            }
            let mut list = Vec::new();
            let mut rng = [
                Lcg(0x9e37_79b9 ^ (ti as u64 * 7919)),
                Lcg(0x7f4a_7c15 ^ (ti as u64 * 104_729)),
            ];
            let mut j: u64 = 0;
            for k in 1..=intervals {
                let t_k = start + k * step;
                for (app, lcg) in rng.iter_mut().enumerate() {
                    // The restarted application served nothing in the interval of its restart:
                    // every counter of it then reads 0, below its value before, so Prometheus
                    // sees the reset.
                    if app == 0 && t.reset_at == Some(k) {
                        continue;
                    }
                    let n = if app == 0 { 4 + k % 5 } else { 1 + k % 3 };
                    for _ in 0..n {
                        j += 1;
                        let u = lcg.next();
                        let latency = if app == 0 {
                            0.004 + 0.2 * u * u
                        } else {
                            0.2 + 1.5 * u
                        };
                        let failed =
                            t.has_errors && j.is_multiple_of(if app == 0 { 7 } else { 11 });
                        list.push(Call {
                            t: t_k,
                            app,
                            latency,
                            failed,
                            bytes_in: 300 + 17 * (j % 11),
                            bytes_out: 2_000 + 131 * (j % 17),
                        });
                    }
                }
            }
            calls.insert(t.slug.clone(), list);
        }
        World {
            start,
            step,
            intervals,
            tenants,
            calls,
        }
    }

    /// The last sample time.
    pub fn end(&self) -> i64 {
        self.start + self.intervals * self.step
    }

    /// What happened for `slug` in `(from, to]`.
    pub fn truth(&self, slug: &str, from: i64, to: i64) -> Truth {
        let mut out = Truth::default();
        for c in self.calls.get(slug).into_iter().flatten() {
            if c.t <= from || c.t > to {
                continue;
            }
            out.calls += 1;
            out.failed += u64::from(c.failed);
            out.bytes_in += c.bytes_in;
            out.bytes_out += c.bytes_out;
            out.latencies.push(c.latency);
            out.per_app.entry(c.app).or_default().push(c.latency);
            let day_end = from + ((c.t - from + 86_399) / 86_400) * 86_400;
            let d = out.daily.entry(day_end).or_default();
            d.0 += 1;
            d.1 += u64::from(c.failed);
        }
        out.latencies.sort_by(f64::total_cmp);
        for v in out.per_app.values_mut() {
            v.sort_by(f64::total_cmp);
        }
        out
    }

    /// The gateway's metrics as scraped at every sample time, as OpenMetrics for promtool.
    pub fn openmetrics(&self) -> OpenMetrics {
        let mut om = OpenMetrics::new();
        let times: Vec<i64> = (0..=self.intervals)
            .map(|k| self.start + k * self.step)
            .collect();
        // Per (tenant, app): cumulative values at each sample, reset-aware.
        struct Series {
            requests: [Vec<f64>; 2],
            bytes: [Vec<f64>; 2],
            buckets: Vec<Vec<f64>>,
            sum: Vec<f64>,
            count: Vec<f64>,
        }
        let mut all: Vec<(&TenantSpec, usize, Series)> = Vec::new();
        for t in &self.tenants {
            let Some(calls) = self.calls.get(&t.slug) else {
                continue;
            };
            for app in 0..2 {
                let mut s = Series {
                    requests: [Vec::new(), Vec::new()],
                    bytes: [Vec::new(), Vec::new()],
                    buckets: vec![Vec::new(); BUCKETS.len() + 1],
                    sum: Vec::new(),
                    count: Vec::new(),
                };
                let mut req = [0.0; 2];
                let mut bytes = [0.0; 2];
                let mut buckets = vec![0.0; BUCKETS.len() + 1];
                let mut sum = 0.0;
                let mut count = 0.0;
                let mut it = calls.iter().filter(|c| c.app == app).peekable();
                for (k, time) in times.iter().enumerate() {
                    if app == 0 && t.reset_at == Some(k as i64) {
                        req = [0.0; 2];
                        bytes = [0.0; 2];
                        buckets.iter_mut().for_each(|b| *b = 0.0);
                        sum = 0.0;
                        count = 0.0;
                    }
                    while let Some(c) = it.next_if(|c| c.t == *time) {
                        req[usize::from(c.failed)] += 1.0;
                        bytes[0] += c.bytes_in as f64;
                        bytes[1] += c.bytes_out as f64;
                        for (i, b) in BUCKETS.iter().enumerate() {
                            if c.latency <= *b {
                                buckets[i] += 1.0;
                            }
                        }
                        buckets[BUCKETS.len()] += 1.0;
                        sum += c.latency;
                        count += 1.0;
                    }
                    for x in 0..2 {
                        s.requests[x].push(req[x]);
                        s.bytes[x].push(bytes[x]);
                    }
                    for (i, b) in buckets.iter().enumerate() {
                        s.buckets[i].push(*b);
                    }
                    s.sum.push(sum);
                    s.count.push(count);
                }
                all.push((t, app, s));
            }
        }
        om.family("gateway_requests", MetricType::Counter);
        for (t, app, s) in &all {
            let apps = t.applications();
            for (code, values) in [("200", &s.requests[0]), ("500", &s.requests[1])] {
                if code == "500" && !t.has_errors {
                    continue;
                }
                for (time, v) in times.iter().zip(values.iter()) {
                    om.sample(
                        REQUESTS,
                        &[
                            ("tenant", &t.slug),
                            ("application", &apps[*app]),
                            ("code", code),
                        ],
                        *v,
                        *time,
                    );
                }
            }
        }
        for (family, name, x) in [
            ("gateway_request_bytes", BYTES_IN, 0),
            ("gateway_response_bytes", BYTES_OUT, 1),
        ] {
            om.family(family, MetricType::Counter);
            for (t, app, s) in &all {
                let apps = t.applications();
                for (time, v) in times.iter().zip(s.bytes[x].iter()) {
                    om.sample(
                        name,
                        &[("tenant", &t.slug), ("application", &apps[*app])],
                        *v,
                        *time,
                    );
                }
            }
        }
        om.family(LATENCY, MetricType::Histogram);
        for (t, app, s) in &all {
            let apps = t.applications();
            let labels = [
                ("tenant", t.slug.as_str()),
                ("application", apps[*app].as_str()),
            ];
            for (k, time) in times.iter().enumerate() {
                for (i, values) in s.buckets.iter().enumerate() {
                    let le = BUCKETS
                        .get(i)
                        .map_or("+Inf".to_string(), |b| format!("{b}"));
                    om.sample(
                        &format!("{LATENCY}_bucket"),
                        &[labels[0], labels[1], ("le", &le)],
                        values[k],
                        *time,
                    );
                }
                om.sample(&format!("{LATENCY}_sum"), &labels, s.sum[k], *time);
                om.sample(&format!("{LATENCY}_count"), &labels, s.count[k], *time);
            }
        }
        om
    }

    /// The job's own `tenant_quota_used` gauge over the last `days` days up to the end, one
    /// sample per 6 hours: `(slug, dimension, value per day index 0..days)`.
    pub fn history(&self, om: &mut OpenMetrics, series: &[(&str, &str, Vec<f64>)]) {
        om.family("tenant_quota_used", MetricType::Gauge);
        for (slug, dimension, per_day) in series {
            let days = per_day.len() as i64;
            for (d, v) in per_day.iter().enumerate() {
                let day_start = self.end() - (days - d as i64) * 86_400;
                for h in 1..=4 {
                    om.sample(
                        "tenant_quota_used",
                        &[("tenant", slug), ("resource", dimension)],
                        *v,
                        day_start + h * 21_600 - 1,
                    );
                }
            }
        }
    }

    /// SQL inserting the tenants, their contacts, APIs, applications, users, subscriptions and
    /// quota overrides, and a read-only role `usage_reader` with `password`.
    pub fn control_plane_sql(&self, password: &str) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut sql = String::new();
        for t in &self.tenants {
            let _ = writeln!(
                sql,
                "INSERT INTO tenants (slug, name, department, project) VALUES ({}, {}, {}, {});",
                q(&t.slug),
                q(&t.name),
                q(&t.department),
                q(&t.slug)
            );
            let id = format!("(SELECT id FROM tenants WHERE slug = {})", q(&t.slug));
            for c in &t.contacts {
                let _ = writeln!(
                    sql,
                    "INSERT INTO tenant_contacts (tenant_id, email) VALUES ({id}, {});",
                    q(c)
                );
            }
            let _ = writeln!(
                sql,
                "INSERT INTO apis (tenant_id, slug, name) VALUES ({id}, {}, 'Orders API');",
                q(&format!("{}-orders", t.slug))
            );
            for app in t.applications() {
                let _ = writeln!(
                    sql,
                    "INSERT INTO applications (tenant_id, slug, name) VALUES ({id}, {}, {});",
                    q(&app),
                    q(&app)
                );
                let _ = writeln!(
                    sql,
                    "INSERT INTO subscriptions (application_id, api_id) SELECT a.id, p.id FROM applications a, apis p \
                     WHERE a.slug = {} AND p.slug = {};",
                    q(&app),
                    q(&format!("{}-orders", t.slug))
                );
            }
            for u in 0..3 {
                let _ = writeln!(
                    sql,
                    "INSERT INTO users (tenant_id, email, active) VALUES ({id}, {}, {});",
                    q(&format!("user{u}@{}.example.com", t.slug)),
                    u < 2
                );
            }
            for (dimension, limit) in &t.quotas {
                let _ = writeln!(
                    sql,
                    "INSERT INTO tenant_quotas (tenant_id, dimension, limit_value) VALUES ({id}, {}, {limit});",
                    q(dimension)
                );
            }
        }
        let _ = writeln!(
            sql,
            "CREATE ROLE usage_reader LOGIN PASSWORD {};\nGRANT SELECT ON ALL TABLES IN SCHEMA public TO usage_reader;",
            q(password)
        );
        sql
    }

    /// The Kafka Connect connectors of every tenant, plus one without a department prefix.
    pub fn connectors(&self) -> Vec<ConnectorSpec> {
        let mut out: Vec<ConnectorSpec> = self
            .tenants
            .iter()
            .flat_map(|t| {
                t.connectors.iter().map(move |(suffix, state, tasks)| {
                    let tasks: Vec<&str> = tasks.iter().map(String::as_str).collect();
                    ConnectorSpec::new(&format!("{}.{suffix}", t.department), "sink", state, &tasks)
                })
            })
            .collect();
        out.push(ConnectorSpec::new(
            "legacy-export",
            "source",
            "RUNNING",
            &["RUNNING"],
        ));
        out
    }
}
