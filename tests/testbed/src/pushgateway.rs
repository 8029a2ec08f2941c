//! A Prometheus Pushgateway (Debian's `prometheus-pushgateway`) on a free loopback port.
//!
//! Jobs push to `{url}/metrics/job/<job>[/<label>/<value>…]`; tests read back with
//! [`Pushgateway::metrics_json`] and look values up with [`find_metric`].
//!
//! # The JSON of `GET /api/v1/metrics` (pushgateway 1.5.1)
//!
//! ```json
//! {"status": "success",
//!  "data": [                                    // one entry per group
//!    {"labels": {"job": "ttl", "instance": "x"}, // the grouping key
//!     "last_push_successful": true,
//!     "gov_deleted_total": {                    // one key per metric family
//!       "time_stamp": "2026-11-23T10:59:44.598426111Z",
//!       "type": "COUNTER",                      // COUNTER, GAUGE, UNTYPED, SUMMARY, HISTOGRAM
//!       "help": "…",                            // absent without a # HELP line
//!       "metrics": [
//!         {"labels": {"instance": "x", "job": "ttl", "kind": "ec2"}, // grouping key included
//!          "value": "3"}]},                     // a string, Go-formatted ("1.5e+09", "+Inf")
//!     "push_time_seconds": {…}, "push_failure_time_seconds": {…}}]}
//! ```
//!
//! Summaries and histograms carry `count`/`sum`/`quantiles`/`buckets` instead of `value`;
//! [`find_metric`] only reads `value` (counters, gauges, untyped).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use base64::Engine;

use crate::pki::CertFiles;
use crate::process::{
    Error, ManagedProcess, Result, SETUP_HINT, free_port, locate, locate_on_path, venv_dir,
};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Pushgateway, stopped when dropped. Its persistence file lives in a temporary
/// directory removed on drop.
#[derive(Debug)]
pub struct Pushgateway {
    // Declared before `dir` so the process stops before its directory is removed.
    process: ManagedProcess,
    url: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

/// The Pushgateway's `--web.config.file` settings, and what the test bed's client trusts.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Serve HTTPS with this certificate.
    pub tls: Option<CertFiles>,
    /// Require HTTP basic auth with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// The CA the test bed's own client trusts (the one that signed `tls`).
    pub ca: Option<PathBuf>,
}

