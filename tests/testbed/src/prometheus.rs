//! A Prometheus server (Debian's `prometheus`, 2.42) on a free loopback port, optionally with
//! backfilled history and optionally scraping a Pushgateway.
//!
//! History is written as OpenMetrics text ([`OpenMetrics`]) and turned into TSDB blocks with
//! `promtool tsdb create-blocks-from openmetrics --max-block-duration=24h`, before the server
//! starts over the same data directory. Observed behaviour:
//! - **Retention**: the server deletes blocks older than `--storage.tsdb.retention.time` when it
//!   starts (default 15 d), so backfilled history would vanish; we pass 3650 d.
//! - promtool wants each series' samples in ascending time order, timestamps in *seconds*, the
//!   families' `# TYPE` lines before their samples, and `# EOF` as the last line. Counters must
//!   end in `_total` when typed `counter`.
//! - Range selectors are closed on both ends in 2.x (`[t - range, t]`): with samples on the
//!   window's edges `increase()` needs no extrapolation and is exact.
//! - A bare selector only sees the last 5 minutes (`--query.lookback-delta`): query history with
//!   `increase(...[7d])` or `*_over_time`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::process::{Error, ManagedProcess, Result, free_port, locate_on_path};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// OpenMetrics text for `promtool`, built family by family.
#[derive(Debug, Default, Clone)]
pub struct OpenMetrics {
    text: String,
    samples: usize,
}

/// A metric type as OpenMetrics names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `counter` (sample names end in `_total`).
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram` (samples `_bucket`, `_sum`, `_count`).
    Histogram,
}

impl OpenMetrics {
    /// An empty document.
    pub fn new() -> OpenMetrics {
        OpenMetrics::default()
    }

    /// Starts family `name` of `kind` (its samples must follow before the next family).
    pub fn family(&mut self, name: &str, kind: MetricType) -> &mut Self {
        let t = match kind {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        };
        let _ = writeln!(self.text, "# TYPE {name} {t}");
        self
    }

    /// One sample: `name{labels} value unix_seconds`. Label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64, t: i64) -> &mut Self {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        let value = if value == f64::INFINITY {
            "+Inf".to_string()
        } else {
            format!("{value}")
        };
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value} {t}");
        } else {
            let _ = writeln!(self.text, "{name}{{{}}} {value} {t}", labels.join(","));
        }
        self.samples += 1;
        self
    }

    /// How many samples were written.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The document with its closing `# EOF`.
    pub fn finish(&self) -> String {
        format!("{}# EOF\n", self.text)
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running Prometheus, stopped when dropped; its data directory is removed on drop.
#[derive(Debug)]
pub struct Prometheus {
    // Declared before `dir` so the server stops before its data is removed.
    process: ManagedProcess,
    url: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// An empty server.
    pub async fn start() -> Result<Prometheus> {
        Self::start_with(None, None).await
    }

    /// Backfills `history` (an [`OpenMetrics::finish`] document), then starts the server over
    /// it. `scrape` names a `host:port` to scrape every 5 s with `honor_labels` (a Pushgateway).
    pub async fn start_with(history: Option<&str>, scrape: Option<&str>) -> Result<Prometheus> {
        let program = locate_on_path("prometheus", "GOV_PROMETHEUS_BIN")?;
        let io = |action: &str| {
            let action = action.to_string();
            move |source| Error::Io {
                service: "prometheus".into(),
                action,
                source,
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("testbed-prometheus-")
            .tempdir()
            .map_err(io("create its data directory"))?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(io("create the TSDB directory"))?;
        if let Some(history) = history {
            let promtool = locate_on_path("promtool", "GOV_PROMTOOL_BIN")?;
            let input = dir.path().join("history.om");
            std::fs::write(&input, history).map_err(io("write the backfill input"))?;
            let out = tokio::process::Command::new(&promtool)
                .args([
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "--max-block-duration=24h",
                    "--quiet",
                ])
                .arg(&input)
                .arg(&data)
                .output()
                .await
                .map_err(io("run promtool"))?;
            if !out.status.success() {
                return Err(Error::Unexpected {
                    service: "prometheus".into(),
                    action: "backfill with promtool tsdb create-blocks-from openmetrics".into(),
                    detail: format!(
                        "{}\n{}{}",
                        out.status,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                });
            }
        }
        let mut config =
            String::from("global:\n  scrape_interval: 5s\n  evaluation_interval: 1m\n");
        if let Some(target) = scrape {
            let _ = write!(
                config,
                "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
                 static_configs:\n      - targets: [\"{target}\"]\n"
            );
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).map_err(io("write prometheus.yml"))?;
        let port = free_port()?;
        let process = ManagedProcess::spawn(
            "prometheus",
            &program,
            [
                format!("--config.file={}", config_file.display()),
                format!("--storage.tsdb.path={}", data.display()),
                "--storage.tsdb.retention.time=3650d".to_string(),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--web.enable-admin-api".to_string(),
            ],
            &[],
        )?;
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| Error::Http {
                service: "prometheus".into(),
                action: "build an HTTP client".into(),
                source,
            })?;
        let ready = format!("{url}/-/ready");
        process
            .wait_until("GET /-/ready answers 200", START_TIMEOUT, || {
                let request = http.get(&ready).timeout(Duration::from_secs(2)).send();
                async move {
                    let response = request.await.map_err(|e| e.to_string())?;
                    match response.status() {
                        reqwest::StatusCode::OK => Ok(()),
                        status => Err(format!("status {status}")),
                    }
                }
            })
            .await?;
        Ok(Prometheus {
            process,
            url,
            http,
            dir,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// An instant query at unix second `time`: the API's whole JSON answer.
    pub async fn query(&self, promql: &str, time: i64) -> Result<Value> {
        let action = format!("query {promql}");
        let response = self
            .http
            .get(format!(
                "{}/api/v1/query?query={}&time={time}",
                self.url,
                url_encode(promql)
            ))
            .send()
            .await
            .map_err(|source| Error::Http {
                service: "prometheus".into(),
                action: action.clone(),
                source,
            })?;
        response.json().await.map_err(|source| Error::Http {
            service: "prometheus".into(),
            action,
            source,
        })
    }

    /// The values of an instant query's vector, by the value of `label` (`""` for none).
    pub async fn query_values(
        &self,
        promql: &str,
        time: i64,
        label: &str,
    ) -> Result<Vec<(String, f64)>> {
        let answer = self.query(promql, time).await?;
        let result = answer
            .pointer("/data/result")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Unexpected {
                service: "prometheus".into(),
                action: format!("query {promql}"),
                detail: format!("not a vector: {answer}"),
            })?;
        Ok(result
            .iter()
            .filter_map(|s| {
                let key = s
                    .pointer(&format!("/metric/{label}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let v = s.pointer("/value/1")?.as_str()?.parse().ok()?;
                Some((key, v))
            })
            .collect())
    }

    /// The data directory (TSDB blocks).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server process (its log).
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }
}
