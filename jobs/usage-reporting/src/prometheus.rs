//! API usage per tenant from the Prometheus HTTP API.
//!
//! Every query is an instant query at the period's end (`/api/v1/query?time=`) over a range of
//! exactly the period (`increase(x[604800s])`), or a range query with one point per day
//! (`/api/v1/query_range`, `step=86400`), so a past period re-renders to the same figures. The
//! queries are kept ([`QueryNote`]) and printed in the report's footnotes.
//!
//! Counters become whole numbers with `round()`: `increase()` is exact when samples sit on the
//! window's edges (and handles counter resets by adding the value before each reset), and off by
//! at most one scrape interval's extrapolation otherwise.
//!
//! With `group_by: application` the queries aggregate `by (application)` and this module sums
//! the applications of each tenant — buckets included, so the quantiles come from the tenant's
//! summed buckets ([`crate::histogram`]), never from an average of quantiles.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::config::{GroupBy, PrometheusSource};
use crate::error::Error;
use crate::histogram::{self, Bucket, Quantile};
use crate::period::{Period, utc_date};

/// One query as it was sent, for the footnotes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryNote {
    /// What the figure is.
    pub what: String,
    /// The PromQL expression.
    pub promql: String,
    /// `time=…` of an instant query, or `start … end step 1d` of a range query.
    pub at: String,
}

/// An instant vector's element.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value (`NaN`/`Inf` as Prometheus sent them).
    pub value: f64,
}

/// A range vector's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` points.
    pub points: Vec<(i64, f64)>,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawVector {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct RawMatrix {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A Prometheus HTTP API client.
#[derive(Debug, Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    url: String,
}

fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl Prometheus {
    /// A client for `url` with a per-request `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Prometheus, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Prometheus {
                url: url.to_string(),
                query: "-".into(),
                message: e.to_string(),
            })?;
        Ok(Prometheus {
            http,
            url: url.to_string(),
        })
    }

    async fn get(&self, path: &str, query: &str, params: &str) -> Result<ApiData, Error> {
        let fail = |message: String| Error::Prometheus {
            url: self.url.clone(),
            query: query.to_string(),
            message,
        };
        let url = format!("{}{path}?query={}&{params}", self.url, encode(query));
        let response = self.http.get(&url).send().await.map_err(|e| {
            fail(if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                format!("cannot connect: {e}")
            } else {
                e.to_string()
            })
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| fail(e.to_string()))?;
        let parsed: ApiResponse = serde_json::from_str(&body).map_err(|_| {
            let snippet: String = body.chars().take(200).collect();
            fail(format!(
                "answered {status} with a body that is not the API's json: {snippet:?}"
            ))
        })?;
        if parsed.status != "success" || !status.is_success() {
            return Err(fail(format!(
                "answered {status}: {}: {}",
                parsed.error_type.as_deref().unwrap_or("error"),
                parsed.error.as_deref().unwrap_or("no message")
            )));
        }
        parsed
            .data
            .ok_or_else(|| fail("answered success without data".into()))
    }

    /// An instant query evaluated at `time`.
    pub async fn instant(&self, query: &str, time: Timestamp) -> Result<Vec<Sample>, Error> {
        let data = self
            .get(
                "/api/v1/query",
                query,
                &format!("time={}", time.as_second()),
            )
            .await?;
        let fail = |message: String| Error::Prometheus {
            url: self.url.clone(),
            query: query.to_string(),
            message,
        };
        if data.result_type != "vector" {
            return Err(fail(format!(
                "expected a vector, got a {}",
                data.result_type
            )));
        }
        let raw: Vec<RawVector> =
            serde_json::from_value(data.result).map_err(|e| fail(format!("vector: {e}")))?;
        Ok(raw
            .into_iter()
            .map(|r| Sample {
                labels: r.metric,
                value: parse_value(&r.value.1),
            })
            .collect())
    }

    /// A range query from `start` to `end` with `step` seconds.
    pub async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: i64,
    ) -> Result<Vec<Series>, Error> {
        let params = format!(
            "start={}&end={}&step={step}",
            start.as_second(),
            end.as_second()
        );
        let data = self.get("/api/v1/query_range", query, &params).await?;
        let fail = |message: String| Error::Prometheus {
            url: self.url.clone(),
            query: query.to_string(),
            message,
        };
        if data.result_type != "matrix" {
            return Err(fail(format!(
                "expected a matrix, got a {}",
                data.result_type
            )));
        }
        let raw: Vec<RawMatrix> =
            serde_json::from_value(data.result).map_err(|e| fail(format!("matrix: {e}")))?;
        Ok(raw
            .into_iter()
            .map(|r| Series {
                labels: r.metric,
                points: r
                    .values
                    .into_iter()
                    .map(|(t, v)| (t as i64, parse_value(&v)))
                    .collect(),
            })
            .collect())
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// One tenant's API usage over the period, and what the forecasts need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantApi {
    /// Whether any request series of the tenant exists in the window (else: no data).
    pub seen: bool,
    /// Requests in the period.
    pub calls: u64,
    /// Failed requests in the period (0 when the tenant has no failed series).
    pub failed: u64,
    /// Request bytes received.
    pub bytes_in: u64,
    /// Response bytes sent.
    pub bytes_out: u64,
    /// Summed latency buckets.
    pub buckets: Vec<Bucket>,
    /// Sum of latencies (seconds).
    pub latency_sum: f64,
    /// Number of latency observations.
    pub latency_count: f64,
    /// P50/P95/P99 as Prometheus computed them (`group_by: tenant`).
    pub prometheus_quantiles: BTreeMap<String, f64>,
    /// Counter resets of the request and byte counters in the forecast window.
    pub resets: u64,
    /// Requests and failures per day: `(date, calls, failed)` for every day with data.
    pub daily: BTreeMap<Date, (u64, u64)>,
    /// Bytes (in + out) per day.
    pub daily_bytes: BTreeMap<Date, u64>,
    /// Requests from the month's start to the period's end.
    pub month_calls: u64,
    /// Bytes from the month's start to the period's end.
    pub month_bytes: u64,
}

