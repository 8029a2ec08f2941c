use std::process::ExitCode;
use std::time::Duration;

use common::config::{HttpUrl, PushgatewayConfig};
use common::event::{Severity, Status};
use common::metrics::{Metrics, Pusher};
use testbed::pushgateway::Pushgateway;

#[tokio::test]
async fn metrics_read_back_from_the_pushgateway_carry_names_labels_and_values() {
    let pgw = Pushgateway::start().await.expect("pushgateway");
    let completed: jiff::Timestamp = "2026-11-23T12:00:00Z".parse().expect("timestamp");

    let real = Metrics::new("cert-check");
    real.record_run(
        Status::Partial,
        Duration::from_secs(42),
        completed,
        &[(Severity::Critical, 3), (Severity::Ok, 5)],
    );
    let pusher = Pusher::from_config(&PushgatewayConfig::new(
        HttpUrl::parse(&pgw.url()).expect("url"),
    ))
    .expect("pusher");
    real.push(&pusher, false).await.expect("pushed");

    let dry = Metrics::new("cert-check");
    dry.record_run(Status::Success, Duration::from_secs(1), completed, &[]);
    dry.push(&pusher, true).await.expect("pushed");

    let real_group = [("job", "cert-check")];
    let runs = pgw
        .find_metric(
            &real_group,
            "security_job_runs_total",
            &[("job_name", "cert-check"), ("status", "partial")],
        )
        .await
        .expect("query")
        .expect("runs counter in the real group");
    assert_eq!(runs.value, 1.0);
    let critical = pgw
        .find_metric(
            &real_group,
            "security_job_findings_total",
            &[("severity", "critical")],
        )
        .await
        .expect("query")
        .expect("findings counter");
    assert_eq!(critical.value, 3.0);
    let last = pgw
        .find_metric(
            &real_group,
            "security_job_last_run_timestamp",
            &[("job_name", "cert-check")],
        )
        .await
        .expect("query")
        .expect("last run gauge");
    assert_eq!(last.value, completed.as_second() as f64);

    // The histogram: 42 s lands in the 60 s bucket and above, not in 30 s.
    let json = pgw.metrics_json().await.expect("json");
    let text = json.to_string();
    assert!(
        text.contains("security_job_duration_seconds"),
        "histogram pushed: {text}"
    );
    let group = json["data"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["labels"]["job"] == "cert-check" && g["labels"].get("mode").is_none())
        .expect("real group");
    let hist = &group["security_job_duration_seconds"]["metrics"][0];
    assert_eq!(hist["count"], "1", "{hist}");
    assert_eq!(hist["buckets"]["30"], "0", "{hist}");
    assert_eq!(hist["buckets"]["60"], "1", "{hist}");

    // The dry run has its own group and did not overwrite the real series.
    let dry_runs = pgw
        .find_metric(
            &[("job", "cert-check"), ("mode", "dry-run")],
            "security_job_runs_total",
            &[("status", "success")],
        )
        .await
        .expect("query")
        .expect("dry-run group");
    assert_eq!(dry_runs.value, 1.0);
    assert!(
        pgw.find_metric(
            &real_group,
            "security_job_runs_total",
            &[("status", "success")]
        )
        .await
        .expect("query")
        .is_none(),
        "the real group only has the real run"
    );
}

