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