impl TenantApi {
    /// The `q` quantile: Prometheus' own when it computed one, else ours from the summed
    /// buckets; with the bucket it falls in.
    pub fn quantile(&self, q: f64) -> Option<Quantile> {
        let ours = histogram::quantile(q, &self.buckets)?;
        match self.prometheus_quantiles.get(&q.to_string()) {
            Some(v) if v.is_finite() => {
                let (lower, upper) =
                    histogram::bucket_of(*v, &self.buckets).unwrap_or((ours.lower, ours.upper));
                Some(Quantile {
                    value: *v,
                    lower,
                    upper,
                })
            }
            _ => Some(ours),
        }
    }
}

/// What the Prometheus source yields for a run.
#[derive(Debug, Clone, Default)]
pub struct ApiUsage {
    /// By tenant slug.
    pub tenants: BTreeMap<String, TenantApi>,
    /// Calls of applications no tenant owns (`group_by: application`), by application.
    pub unattributed: BTreeMap<String, u64>,
    /// Daily maxima of resource usage `(tenant, dimension) → [(date, max)]` (count forecasts).
    pub history: BTreeMap<(String, String), Vec<(Date, f64)>>,
    /// The queries sent.
    pub queries: Vec<QueryNote>,
    /// The forecast window's start (month start or 7 days back, whichever is earlier).
    pub window_start: Option<Timestamp>,
}

/// The quantiles every report shows.
pub const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

const DAY: i64 = 86_400;

