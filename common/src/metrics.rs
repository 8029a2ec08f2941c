//! The platform's job metrics, encoded with `prometheus-client` and pushed to a Pushgateway.
//!
//! Every job gets the platform's four families (the contract):
//! `security_job_runs_total{job_name,status}`, `security_job_duration_seconds{job_name}`
//! (histogram), `security_job_last_run_timestamp{job_name}` and
//! `security_job_findings_total{job_name,severity}`; a job registers its own families on
//! [`Metrics::registry_mut`].
//!
//! A CronJob's process lives for one run and the Pushgateway keeps only the last push of a
//! group, so those counters read the last run's counts and `increase()` over them never fires;
//! a histogram has no plain series to compare with a threshold. Alerts therefore use gauges of
//! the last run, pushed alongside: `security_job_last_run_success{job_name}` (1 success, 0
//! partial or failure), `security_job_last_duration_seconds{job_name}` and
//! `security_job_last_run_findings{job_name,severity}`.
//!
//! `security_job_last_success_timestamp_seconds{job_name}` must survive failed runs, but a `PUT`
//! replaces the whole group. So it lives in a group of its own, `…/outcome/success`, that only
//! a successful run pushes; a failed run's `PUT` of the main group leaves it alone. (A `POST`
//! of the main group would keep it too, but would also keep any family a run did not push, such
//! as a job's per-resource series of an earlier run.)
//!
//! The main group is `/metrics/job/<job_name>`; a dry run pushes to
//! `/metrics/job/<job_name>/mode/dry-run` (and `…/mode/dry-run/outcome/success`) so it never
//! overwrites the real series.
//!
//! The push goes through a [`Pusher`] (rustls, an optional CA file, basic auth or a bearer token)
//! that the harness builds before the run, so unreadable credentials refuse the run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use secrecy::{ExposeSecret, SecretString};

use crate::Error;
use crate::config::{PushgatewayConfig, read_secret_file};
use crate::error::error_chain;
use crate::event::{Severity, Status};

/// Buckets of `security_job_duration_seconds`, fixed by the platform.
pub const DURATION_BUCKETS: [f64; 8] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job_name: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    job_name: String,
    severity: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Free-form label pairs for a job's own metric families.
pub type Labels = Vec<(String, String)>;

/// The registry of one run's metrics.
pub struct Metrics {
    registry: Registry,
    job_name: String,
    runs: Family<RunLabels, Counter>,
    duration: Family<JobLabels, Histogram, fn() -> Histogram>,
    last_run: Family<JobLabels, Gauge<f64, AtomicU64>>,
    findings: Family<SeverityLabels, Counter>,
    last_success: Family<JobLabels, Gauge>,
    last_duration: Family<JobLabels, Gauge<f64, AtomicU64>>,
    last_findings: Family<SeverityLabels, Gauge>,
    /// The `outcome=success` group: only `security_job_last_success_timestamp_seconds`.
    success_registry: Registry,
    last_success_at: Family<JobLabels, Gauge<f64, AtomicU64>>,
    /// Set by [`Metrics::record_run`] for a successful run: then the success group is pushed.
    succeeded: AtomicBool,
    /// The run's shard: its groups are `…/shard/<i>`.
    shard: Option<crate::shard::Shard>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("job_name", &self.job_name)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry holding the common families for `job_name`.
    pub fn new(job_name: &str) -> Self {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        let duration = Family::<JobLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let last_run = Family::<JobLabels, Gauge<f64, AtomicU64>>::default();
        let findings = Family::<SeverityLabels, Counter>::default();
        registry.register(
            "security_job_runs",
            "Runs of the job by final status",
            runs.clone(),
        );
        registry.register(
            "security_job_duration_seconds",
            "Wall-clock duration of the run",
            duration.clone(),
        );
        registry.register(
            "security_job_last_run_timestamp",
            "Unix time the run completed",
            last_run.clone(),
        );
        registry.register(
            "security_job_findings",
            "Findings of the run by severity",
            findings.clone(),
        );
        let last_success = Family::<JobLabels, Gauge>::default();
        let last_duration = Family::<JobLabels, Gauge<f64, AtomicU64>>::default();
        let last_findings = Family::<SeverityLabels, Gauge>::default();
        registry.register(
            "security_job_last_run_success",
            "Whether the last run succeeded (1) or ended partial or failed (0)",
            last_success.clone(),
        );
        registry.register(
            "security_job_last_duration_seconds",
            "Wall-clock duration of the last run",
            last_duration.clone(),
        );
        registry.register(
            "security_job_last_run_findings",
            "Findings of the last run by severity",
            last_findings.clone(),
        );
        let mut success_registry = Registry::default();
        let last_success_at = Family::<JobLabels, Gauge<f64, AtomicU64>>::default();
        success_registry.register(
            "security_job_last_success_timestamp_seconds",
            "Unix time the last successful run completed",
            last_success_at.clone(),
        );
        Metrics {
            registry,
            job_name: job_name.to_string(),
            runs,
            duration,
            last_run,
            findings,
            last_success,
            last_duration,
            last_findings,
            success_registry,
            last_success_at,
            succeeded: AtomicBool::new(false),
            shard: None,
        }
    }

