use std::time::Duration;

use common::event::ResultEvent;
use testbed::kafka::{Tansu, consume_all};
use testbed::pushgateway::Pushgateway;

use crate::{DEMO_NOW, demo_config, repo_root, run, text};

/// Copies the demo's files into `dir` and writes a config there with `extra` YAML appended to
/// the shared sections (the `job:` section is the demo's).
fn write_config(dir: &std::path::Path, shared: &str) -> std::path::PathBuf {
    for f in ["whitelist.yaml", "inventory.yaml"] {
        std::fs::copy(repo_root().join("examples").join(f), dir.join(f)).expect("copy demo file");
    }
    let demo = std::fs::read_to_string(demo_config()).expect("demo config");
    let job = &demo[demo.find("job:").expect("job section")..];
    let path = dir.join("config.yaml");
    std::fs::write(&path, format!("{shared}\n{job}")).expect("write config");
    path
}

#[tokio::test]
async fn the_event_on_kafka_equals_the_printed_one_and_metrics_reach_the_pushgateway() {
    let broker = Tansu::start().await.expect("tansu");
    for topic in ["security-job-results", "resource-expiring", "tag-violation"] {
        broker.create_topic(topic, 1).await.expect("topic");
    }
    let pgw = Pushgateway::start().await.expect("pushgateway");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "kafka:\n  delivery_timeout: 10s\n");
    let env = [
        ("GOV_KAFKA_BROKERS", broker.bootstrap()),
        ("GOV_PUSHGATEWAY_URL", pgw.url()),
    ];
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            DEMO_NOW,
            "--output",
            "json",
        ],
        &env,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let printed: ResultEvent = serde_json::from_str(&stdout).expect("printed event");

    let records = consume_all(
        &broker.bootstrap(),
        "security-job-results",
        1,
        Duration::from_secs(20),
    )
    .await
    .expect("consume");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0.as_deref(), Some(b"ttl-teardown".as_slice()));
    let consumed: ResultEvent = serde_json::from_slice(&records[0].1).expect("result event");
    assert_eq!(consumed, printed, "field by field");

    let expiring = consume_all(
        &broker.bootstrap(),
        "resource-expiring",
        4,
        Duration::from_secs(5),
    )
    .await
    .expect("consume");
    assert_eq!(
        expiring.len(),
        3,
        "one event per resource reaching a warning stage"
    );
    let first: serde_json::Value = serde_json::from_slice(&expiring[0].1).expect("json");
    assert_eq!(first["event_type"], "resource-expiring");
    assert_eq!(first["run_id"], printed.run_id.as_str());
    assert_eq!(first["dry_run"], true);
    let violations = consume_all(
        &broker.bootstrap(),
        "tag-violation",
        2,
        Duration::from_secs(5),
    )
    .await
    .expect("consume");
    assert_eq!(violations.len(), 1);

    // A dry run pushes to its own group.
    let group = [("job", "ttl-teardown"), ("mode", "dry-run")];
    let runs = pgw
        .find_metric(&group, "security_job_runs_total", &[("status", "success")])
        .await
        .expect("query")
        .expect("runs counter");
    assert_eq!(runs.value, 1.0);
    let critical = pgw
        .find_metric(
            &group,
            "security_job_findings_total",
            &[("severity", "critical")],
        )
        .await
        .expect("query")
        .expect("findings counter");
    assert_eq!(critical.value, printed.summary.critical as f64);
    let cost = pgw
        .find_metric(
            &group,
            "ttl_cost_avoided_usd_total",
            &[("project", "checkout")],
        )
        .await
        .expect("query")
        .expect("cost counter");
    assert!((cost.value - 154.02).abs() < 1e-6, "{}", cost.value);
    let deleted = pgw
        .find_metric(
            &group,
            "ttl_resources_deleted_total",
            &[("kind", "ec2-instance"), ("project", "checkout")],
        )
        .await
        .expect("query")
        .expect("deleted counter");
    assert_eq!(deleted.value, 1.0);

    // Every resource of the plan is counted under exactly one outcome; the one tag violation
    // (its event above) is "blocked".
    let mut outcomes = 0.0;
    for outcome in [
        "protected",
        "tag-violation",
        "ineligible",
        "nothing",
        "warn",
        "delete",
        "held",
    ] {
        let n = pgw
            .find_metric(&group, "ttl_resources_by_outcome", &[("outcome", outcome)])
            .await
            .expect("query")
            .unwrap_or_else(|| panic!("ttl_resources_by_outcome{{outcome={outcome:?}}}"));
        assert_eq!(n.metric_type, "GAUGE");
        if outcome == "tag-violation" {
            assert_eq!(n.value, 1.0, "{outcome}");
        }
        outcomes += n.value;
    }
    assert_eq!(outcomes, printed.summary.total_checked as f64);

    // The run succeeded, so its success time went to the success group of the dry run.
    let success = pgw
        .find_metric(
            &[
                ("job", "ttl-teardown"),
                ("mode", "dry-run"),
                ("outcome", "success"),
            ],
            "security_job_last_success_timestamp_seconds",
            &[("job_name", "ttl-teardown")],
        )
        .await
        .expect("query")
        .expect("last success gauge");
    assert_eq!(
        success.value,
        printed.completed_at.as_millisecond() as f64 / 1000.0
    );
}