/// A bcrypt hash of `password` (cost 4: the lowest, enough for a test), made by Python's
/// `bcrypt` in the test venv; the password goes through stdin, not the command line.
fn bcrypt_hash(password: &str) -> Result<String> {
    use std::io::Write;
    let python = venv_dir().join("bin/python");
    let program = locate("python (venv, with bcrypt)", "GOV_VENV", python)?;
    let failed = |detail: String| Error::Unexpected {
        service: "pushgateway".into(),
        action: "bcrypt-hash the basic auth password".into(),
        detail,
    };
    let mut child = std::process::Command::new(&program)
        .args([
            "-c",
            "import bcrypt, sys; print(bcrypt.hashpw(sys.stdin.buffer.read(), bcrypt.gensalt(4)).decode())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(password.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(format!(
            "{}: {} ({SETUP_HINT})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One sample found by [`find_metric`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The value, parsed from the Go-formatted string.
    pub value: f64,
    /// All labels of the sample, grouping-key labels included.
    pub labels: BTreeMap<String, String>,
    /// The family's type as the Pushgateway reports it: `COUNTER`, `GAUGE`, `UNTYPED`, ….
    pub metric_type: String,
    /// The family's `# HELP` text, if it had one.
    pub help: Option<String>,
}

impl Pushgateway {
    /// Starts `prometheus-pushgateway --web.listen-address=127.0.0.1:PORT
    /// --persistence.file=TMPDIR/pgw.data` and waits until `GET /-/ready` answers 200.
    ///
    /// The binary is `$GOV_PUSHGATEWAY_BIN`, else `prometheus-pushgateway` on `PATH`.
    pub async fn start() -> Result<Pushgateway> {
        Pushgateway::start_with(&WebConfig::default()).await
    }

    /// Like [`start`](Self::start), with the Pushgateway's own `--web.config.file`: TLS with
    /// `web.tls`'s certificate, and HTTP basic auth for `web.basic_auth` (the password bcrypt-
    /// hashed with Python's `bcrypt` from the test venv, as `basic_auth_users` wants). The test
    /// bed's own client ([`metrics_json`](Self::metrics_json)) then trusts `web.ca` and sends
    /// the credentials.
    pub async fn start_with(web: &WebConfig) -> Result<Pushgateway> {
        let program = locate_on_path("prometheus-pushgateway", "GOV_PUSHGATEWAY_BIN")?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-pushgateway-")
            .tempdir()
            .map_err(|source| Error::Io {
                service: "pushgateway".into(),
                action: "create its data directory".into(),
                source,
            })?;
        let port = free_port()?;
        let persistence = dir.path().join("pgw.data");
        let mut args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--persistence.file={}", persistence.display()),
        ];
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let http_error = |action: &str| {
            let action = action.to_string();
            move |source| Error::Http {
                service: "pushgateway".into(),
                action,
                source,
            }
        };
        let io_error = |action: String| {
            move |source| Error::Io {
                service: "pushgateway".into(),
                action,
                source,
            }
        };
        if web.tls.is_some() || web.basic_auth.is_some() {
            let mut text = String::new();
            if let Some(tls) = &web.tls {
                text.push_str(&format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                    tls.cert.display(),
                    tls.key.display()
                ));
            }
            if let Some((user, password)) = &web.basic_auth {
                let hash = bcrypt_hash(password)?;
                text.push_str(&format!("basic_auth_users:\n  {user}: '{hash}'\n"));
                let mut headers = reqwest::header::HeaderMap::new();
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                );
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    reqwest::header::HeaderValue::from_str(&value).map_err(|e| {
                        Error::Unexpected {
                            service: "pushgateway".into(),
                            action: "build the basic auth header".into(),
                            detail: e.to_string(),
                        }
                    })?,
                );
                http = http.default_headers(headers);
            }
            let path = dir.path().join("web.yml");
            std::fs::write(&path, text).map_err(io_error(format!("write {}", path.display())))?;
            args.push(format!("--web.config.file={}", path.display()));
        }
        if let Some(ca) = &web.ca {
            let pem = std::fs::read(ca).map_err(io_error(format!("read {}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(http_error("read the CA file"))?;
            http = http.tls_certs_merge(certs);
        }
        let process = ManagedProcess::spawn("pushgateway", &program, &args, &[])?;
        let scheme = if web.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{port}");
        let http = http.build().map_err(http_error("build an HTTP client"))?;
        let probe_url = format!("{url}/-/ready");
        process
            .wait_until("GET /-/ready answers 200", START_TIMEOUT, || {
                let request = http.get(&probe_url).timeout(Duration::from_secs(2)).send();
                async move {
                    let response = request.await.map_err(|e| e.to_string())?;
                    match response.status() {
                        reqwest::StatusCode::OK => Ok(()),
                        status => Err(format!("status {status}")),
                    }
                }
            })
            .await?;
        Ok(Pushgateway {
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

    /// The persistence file (written on a timer and at shutdown, not on every push).
    pub fn persistence_file(&self) -> PathBuf {
        self.dir.path().join("pgw.data")
    }

    /// `GET /api/v1/metrics`: every group and metric family (shape in the module docs).
    pub async fn metrics_json(&self) -> Result<Value> {
        let action = "GET /api/v1/metrics";
        let http_error = |source| Error::Http {
            service: "pushgateway".into(),
            action: action.into(),
            source,
        };
        let response = self
            .http
            .get(format!("{}/api/v1/metrics", self.url))
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Unexpected {
                service: "pushgateway".into(),
                action: action.into(),
                detail: format!("status {status}"),
            });
        }
        response.json().await.map_err(http_error)
    }

    /// Fetches [`metrics_json`](Self::metrics_json) and looks a sample up with [`find_metric`].
    pub async fn find_metric(
        &self,
        group: &[(&str, &str)],
        metric: &str,
        labels: &[(&str, &str)],
    ) -> Result<Option<Sample>> {
        Ok(find_metric(
            &self.metrics_json().await?,
            group,
            metric,
            labels,
        ))
    }

    /// The underlying process, e.g. for its log.
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }
}

/// Finds the sample of family `metric` in the group whose grouping key is exactly `group` (e.g.
/// `[("job", "ttl-teardown")]`) and whose labels include every pair of `labels` (which need not
/// repeat the grouping key). `None` if there is no such group, family or sample, or if the sample
/// has no plain `value` (summaries, histograms).
///
/// If several samples match, the first one in the Pushgateway's order is returned: pass enough
/// labels to single one out.
pub fn find_metric(
    json: &Value,
    group: &[(&str, &str)],
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<Sample> {
    let groups = json.get("data")?.as_array()?;
    let family = groups
        .iter()
        .find(|g| g.get("labels").is_some_and(|l| labels_equal(l, group)))?
        .get(metric)?;
    let sample = family
        .get("metrics")?
        .as_array()?
        .iter()
        .find(|s| s.get("labels").is_some_and(|l| labels_include(l, labels)))?;
    let value = sample.get("value")?.as_str()?.parse::<f64>().ok()?;
    let labels = sample
        .get("labels")?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    Some(Sample {
        value,
        labels,
        metric_type: family.get("type")?.as_str()?.to_owned(),
        help: family
            .get("help")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn labels_include(actual: &Value, wanted: &[(&str, &str)]) -> bool {
    wanted
        .iter()
        .all(|(k, v)| actual.get(k).and_then(Value::as_str) == Some(v))
}

fn labels_equal(actual: &Value, wanted: &[(&str, &str)]) -> bool {
    actual.as_object().is_some_and(|o| o.len() == wanted.len()) && labels_include(actual, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_sample_by_group_metric_and_labels() {
        let json = serde_json::json!({"status": "success", "data": [
            {"labels": {"job": "other"},
             "m": {"type": "GAUGE", "metrics": [{"labels": {"job": "other"}, "value": "9"}]}},
            {"labels": {"job": "ttl", "instance": "x"},
             "m": {"type": "COUNTER", "help": "h", "metrics": [
                {"labels": {"job": "ttl", "instance": "x", "kind": "ec2"}, "value": "3"},
                {"labels": {"job": "ttl", "instance": "x", "kind": "rds"}, "value": "1.5e+09"}]}}]});
        let group = [("job", "ttl"), ("instance", "x")];
        let rds = find_metric(&json, &group, "m", &[("kind", "rds")]).expect("rds sample");
        assert_eq!(rds.value, 1.5e9);
        assert_eq!(rds.metric_type, "COUNTER");
        assert_eq!(rds.help.as_deref(), Some("h"));
        assert_eq!(rds.labels["instance"], "x");
        // The grouping key must match exactly: a subset names no group.
        assert_eq!(find_metric(&json, &[("job", "ttl")], "m", &[]), None);
        assert_eq!(find_metric(&json, &group, "m", &[("kind", "s3")]), None);
        assert_eq!(find_metric(&json, &group, "absent", &[]), None);
    }
}