    /// For a job's own families: register them here before the run ends.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Records the common series for a finished run.
    pub fn record_run(
        &self,
        status: Status,
        duration: Duration,
        completed_at: jiff::Timestamp,
        findings: &[(Severity, u64)],
    ) {
        let job = JobLabels {
            job_name: self.job_name.clone(),
        };
        self.runs
            .get_or_create(&RunLabels {
                job_name: self.job_name.clone(),
                status: status.as_str().to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&job)
            .observe(duration.as_secs_f64());
        let completed = completed_at.as_millisecond() as f64 / 1000.0;
        self.last_run.get_or_create(&job).set(completed);
        let success = status == Status::Success;
        self.last_success
            .get_or_create(&job)
            .set(i64::from(success));
        self.last_duration
            .get_or_create(&job)
            .set(duration.as_secs_f64());
        for (severity, count) in findings {
            let labels = SeverityLabels {
                job_name: self.job_name.clone(),
                severity: severity.as_str().to_string(),
            };
            self.findings.get_or_create(&labels).inc_by(*count);
            self.last_findings
                .get_or_create(&labels)
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        if success {
            self.last_success_at.get_or_create(&job).set(completed);
        }
        self.succeeded.store(success, Ordering::Relaxed);
    }

    /// The main group's registry in the Prometheus text format (0.0.4) the Pushgateway parses.
    pub fn encode(&self) -> String {
        encode_registry(&self.registry)
    }

    /// The success group (`…/outcome/success`), pushed only after a successful run.
    pub fn encode_success(&self) -> String {
        encode_registry(&self.success_registry)
    }

    /// Pushes to this shard's groups (`…/shard/<i>`) from now on.
    pub fn set_shard(&mut self, shard: Option<crate::shard::Shard>) {
        self.shard = shard;
    }

    /// `PUT`s the registry to the Pushgateway group of this job (and `mode=dry-run` for dry
    /// runs); after a successful run, then `PUT`s the success group (`…/outcome/success`). A
    /// failed run leaves the success group as the last success pushed it.
    pub async fn push(&self, pusher: &Pusher, dry_run: bool) -> Result<(), Error> {
        let mut group = format!("{}/metrics/job/{}", pusher.base_url, self.job_name);
        if let Some(shard) = self.shard {
            // Shards never overwrite each other's groups.
            group.push_str(&format!("/shard/{}", shard.index));
        }
        if dry_run {
            group.push_str("/mode/dry-run");
        }
        pusher.put(&group, self.encode()).await?;
        if self.succeeded.load(Ordering::Relaxed) {
            pusher
                .put(&format!("{group}/outcome/success"), self.encode_success())
                .await?;
        }
        Ok(())
    }
}

/// The Pushgateway client of a run, built before the run starts: the credentials are read from
/// their files and the CA file is parsed then, so a missing Secret refuses the run instead of
/// failing its last step.
pub struct Pusher {
    base_url: String,
    client: reqwest::Client,
    auth: Option<PushAuth>,
}

enum PushAuth {
    Basic {
        username: String,
        password: SecretString,
    },
    Bearer(SecretString),
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Some(PushAuth::Basic { .. }) => "basic",
            Some(PushAuth::Bearer(_)) => "bearer",
            None => "none",
        };
        f.debug_struct("Pusher")
            .field("url", &self.base_url)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// One `PUT` of a whole group, with the credentials: the Pushgateway replaces everything the
    /// group held.
    async fn put(&self, url: &str, body: String) -> Result<(), Error> {
        let mut request = self
            .client
            .put(url)
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(body);
        request = match &self.auth {
            Some(PushAuth::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            Some(PushAuth::Bearer(token)) => request.bearer_auth(token.expose_secret()),
            None => request,
        };
        // reqwest's errors name the URL and the cause, never the headers (credentials).
        let response = request.send().await.map_err(|e| Error::Push {
            url: url.to_string(),
            message: error_chain(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(Error::Push {
            url: url.to_string(),
            message: format!("{status}: {}", body.trim()),
        })
    }

    /// Reads the credential and CA files of `config` and builds the HTTP client (rustls; the
    /// system's roots plus `ca_file`).
    pub fn from_config(config: &PushgatewayConfig) -> Result<Self, Error> {
        let problems = config.validate("pushgateway config");
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        let base_url = config.url.as_str().to_string();
        let failed = |message: String| Error::Push {
            url: base_url.clone(),
            message,
        };
        let mut builder = reqwest::Client::builder().timeout(config.timeout.0);
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|source| Error::ReadFile {
                path: ca.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| failed(format!("ca_file {}: {}", ca.display(), error_chain(&e))))?;
            if certs.is_empty() {
                return Err(failed(format!(
                    "ca_file {}: no PEM certificate in it",
                    ca.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| failed(format!("http client: {}", error_chain(&e))))?;
        let auth = match (&config.basic_auth, &config.bearer_token_file) {
            (Some(basic), _) => Some(PushAuth::Basic {
                username: basic.username.clone(),
                password: read_secret_file(&basic.password_file)?,
            }),
            (None, Some(file)) => Some(PushAuth::Bearer(read_secret_file(file)?)),
            (None, None) => None,
        };
        Ok(Pusher {
            base_url,
            client,
            auth,
        })
    }

    /// The Pushgateway's base URL.
    pub fn url(&self) -> &str {
        &self.base_url
    }
}

fn encode_registry(registry: &Registry) -> String {
    let mut open_metrics = String::new();
    // Encoding into a String cannot fail on I/O; an error would be a bug in a label encoder.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut open_metrics, registry) {
        tracing::error!(error = %e, "metrics encoding failed");
    }
    openmetrics_to_prometheus_text(&open_metrics)
}

/// OpenMetrics names a counter family `x` and its sample `x_total`; the Prometheus text format
/// wants both named `x_total`, otherwise the Pushgateway takes the sample for an untyped family.
/// Also drops `# UNIT` and `# EOF`, which the text format does not have.
pub fn openmetrics_to_prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_renamed_to_their_sample_name() {
        let m = Metrics::new("ttl-teardown");
        let t: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().expect("timestamp");
        m.record_run(
            Status::Success,
            Duration::from_secs(3),
            t,
            &[(Severity::Critical, 2)],
        );
        let text = m.encode();
        assert!(
            text.contains("# TYPE security_job_runs_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "security_job_runs_total{job_name=\"ttl-teardown\",status=\"success\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE security_job_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "security_job_duration_seconds_bucket{le=\"5.0\",job_name=\"ttl-teardown\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("security_job_last_run_timestamp{job_name=\"ttl-teardown\"} 1795428000"),
            "{text}"
        );
        assert!(
            text.contains(
                "security_job_findings_total{job_name=\"ttl-teardown\",severity=\"critical\"} 2\n"
            ),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("security_job_last_run_success{job_name=\"ttl-teardown\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("security_job_last_duration_seconds{job_name=\"ttl-teardown\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "security_job_last_run_findings{job_name=\"ttl-teardown\",severity=\"critical\"} 2\n"
            ),
            "{text}"
        );
        // The success timestamp is not in the main group: a failed run's PUT must not reset it.
        assert!(
            !text.contains("security_job_last_success_timestamp_seconds"),
            "{text}"
        );
        assert!(
            m.encode_success().contains(
                "security_job_last_success_timestamp_seconds{job_name=\"ttl-teardown\"} 1795428000"
            ),
            "{}",
            m.encode_success()
        );
    }

    #[test]
    fn a_failed_run_records_zero_and_no_success_time() {
        let m = Metrics::new("certificate-checker");
        let t: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().expect("timestamp");
        m.record_run(Status::Partial, Duration::from_millis(1500), t, &[]);
        let text = m.encode();
        assert!(
            text.contains("security_job_last_run_success{job_name=\"certificate-checker\"} 0\n"),
            "{text}"
        );
        assert!(!m.succeeded.load(Ordering::Relaxed));
        assert!(
            !m.encode_success().contains("certificate-checker"),
            "no sample in the success group: {}",
            m.encode_success()
        );
    }
}
