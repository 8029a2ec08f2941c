//! The `usage-reporting` binary as an operator runs it, against real local services:
//! PostgreSQL 15 with the shipped schema, Prometheus with backfilled history, librdkafka's mock
//! Kafka cluster, the Pushgateway, an aiosmtpd sink and the Kafka Connect stand-in.

#[path = "../support/fixture.rs"]
mod fixture;

mod bad_data;
mod inventory;
mod modes;
mod sinks_down;
mod weekly;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::Value;
use testbed::kafka::{consume_all, mock_cluster};
use testbed::kafka_connect::ConnectStandIn;
use testbed::postgres::Postgres;
use testbed::prometheus::Prometheus;
use testbed::pushgateway::Pushgateway;
use testbed::smtp::SmtpSink;

use fixture::{TenantSpec, World};

/// The read-only role's password (a test secret: scanned for in every output).
pub const READER_PASSWORD: &str = "r3ader-Secret-9f1c";

/// 2026-11-22T00:00:00Z: the first sample of the fixture.
pub const START: i64 = 1_795_305_600;
/// 15-minute samples.
pub const STEP: i64 = 900;
/// Eight days.
pub const INTERVALS: i64 = 8 * 96;
/// Monday 2026-11-30 02:00: the weekly run's instant; the period is Nov 23 → Nov 30.
pub const NOW: &str = "2026-11-30T02:00:00Z";
/// The weekly period's bounds (unix seconds).
pub const PERIOD: (i64, i64) = (START + 86_400, START + 8 * 86_400);

/// The hostile name: markup characters of typst, HTML, CSV and PromQL, and non-Latin letters.
pub const OMEGA_NAME: &str = "Ωmega #1 $x$ [ops] \"Тест\" <b>&ü</b>, ç";

/// The tenants every test starts from.
pub fn tenants() -> Vec<TenantSpec> {
    let conn = |s: &str, state: &str, tasks: &[&str]| {
        (
            s.to_string(),
            state.to_string(),
            tasks.iter().map(|t| t.to_string()).collect(),
        )
    };
    let mut acme = TenantSpec::new("acme", "Acme Corp");
    acme.contacts = vec![
        "ops@acme.example.com".into(),
        "billing@acme.example.com".into(),
    ];
    acme.quotas = vec![("api_calls_per_month".into(), 5_000.0)];
    acme.connectors = vec![
        conn("orders-sink", "RUNNING", &["RUNNING", "RUNNING"]),
        conn("audit-sink", "RUNNING", &["RUNNING", "FAILED"]),
        conn("crm-source", "RUNNING", &["RUNNING"]),
        conn("archive-sink", "PAUSED", &[]),
    ];
    let mut bravo = TenantSpec::new("bravo", "Bravo GmbH");
    bravo.reset_at = Some(400);
    bravo.quotas = vec![("kafka_connectors".into(), 0.0)];
    bravo.connectors = vec![conn("events-sink", "RUNNING", &["RUNNING"])];
    let mut omega = TenantSpec::new("omega", OMEGA_NAME);
    omega.has_errors = false;
    omega.quotas = vec![("api_calls_per_month".into(), 7_000.0)];
    let mut delta = TenantSpec::new("delta", "Delta Ltd");
    delta.has_metrics = false;
    vec![acme, bravo, omega, delta]
}