#[tokio::test]
async fn a_bad_config_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "kafka:\n  brokers:\n    - kafka-0:9092\n    - localhost\n",
    );
    let out = run(
        dir.path(),
        &["--config", config.to_str().expect("utf-8")],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let expected = format!(
        "{}:4:7: kafka.brokers[1]: expected host:port",
        config.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr lacks {expected:?}: {stderr}"
    );
    assert!(
        stdout.is_empty(),
        "no report for a run that never started: {stdout}"
    );
    assert!(!dir.path().join("demo-events.jsonl").exists());
}

#[tokio::test]
async fn a_value_out_of_range_is_located_like_a_parse_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    // A value only validation can reject: it parses, but is out of range.
    let yaml = std::fs::read_to_string(&config).expect("config");
    assert!(
        yaml.contains("    max_percent: 50\n"),
        "the demo's caps moved"
    );
    let line = 1 + yaml
        .lines()
        .position(|l| l == "    max_percent: 50")
        .expect("line");
    std::fs::write(
        &config,
        yaml.replace("    max_percent: 50\n", "    max_percent: 250\n"),
    )
    .expect("write");
    let out = run(
        dir.path(),
        &["--config", config.to_str().expect("utf-8")],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let expected = format!(
        "{}:{line}:18: job.caps.max_percent: must be in (0, 100], got 250",
        config.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr lacks {expected:?}: {stderr}"
    );
    // The message for people (the JSON log line carries the same reason as a field).
    let message: String = stderr
        .lines()
        .filter(|l| !l.starts_with('{'))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        message.matches("max_percent").count(),
        1,
        "said once: {message}"
    );
}

#[tokio::test]
async fn a_malformed_inventory_says_what_was_expected_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    std::fs::write(dir.path().join("inventory.yaml"), "- not: a mapping\n").expect("write");
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            DEMO_NOW,
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run fails: {stdout}\n{stderr}"
    );
    let event: serde_json::Value = serde_json::from_str(&stdout).expect("event");
    let error = event["errors"][0].as_str().expect("an error");
    assert!(
        error.contains("expected a mapping with `resources:`"),
        "says the shape: {error}"
    );
    assert_eq!(
        error.matches("inventory.yaml:1:").count(),
        1,
        "said once: {error}"
    );
}

#[tokio::test]
async fn execute_without_a_broker_is_refused_before_any_side_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "kafka:\n  fallback:\n    file: events.jsonl\n");
    let out = run(
        dir.path(),
        &["--config", config.to_str().expect("utf-8"), "--execute"],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--execute needs a durable audit sink"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kafka.brokers"),
        "the message says what to configure: {stderr}"
    );
}

#[tokio::test]
async fn an_unreadable_or_invalid_whitelist_refuses_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    std::fs::remove_file(dir.path().join("whitelist.yaml")).expect("remove");
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            DEMO_NOW,
        ],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("whitelist.yaml"), "{stderr}");

    std::fs::write(
        dir.path().join("whitelist.yaml"),
        "never_delete:\n  aws_resources:\n    - \"arn:aws:ec2\"\n",
    )
    .expect("write");
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            DEMO_NOW,
        ],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("whitelist.yaml:3:"),
        "the whitelist problem names its line: {stderr}"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_logs_output_or_events() {
    let broker = Tansu::start().await.expect("tansu");
    for topic in ["security-job-results", "resource-expiring", "tag-violation"] {
        broker.create_topic(topic, 1).await.expect("topic");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let smtp_password = "Sm7p-Pa55w0rd-do-not-leak";
    let shared = format!(
        "notify:\n  smtp:\n    host: 127.0.0.1\n    port: 2525\n    tls: none\n    from: jobs@example.com\n    username: jobs\n    password: {smtp_password}\n"
    );
    let config = write_config(dir.path(), &shared);
    let webhook = "https://hooks.example.com/services/T000/B000/W3bh00k-S3cret";
    let routing_key = "PD-R0uting-K3y-S3cret";
    let env = [
        ("GOV_KAFKA_BROKERS", broker.bootstrap()),
        ("GOV_CHAT_WEBHOOK_URL", webhook.to_string()),
        ("GOV_PAGERDUTY_ROUTING_KEY", routing_key.to_string()),
        ("RUST_LOG", "debug".to_string()),
    ];
    for output in ["json", "table"] {
        let out = run(
            dir.path(),
            &[
                "--config",
                config.to_str().expect("utf-8"),
                "--now",
                DEMO_NOW,
                "--output",
                output,
            ],
            &env,
        )
        .await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
        assert!(
            stderr.contains("run started"),
            "logs were captured at debug level: {stderr}"
        );
        for secret in [smtp_password, webhook, "W3bh00k-S3cret", routing_key] {
            assert!(!stdout.contains(secret), "{secret} leaked to stdout");
            assert!(!stderr.contains(secret), "{secret} leaked to the logs");
        }
    }
    let mut events = Vec::new();
    for topic in ["security-job-results", "resource-expiring", "tag-violation"] {
        events.extend(
            consume_all(&broker.bootstrap(), topic, 100, Duration::from_secs(3))
                .await
                .expect("consume"),
        );
    }
    assert!(
        events.len() >= 2 + 6 + 2,
        "two runs' events were consumed: {}",
        events.len()
    );
    for (_, payload) in events {
        let text = String::from_utf8_lossy(&payload);
        for secret in [smtp_password, "W3bh00k-S3cret", routing_key] {
            assert!(!text.contains(secret), "{secret} leaked into an event");
        }
    }
}