#[tokio::test]
async fn a_push_to_a_dead_pushgateway_is_an_error_not_a_panic() {
    let port = testbed::process::free_port().expect("port");
    let m = Metrics::new("x");
    let config = PushgatewayConfig {
        timeout: common::config::HumanDuration(Duration::from_secs(2)),
        ..PushgatewayConfig::new(HttpUrl::parse(&format!("http://127.0.0.1:{port}")).expect("url"))
    };
    let err = m
        .push(&Pusher::from_config(&config).expect("pusher"), false)
        .await
        .expect_err("nobody listens");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{port}/metrics/job/x")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// What a job run through the harness pushes, read back as Prometheus scrapes it. The alert rules
// in charts/governance-jobs/files/prometheus-rules.yaml are unit-tested (tests/chart) on series
// of exactly these shapes: this test keeps tests/chart/alerts/pushed-series.txt equal to the
// read-back, and tests/chart checks every input series of the promtool test against that file.

/// The probe job's name: its series carry `job="probe"` and `job_name="probe"`.
const PROBE: &str = "probe";

/// A job that finds two critical things and one warning, and fails when told to.
struct Probe {
    fail: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct ProbeArgs {
    #[arg(long)]
    fail: bool,
}

#[derive(Debug, serde::Deserialize)]
struct ProbeConfig {}

impl common::harness::Job for Probe {
    const NAME: &'static str = PROBE;
    const ABOUT: &'static str = "A job for metric tests.";
    type Args = ProbeArgs;
    type Config = ProbeConfig;

    fn prepare(
        args: ProbeArgs,
        _common: &common::harness::CommonArgs,
        _config: &common::config::JobConfig<ProbeConfig>,
    ) -> anyhow::Result<Self> {
        Ok(Probe { fail: args.fail })
    }

    async fn run(
        &self,
        _ctx: &common::harness::RunContext<'_, ProbeConfig>,
    ) -> Result<common::harness::Report, common::harness::JobError> {
        if self.fail {
            return Err(common::harness::JobError::Failed(anyhow::anyhow!(
                "the probe was told to fail"
            )));
        }
        let finding = |severity, resource: &str| {
            common::event::Finding::new("probe", severity, resource, "found")
        };
        Ok(common::harness::Report {
            total_checked: 3,
            findings: vec![
                finding(Severity::Critical, "a"),
                finding(Severity::Critical, "b"),
                finding(Severity::Warning, "c"),
            ],
            ..common::harness::Report::default()
        })
    }
}

/// One sample of the Pushgateway's `/metrics`, as Prometheus ingests it: empty labels dropped.
#[derive(Debug, Clone, PartialEq)]
struct Scraped {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

impl Scraped {
    /// `name{k="v",…}` with the job's name (the `job` and `job_name` values) as `<job>`.
    fn shape(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| {
                let v = if (k == "job" || k == "job_name") && v == PROBE {
                    "<job>"
                } else {
                    v.as_str()
                };
                format!("{k}=\"{v}\"")
            })
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// Parses the text exposition format (the Pushgateway escapes `\` `"` and newlines in values;
/// none of our values contain them, so a value ends at the next `"`).
fn parse_exposition(text: &str) -> Vec<Scraped> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = std::collections::BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let (val, tail) = after.split_once('"').expect("closing quote");
            if !val.is_empty() {
                map.insert(key.trim_start_matches(',').to_string(), val.to_string());
            }
            rest = tail;
        }
        out.push(Scraped {
            name: name.to_string(),
            labels: map,
            value: value.parse().expect("sample value"),
        });
    }
    out
}

async fn scrape(pgw: &Pushgateway) -> Vec<Scraped> {
    let text = reqwest::get(format!("{}/metrics", pgw.url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    parse_exposition(&text)
        .into_iter()
        .filter(|s| s.labels.get("job").map(String::as_str) == Some(PROBE))
        .collect()
}

fn value(samples: &[Scraped], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

async fn run_probe(dir: &std::path::Path, execute: bool, fail: bool) -> std::process::ExitCode {
    common::harness::run::<Probe>(
        common::harness::CommonArgs {
            config: dir.join("config.yaml"),
            execute,
            now: None,
            output: Some(common::harness::OutputFormat::Json),
            log_format: common::logging::LogFormat::Json,
            shard: None,
        },
        ProbeArgs { fail },
    )
    .await
}

#[tokio::test]
async fn a_failed_run_keeps_the_last_success_and_the_pushed_shapes_are_the_alerts_fixture() {
    let pgw = Pushgateway::start().await.expect("pushgateway");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "kafka:\n  fallback:\n    file: events.jsonl\npushgateway:\n  url: {}\njob: {{}}\n",
            pgw.url()
        ),
    )
    .expect("config");
    let main = [("job", "probe"), ("job_name", "probe")];
    let success_group = [
        ("job", "probe"),
        ("job_name", "probe"),
        ("outcome", "success"),
    ];

    // 1. A successful run: both groups.
    let before = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    assert_eq!(run_probe(dir.path(), true, false).await, ExitCode::from(0));
    let after = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let first = scrape(&pgw).await;
    let completed = value(&first, "security_job_last_run_timestamp", &main).expect("last run");
    assert!(before <= completed && completed <= after, "{completed}");
    assert_eq!(
        value(
            &first,
            "security_job_last_success_timestamp_seconds",
            &success_group
        ),
        Some(completed),
        "a success records its completion time"
    );
    assert_eq!(
        value(&first, "security_job_last_run_success", &main),
        Some(1.0)
    );
    let duration = value(&first, "security_job_last_duration_seconds", &main).expect("duration");
    assert!((0.0..=after - before).contains(&duration), "{duration}");
    fn severity(s: &str) -> [(&str, &str); 3] {
        [("job", "probe"), ("job_name", "probe"), ("severity", s)]
    }
    for (s, n) in [
        ("critical", 2.0),
        ("warning", 1.0),
        ("info", 0.0),
        ("ok", 0.0),
    ] {
        assert_eq!(
            value(&first, "security_job_last_run_findings", &severity(s)),
            Some(n),
            "{s}"
        );
    }

    // 2. A failed run replaces the main group and leaves the success group alone.
    assert_eq!(run_probe(dir.path(), true, true).await, ExitCode::from(1));
    let second = scrape(&pgw).await;
    assert_eq!(
        value(&second, "security_job_last_run_success", &main),
        Some(0.0)
    );
    assert_eq!(
        value(
            &second,
            "security_job_last_success_timestamp_seconds",
            &success_group
        ),
        Some(completed),
        "the failed run did not reset the last success"
    );
    assert!(
        value(&second, "security_job_last_run_timestamp", &main).expect("last run") >= completed
    );
    fn status(s: &str) -> [(&str, &str); 3] {
        [("job", "probe"), ("job_name", "probe"), ("status", s)]
    }
    assert_eq!(
        value(&second, "security_job_runs_total", &status("failure")),
        Some(1.0)
    );
    assert_eq!(
        value(&second, "security_job_runs_total", &status("success")),
        None,
        "the PUT replaced the whole main group"
    );
    assert_eq!(
        value(
            &second,
            "security_job_last_run_findings",
            &severity("critical")
        ),
        Some(0.0),
        "a failed run reports no findings"
    );

    // 3. A dry run has groups of its own.
    assert_eq!(run_probe(dir.path(), false, false).await, ExitCode::from(0));
    let third = scrape(&pgw).await;
    let dry = [("job", "probe"), ("job_name", "probe"), ("mode", "dry-run")];
    assert_eq!(
        value(&third, "security_job_last_run_success", &dry),
        Some(1.0)
    );
    assert!(
        value(
            &third,
            "security_job_last_success_timestamp_seconds",
            &[
                ("job", "probe"),
                ("job_name", "probe"),
                ("mode", "dry-run"),
                ("outcome", "success")
            ]
        )
        .is_some()
    );
    assert_eq!(
        value(&third, "security_job_last_run_success", &main),
        Some(0.0),
        "the dry run did not touch the real group"
    );

    // The shapes of every series the harness pushed, over the three states.
    let mut shapes: Vec<String> = [first, second, third]
        .iter()
        .flatten()
        .filter(|s| s.name.starts_with("security_job_") || s.name.starts_with("push_"))
        .map(Scraped::shape)
        .collect();
    shapes.sort();
    shapes.dedup();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../chart/alerts/pushed-series.txt");
    let header = "# Series the harness pushes, as Prometheus scrapes them from the Pushgateway\n\
                  # (empty labels dropped; <job> = the job's name). Written by the e2e test\n\
                  # a_failed_run_keeps_the_last_success_and_the_pushed_shapes_are_the_alerts_fixture\n\
                  # with GOV_UPDATE_FIXTURES=1; tests/chart checks the promtool inputs against it.\n";
    let expected = format!("{header}{}\n", shapes.join("\n"));
    if std::env::var_os("GOV_UPDATE_FIXTURES").is_some() {
        std::fs::write(&fixture, &expected).expect("write fixture");
    }
    let on_disk = std::fs::read_to_string(&fixture).unwrap_or_default();
    assert_eq!(
        on_disk,
        expected,
        "{} is not what the harness pushes; rerun with GOV_UPDATE_FIXTURES=1 and update the promtool tests",
        fixture.display()
    );
}