fn rounded(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// Runs every query for `period` and sums per tenant. `owners` maps application → tenant slug
/// (used with `group_by: application`); `tenants` are the slugs to report.
pub async fn collect(
    prom: &Prometheus,
    source: &PrometheusSource,
    period: &Period,
    owners: &BTreeMap<&str, &str>,
) -> Result<ApiUsage, Error> {
    let m = &source.metrics;
    let by = match source.group_by {
        GroupBy::Tenant => source.labels.tenant.as_str(),
        GroupBy::Application => source.labels.application.as_str(),
    };
    let w = format!("{}s", period.seconds());
    let end = period.end;
    let at = format!("time={end}");
    let (month_start, _) = period.month();
    let month_secs = end.as_second() - month_start.as_second();
    let week_start = end.as_second() - 7 * DAY;
    let window_start_secs = period
        .start
        .as_second()
        .min(month_start.as_second())
        .min(week_start);
    let window_start = Timestamp::from_second(window_start_secs).unwrap_or(period.start);
    let window = format!("{}s", end.as_second() - window_start_secs);
    let failed = format!("{}{{{}}}", m.requests, m.failed_selector);

    let mut usage = ApiUsage {
        window_start: Some(window_start),
        ..ApiUsage::default()
    };
    let mut queries = Vec::new();
    let mut note = |what: &str, promql: &str, at: &str| {
        queries.push(QueryNote {
            what: what.to_string(),
            promql: promql.to_string(),
            at: at.to_string(),
        });
    };

    // Who a sample belongs to: its tenant slug, or None for an unknown application.
    let owner = |labels: &BTreeMap<String, String>| -> Result<String, String> {
        let key = labels.get(by).cloned().unwrap_or_default();
        match source.group_by {
            GroupBy::Tenant => Ok(key),
            GroupBy::Application => owners.get(key.as_str()).map(|t| t.to_string()).ok_or(key),
        }
    };

    let instants: Vec<(&str, String)> = vec![
        (
            "calls",
            format!("sum by ({by}) (increase({}[{w}]))", m.requests),
        ),
        ("failed", format!("sum by ({by}) (increase({failed}[{w}]))")),
        (
            "bytes_in",
            format!("sum by ({by}) (increase({}[{w}]))", m.bytes_in),
        ),
        (
            "bytes_out",
            format!("sum by ({by}) (increase({}[{w}]))", m.bytes_out),
        ),
        (
            "buckets",
            format!("sum by ({by}, le) (increase({}_bucket[{w}]))", m.latency),
        ),
        (
            "latency_sum",
            format!("sum by ({by}) (increase({}_sum[{w}]))", m.latency),
        ),
        (
            "latency_count",
            format!("sum by ({by}) (increase({}_count[{w}]))", m.latency),
        ),
        // One query per counter: a function over several metric names drops the names and
        // Prometheus refuses the colliding label sets.
        (
            "resets",
            format!("sum by ({by}) (resets({}[{window}]))", m.requests),
        ),
        (
            "resets",
            format!("sum by ({by}) (resets({}[{window}]))", m.bytes_in),
        ),
        (
            "resets",
            format!("sum by ({by}) (resets({}[{window}]))", m.bytes_out),
        ),
        (
            "month_calls",
            format!("sum by ({by}) (increase({}[{month_secs}s]))", m.requests),
        ),
        (
            "month_bytes",
            format!("sum by ({by}) (increase({}[{month_secs}s]))", m.bytes_in),
        ),
        (
            "month_bytes",
            format!("sum by ({by}) (increase({}[{month_secs}s]))", m.bytes_out),
        ),
    ];
    let describe = |what: &str| -> &'static str {
        match what {
            "calls" => "requests in the period",
            "failed" => "failed requests in the period",
            "bytes_in" => "bytes received",
            "bytes_out" => "bytes sent",
            "buckets" => "latency buckets (quantiles interpolated from these)",
            "latency_sum" => "latency sum (average = sum / count)",
            "latency_count" => "latency count",
            "resets" => "counter resets in the forecast window (one query per counter)",
            "month_calls" => "requests month to date",
            "month_bytes" => "bytes month to date",
            _ => "",
        }
    };
    for (what, promql) in &instants {
        if what.starts_with("month_") && month_secs <= 0 {
            continue;
        }
        let samples = prom.instant(promql, end).await?;
        note(describe(what), promql, &at);
        for s in samples {
            let tenant = match owner(&s.labels) {
                Ok(t) => t,
                Err(app) => {
                    if *what == "calls" {
                        *usage.unattributed.entry(app).or_default() += rounded(s.value);
                    }
                    continue;
                }
            };
            let t = usage.tenants.entry(tenant).or_default();
            match *what {
                "calls" => {
                    t.seen = true;
                    t.calls += rounded(s.value);
                }
                "failed" => t.failed += rounded(s.value),
                "bytes_in" => t.bytes_in += rounded(s.value),
                "bytes_out" => t.bytes_out += rounded(s.value),
                "buckets" => {
                    let le = s.labels.get("le").map(|l| parse_value(l));
                    if let Some(le) = le.filter(|l| !l.is_nan()) {
                        let count = if s.value.is_finite() {
                            s.value.max(0.0)
                        } else {
                            0.0
                        };
                        t.buckets =
                            histogram::merge([t.buckets.as_slice(), &[Bucket { le, count }]]);
                    }
                }
                "latency_sum" if s.value.is_finite() => t.latency_sum += s.value,
                "latency_count" if s.value.is_finite() => t.latency_count += s.value,
                "resets" => t.resets += rounded(s.value),
                "month_calls" => t.month_calls += rounded(s.value),
                "month_bytes" => t.month_bytes += rounded(s.value),
                _ => {}
            }
        }
    }
    if source.group_by == GroupBy::Tenant {
        for q in QUANTILES {
            let promql = format!(
                "histogram_quantile({q}, sum by ({by}, le) (increase({}_bucket[{w}])))",
                m.latency
            );
            let samples = prom.instant(&promql, end).await?;
            note(&format!("P{} latency", q * 100.0), &promql, &at);
            for s in samples {
                if let Ok(tenant) = owner(&s.labels) {
                    usage
                        .tenants
                        .entry(tenant)
                        .or_default()
                        .prometheus_quantiles
                        .insert(q.to_string(), s.value);
                }
            }
        }
    }

    // Per day: the point at t is the day (t - 1d, t].
    let first_day_end = window_start_secs.min(period.start.as_second()) + DAY;
    let first = Timestamp::from_second(first_day_end).unwrap_or(end);
    let range_at = format!("start={first} end={end} step 1d");
    let daily: [(&str, String); 4] = [
        (
            "calls",
            format!("sum by ({by}) (increase({}[1d]))", m.requests),
        ),
        ("failed", format!("sum by ({by}) (increase({failed}[1d]))")),
        (
            "bytes",
            format!("sum by ({by}) (increase({}[1d]))", m.bytes_in),
        ),
        (
            "bytes",
            format!("sum by ({by}) (increase({}[1d]))", m.bytes_out),
        ),
    ];
    for (what, promql) in &daily {
        let series = prom.range(promql, first, end, DAY).await?;
        note(&format!("{what} per day"), promql, &range_at);
        for s in series {
            let Ok(tenant) = owner(&s.labels) else {
                continue;
            };
            let t = usage.tenants.entry(tenant).or_default();
            for (ts, v) in s.points {
                let day = Timestamp::from_second(ts - DAY)
                    .map(utc_date)
                    .unwrap_or_default();
                match *what {
                    "calls" => t.daily.entry(day).or_default().0 += rounded(v),
                    // Failed series without request series on a day are not a day of data.
                    "failed" => {
                        if let Some(d) = t.daily.get_mut(&day) {
                            d.1 += rounded(v);
                        }
                    }
                    _ => *t.daily_bytes.entry(day).or_default() += rounded(v),
                }
            }
        }
    }
    // A day is "with data" when the range query returned a point for it (0 included), so
    // "no data" and "0 requests" stay distinct.
    for t in usage.tenants.values_mut() {
        t.seen = t.seen || !t.daily.is_empty();
    }

    // The job's own resource gauges, scraped from the Pushgateway: daily maxima, 28 days.
    let hist_start = Timestamp::from_second(end.as_second() - 27 * DAY).unwrap_or(end);
    let promql = format!(
        "max by (tenant, resource) (max_over_time({}[1d]))",
        m.quota_history
    );
    let series = prom.range(&promql, hist_start, end, DAY).await?;
    note(
        "daily maxima of resource usage (count forecasts)",
        &promql,
        &format!("start={hist_start} end={end} step 1d"),
    );
    for s in series {
        let (Some(tenant), Some(resource)) = (s.labels.get("tenant"), s.labels.get("resource"))
        else {
            continue;
        };
        let points = s
            .points
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(ts, v)| {
                let day = Timestamp::from_second(ts - DAY)
                    .map(utc_date)
                    .unwrap_or_default();
                (day, *v)
            })
            .collect();
        usage
            .history
            .insert((tenant.clone(), resource.clone()), points);
    }
    usage.queries = queries;
    Ok(usage)
}