/// Every service a run needs, with the fixture loaded.
pub struct Env {
    /// The population and tenants.
    pub world: World,
    /// The control plane.
    pub pg: Postgres,
    /// The gateway's metrics.
    pub prom: Prometheus,
    /// Where metrics are pushed.
    pub pgw: Pushgateway,
    /// Where mail goes.
    pub smtp: SmtpSink,
    /// Where events go.
    pub kafka: MockCluster<'static, DefaultProducerContext>,
    /// Kafka Connect.
    pub connect: ConnectStandIn,
    /// Configs and reports.
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Starts everything for `tenants`.
    pub async fn start(tenants: Vec<TenantSpec>) -> Env {
        let world = World::generate(START, STEP, INTERVALS, tenants);
        let mut om = world.openmetrics();
        // acme's connectors grew from 1 to 4 over 28 days; bravo's stayed at 1.
        world.history(
            &mut om,
            &[
                (
                    "acme",
                    "kafka_connectors",
                    (0..28).map(|d| 1.0 + 3.0 * d as f64 / 27.0).collect(),
                ),
                ("bravo", "kafka_connectors", vec![1.0; 28]),
            ],
        );
        let pg = Postgres::start().await.expect("postgres");
        for (name, sql) in usage_reporting::controlplane::MIGRATIONS {
            pg.execute("postgres", sql)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        pg.execute("postgres", &world.control_plane_sql(READER_PASSWORD))
            .await
            .expect("fixture sql");
        let prom = Prometheus::start_with(Some(&om.finish()), None)
            .await
            .expect("prometheus");
        let pgw = Pushgateway::start().await.expect("pushgateway");
        let smtp = SmtpSink::start().await.expect("smtp sink");
        let kafka = mock_cluster(&[("security-job-results", 1), ("tenant-usage-report", 1)])
            .expect("mock kafka");
        let connect = ConnectStandIn::start(world.connectors())
            .await
            .expect("connect stand-in");
        Env {
            world,
            pg,
            prom,
            pgw,
            smtp,
            kafka,
            connect,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes a config under `name` and returns its path: `prometheus` is the Prometheus URL,
    /// `prometheus_extra` lines go into `job.prometheus`, `job_extra` lines into `job`.
    pub fn config(
        &self,
        name: &str,
        prometheus: &str,
        prometheus_extra: &str,
        job_extra: &str,
    ) -> PathBuf {
        let yaml = format!(
            "kafka:\n  brokers: [\"{kafka}\"]\n  delivery_timeout: 10s\n\
             pushgateway:\n  url: {pgw}\n\
             notify:\n  smtp: {{host: 127.0.0.1, port: {smtp}, tls: none, from: \"Reports <reports@platform.example.com>\"}}\n  email_to: [platform@platform.example.com]\n\
             job:\n  postgres: {{host: 127.0.0.1, port: {pg}, dbname: postgres, user: usage_reader, tls: off, timeout: 10s}}\n\
             \x20 prometheus:\n    url: {prometheus}\n    timeout: 5s\n{prometheus_extra}\
             \x20 kafka_connect: {{url: {connect}, timeout: 5s}}\n{job_extra}",
            kafka = self.kafka.bootstrap_servers(),
            pgw = self.pgw.url(),
            smtp = self.smtp.port(),
            pg = self.pg.port(),
            connect = self.connect.url(),
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write config");
        path
    }

    /// The events of `topic` so far.
    pub async fn events(&self, topic: &str, at_least: usize) -> Vec<Value> {
        consume_all(
            &self.kafka.bootstrap_servers(),
            topic,
            at_least,
            Duration::from_secs(15),
        )
        .await
        .expect("consume")
        .into_iter()
        .map(|(_, payload)| serde_json::from_slice(&payload).expect("json event"))
        .collect()
    }
}

/// Runs the binary with `args` (and the control-plane password in the environment); no
/// inherited GOV_* settings.
pub async fn run(cwd: &Path, args: &[&str]) -> Output {
    run_with(cwd, args, &[]).await
}

/// [`run`] with extra environment variables.
pub async fn run_with(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_usage-reporting"));
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GOV_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("GOV_CONTROL_PLANE_PASSWORD", READER_PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run usage-reporting");
    let (stdout, stderr) = text(&out);
    assert!(
        !stdout.contains(READER_PASSWORD) && !stderr.contains(READER_PASSWORD),
        "the password leaked into the output"
    );
    out
}

/// Stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The result event a run printed (`--output json`).
pub fn result_event(o: &Output) -> Value {
    let (stdout, stderr) = text(o);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

/// `pdftotext FILE -`.
pub fn pdf_text(pdf: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; bash .ci/setup installs it)");
    assert!(out.status.success(), "pdftotext: {:?}", out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The share of dark pixels on page 1, rendered by `pdftoppm` in grey at 40 dpi.
pub fn page_one_ink(pdf: &Path, dir: &Path) -> f64 {
    let prefix = dir.join("page");
    let out = std::process::Command::new("pdftoppm")
        .args(["-f", "1", "-l", "1", "-r", "40", "-gray"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .expect("pdftoppm (poppler-utils)");
    assert!(out.status.success(), "pdftoppm: {:?}", out);
    let pgm = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "pgm"))
        .expect("a .pgm page");
    let bytes = std::fs::read(pgm).expect("pgm");
    // P5\n<w> <h>\n255\n<pixels>: skip three header lines.
    let mut newlines = 0;
    let start = bytes
        .iter()
        .position(|b| {
            if *b == b'\n' {
                newlines += 1;
            }
            newlines == 3
        })
        .expect("pgm header")
        + 1;
    let pixels = &bytes[start..];
    pixels.iter().filter(|p| **p < 160).count() as f64 / pixels.len() as f64
}
