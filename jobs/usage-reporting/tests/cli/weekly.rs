//! The weekly run with `--execute`: every figure against the known population, and the same
//! figures in the PDF, the email, the Kafka events and the Pushgateway.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{bucket_of, nearest_rank};
use crate::{
    Env, NOW, OMEGA_NAME, PERIOD, page_one_ink, pdf_text, result_event, run, tenants, text,
};

fn report_of<'a>(events: &'a [Value], slug: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["tenant"]["slug"] == slug)
        .unwrap_or_else(|| panic!("no tenant-usage-report for {slug}"))
}

fn quota<'a>(report: &'a Value, dimension: &str) -> &'a Value {
    report["quotas"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["dimension"] == dimension))
        .unwrap_or_else(|| panic!("no quota {dimension} in {}", report["tenant"]["slug"]))
}

/// The finding of `kind` about `resource`: a tenant (`tenant:delta`), or one of its quotas
/// (`tenant:acme/api_calls_per_month`: the tenant, with that `dimension`).
fn finding<'a>(event: &'a Value, kind: &str, resource: &str) -> &'a Value {
    let (tenant, dimension) = match resource.split_once('/') {
        Some((t, d)) => (t, Some(d)),
        None => (resource, None),
    };
    event["findings"]
        .as_array()
        .and_then(|f| {
            f.iter().find(|f| {
                f["type"] == kind
                    && f["resource"] == tenant
                    && dimension.is_none_or(|d| f["dimension"] == d)
            })
        })
        .unwrap_or_else(|| panic!("no {kind} for {resource}: {:#}", event["findings"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_run_reports_exact_figures_everywhere_the_same() {
    let env = Env::start(tenants()).await;
    let config = env.config("weekly.yaml", &env.prom.url(), "", "");
    let out_dir = env.dir.path().join("reports");
    let out_dir_s = out_dir.display().to_string();
    let config_s = config.display().to_string();
    let args = [
        "--config",
        config_s.as_str(),
        "--execute",
        "--now",
        NOW,
        "--period",
        "weekly",
        "--out-dir",
        out_dir_s.as_str(),
        "--output",
        "json",
    ];
    let out = run(env.dir.path(), &args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let event = result_event(&out);
    assert_eq!(event["status"], "success", "{:#}", event["errors"]);
    assert_eq!(event["summary"]["total_checked"], 4);

    let reports = env.events("tenant-usage-report", 4).await;
    assert_eq!(reports.len(), 4, "one tenant-usage-report per tenant");
    for r in &reports {
        assert_eq!(r["event_type"], "tenant-usage-report");
        assert_eq!(r["dry_run"], false);
    }

    // Calls, errors and bandwidth: exactly the population's, across bravo's counter reset.
    let (from, to) = PERIOD;
    for slug in ["acme", "bravo", "omega"] {
        let truth = env.world.truth(slug, from, to);
        let api = &report_of(&reports, slug)["api"];
        assert_eq!(api["calls"], truth.calls, "{slug} calls");
        assert_eq!(api["failed"], truth.failed, "{slug} failed");
        assert_eq!(
            api["successful"],
            truth.calls - truth.failed,
            "{slug} successful"
        );
        assert_eq!(api["bytes_in"], truth.bytes_in, "{slug} bytes in");
        assert_eq!(api["bytes_out"], truth.bytes_out, "{slug} bytes out");
        let avg = truth.latencies.iter().sum::<f64>() / truth.latencies.len() as f64;
        let reported = report_of(&reports, slug)["latency"]["avg_seconds"]
            .as_f64()
            .expect("avg");
        assert!(
            (reported - avg).abs() < 1e-9,
            "{slug} avg {reported} vs {avg}"
        );
        // The daily series adds up to the period and matches the population day by day.
        let daily = report_of(&reports, slug)["daily"]
            .as_array()
            .expect("daily");
        assert_eq!(daily.len(), 7);
        let by_day: Vec<u64> = daily
            .iter()
            .map(|d| d["calls"].as_u64().expect("calls"))
            .collect();
        let truth_days: Vec<u64> = truth.daily.values().map(|d| d.0).collect();
        assert_eq!(by_day, truth_days, "{slug} calls per day");
    }
    assert!(env.world.truth("bravo", from, to).calls > 0);

    // The zero-error tenant shows 0, not nothing.
    let omega = report_of(&reports, "omega");
    assert_eq!(omega["api"]["failed"], 0);
    assert_eq!(omega["api"]["error_rate"], 0.0);
    let failed_row = omega["table"]
        .as_array()
        .and_then(|t| t.iter().find(|r| r["metric"] == "failed"))
        .expect("failed row");
    assert_eq!(failed_row["value"], "0");

    // P95: inside the bucket of the true P95, and not the average of per-application P95s.
    let truth = env.world.truth("acme", from, to);
    let p95 = &report_of(&reports, "acme")["latency"]["percentiles"]["p95"];
    let (lower, upper) = bucket_of(truth.quantile(0.95));
    assert_eq!(
        (p95["lower"].as_f64(), p95["upper"].as_f64()),
        (Some(lower), Some(upper))
    );
    let value = p95["value"].as_f64().expect("p95 value");
    assert!(
        lower < value && value <= upper,
        "P95 {value} outside ({lower}, {upper}]"
    );
    let per_app: Vec<f64> = truth
        .per_app
        .values()
        .map(|v| nearest_rank(v, 0.95))
        .collect();
    let promql = format!(
        "histogram_quantile(0.95, sum by (application, le) (increase(gateway_request_duration_seconds_bucket{{tenant=\"acme\"}}[{}s])))",
        to - from
    );
    let per_app_prom = env
        .prom
        .query_values(&promql, to, "application")
        .await
        .expect("query");
    assert_eq!(per_app_prom.len(), 2, "{per_app_prom:?}");
    let mean_of_quantiles = per_app_prom.iter().map(|(_, v)| v).sum::<f64>() / 2.0;
    assert!(
        (value - mean_of_quantiles).abs() > 0.1,
        "P95 {value} is the average of quantiles {mean_of_quantiles} (true per-app {per_app:?})"
    );

    // Quotas and findings.
    let acme = report_of(&reports, "acme");
    let calls_quota = quota(acme, "api_calls_per_month");
    let month = env.world.truth("acme", env.world.start, to);
    assert_eq!(
        calls_quota["used"], month.calls as f64,
        "month to date = all 8 days"
    );
    assert_eq!(calls_quota["limit"], 5000.0);
    assert_eq!(calls_quota["limit_source"], "tenant");
    assert_eq!(calls_quota["state"], "exceeded");
    assert_eq!(calls_quota["forecast"]["status"], "projected");
    let f = finding(&event, "quota_exceeded", "tenant:acme/api_calls_per_month");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["used"], month.calls as f64);
    assert_eq!(
        f["contacts"],
        serde_json::json!(["billing@acme.example.com", "ops@acme.example.com"])
    );
    let connectors = quota(acme, "kafka_connectors");
    assert_eq!(
        (connectors["used"].as_f64(), connectors["limit"].as_f64()),
        (Some(4.0), Some(5.0))
    );
    assert_eq!(connectors["state"], "near");
    assert_eq!(
        finding(&event, "quota_near", "tenant:acme/kafka_connectors")["severity"],
        "warning"
    );
    // 28 rising daily maxima: a date, with its basis.
    assert_eq!(
        connectors["forecast"]["status"], "trend",
        "{:#}",
        connectors["forecast"]
    );
    assert!(
        connectors["forecast"]["basis"]
            .as_str()
            .is_some_and(|b| b.contains("linear fit over 28 daily maxima")),
        "{:#}",
        connectors["forecast"]
    );
    assert_eq!(quota(acme, "kafka_connect_tasks")["used"], 5.0);
    assert_eq!(acme["connect"]["tasks_by_state"]["FAILED"], 1);
    let bravo = report_of(&reports, "bravo");
    let zero = quota(bravo, "kafka_connectors");
    assert_eq!(zero["limit"], 0.0);
    assert_eq!(zero["state"], "exceeded");
    assert!(
        zero["ratio"].is_null(),
        "no ratio against a quota of 0: {zero:#}"
    );
    assert_eq!(zero["forecast"]["status"], "no_upward_trend");
    // bravo's counter reset suppresses its rate forecasts and is noted.
    assert_eq!(
        quota(bravo, "api_calls_per_month")["forecast"]["status"],
        "suppressed"
    );
    assert!(
        bravo["notes"].as_array().is_some_and(|n| n
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("counter reset")))),
        "{:#}",
        bravo["notes"]
    );
    assert_eq!(quota(omega, "api_calls_per_month")["state"], "near");
    // delta: in the control plane, no metrics: unknown, not zero, and a finding.
    let delta = report_of(&reports, "delta");
    assert!(delta["api"].is_null(), "{:#}", delta["api"]);
    assert_eq!(
        finding(&event, "no_usage_data", "tenant:delta")["severity"],
        "info"
    );
    let unassigned = &event["details"]["platform"]["unassigned_connectors"];
    assert_eq!(unassigned, &serde_json::json!(["legacy-export"]));

    // The PDFs: every figure of the table, page 1 not blank, and the hostile name as written.
    for r in &reports {
        let slug = r["tenant"]["slug"].as_str().expect("slug");
        let pdf = out_dir.join(format!("usage-{slug}-2026-11-23_2026-11-30.pdf"));
        let text = pdf_text(&pdf);
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for row in r["table"].as_array().expect("table") {
            for cell in ["metric", "value", "quota", "used"] {
                let s = row[cell].as_str().expect("cell");
                assert!(
                    flat.contains(s),
                    "{slug}: {cell} {s:?} not in the PDF text:\n{text}"
                );
            }
        }
        for (_, v) in r["latency"]["percentiles"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let s = format!("{:.3} s", v["value"].as_f64().expect("value"));
            assert!(flat.contains(&s), "{slug}: {s} not in the PDF");
        }
        assert!(
            flat.contains("2026-11-23 to 2026-11-29 (UTC, 7 days)"),
            "{slug}: period"
        );
        let ink_dir = env.dir.path().join(format!("ink-{slug}"));
        std::fs::create_dir_all(&ink_dir).expect("dir");
        let ink = page_one_ink(&pdf, &ink_dir);
        assert!(ink > 0.01, "{slug}: page 1 is blank ({ink})");
    }
    let omega_pdf = pdf_text(&out_dir.join("usage-omega-2026-11-23_2026-11-30.pdf"));
    assert!(
        omega_pdf.contains(OMEGA_NAME),
        "the name as written:\n{omega_pdf}"
    );
    assert!(
        pdf_text(&out_dir.join("usage-delta-2026-11-23_2026-11-30.pdf"))
            .contains("no API usage data")
    );

    // Emails: one per tenant with both parts and both attachments, and the platform summary.
    let mails = env
        .smtp
        .wait_for(5, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails.len(), 5, "4 tenants + the platform summary");
    let acme_mail = mails
        .iter()
        .find(|m| m.to().contains(&"ops@acme.example.com".to_string()))
        .expect("acme's mail");
    assert!(
        acme_mail
            .to()
            .contains(&"billing@acme.example.com".to_string()),
        "both contacts"
    );
    assert!(
        acme_mail
            .subject()
            .is_some_and(|s| s.contains("1 quota(s) exceeded")),
        "{:?}",
        acme_mail.subject()
    );
    let text_body = acme_mail.text_body().expect("text part");
    let html_body = acme_mail.html_body().expect("html part");
    for row in acme["table"].as_array().expect("table") {
        let v = row["value"].as_str().expect("value");
        assert!(
            text_body.contains(v) && html_body.contains(v),
            "{v} missing from the email"
        );
    }
    assert_eq!(
        acme_mail.attachment_names(),
        [
            "usage-acme-2026-11-23_2026-11-30.pdf",
            "usage-acme-2026-11-23_2026-11-30.csv"
        ]
    );
    let omega_mail = mails
        .iter()
        .find(|m| m.to() == ["owner@omega.example.com"])
        .expect("omega's mail");
    assert!(
        omega_mail.subject().is_some_and(|s| s.contains(OMEGA_NAME)),
        "{:?}",
        omega_mail.subject()
    );
    assert!(
        omega_mail
            .html_body()
            .is_some_and(|h| h.contains("&lt;b&gt;&amp;ü&lt;/b&gt;") && !h.contains("<b>&ü</b>")),
        "the name is escaped in HTML"
    );
    let summary = mails
        .iter()
        .find(|m| m.to() == ["platform@platform.example.com"])
        .expect("platform summary");
    assert_eq!(
        summary.attachment_names(),
        ["usage-summary-2026-11-23_2026-11-30.csv"]
    );
    assert!(
        summary
            .text_body()
            .is_some_and(|t| t.contains("legacy-export"))
    );
    assert_eq!(event["alerts_sent"].as_array().map(Vec::len), Some(5));

    // The CSV carries the same cells.
    let csv =
        std::fs::read_to_string(out_dir.join("usage-acme-2026-11-23_2026-11-30.csv")).expect("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    for row in acme["table"].as_array().expect("table") {
        assert!(
            rows.iter()
                .any(|r| &r[4] == row["metric"].as_str().unwrap_or_default()
                    && &r[5] == row["value"].as_str().unwrap_or_default()),
            "{row} not in the CSV"
        );
    }

    // The Pushgateway: the same numbers.
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    let metric = |name: &str, labels: &[(&str, &str)]| {
        testbed::pushgateway::find_metric(&json, &[("job", "usage-reporting")], name, labels)
            .map(|s| s.value)
    };
    for slug in ["acme", "bravo", "omega"] {
        let api = &report_of(&reports, slug)["api"];
        assert_eq!(
            metric("tenant_api_calls", &[("tenant", slug)]),
            api["calls"].as_f64(),
            "{slug}"
        );
        assert_eq!(
            metric("tenant_api_failed_calls", &[("tenant", slug)]),
            api["failed"].as_f64()
        );
        assert_eq!(
            metric(
                "tenant_bandwidth_bytes",
                &[("tenant", slug), ("direction", "out")]
            ),
            api["bytes_out"].as_f64()
        );
        let p95 = report_of(&reports, slug)["latency"]["percentiles"]["p95"]["value"].as_f64();
        let pushed = metric(
            "tenant_api_latency_seconds",
            &[("tenant", slug), ("stat", "p95")],
        );
        assert!(
            matches!((pushed, p95), (Some(a), Some(b)) if (a - b).abs() < 1e-12),
            "{slug}: {pushed:?} vs {p95:?}"
        );
    }
    assert_eq!(
        metric(
            "tenant_quota_usage_ratio",
            &[("tenant", "acme"), ("resource", "kafka_connectors")]
        ),
        Some(0.8)
    );
    assert_eq!(
        metric(
            "tenant_quota_usage_ratio",
            &[("tenant", "bravo"), ("resource", "kafka_connectors")]
        ),
        None,
        "no ratio against a quota of 0"
    );
    assert_eq!(
        metric(
            "tenant_quota_exceeded",
            &[("tenant", "bravo"), ("resource", "kafka_connectors")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric("tenant_api_calls", &[("tenant", "delta")]),
        None,
        "unknown, not 0"
    );

    // The same inputs give byte-identical PDFs (a dry re-render into another directory).
    let again = env.dir.path().join("again");
    let again_s = again.display().to_string();
    let rerun = run(
        env.dir.path(),
        &[
            "--config",
            config_s.as_str(),
            "--now",
            NOW,
            "--period",
            "2026-11-23/2026-11-30",
            "--out-dir",
            again_s.as_str(),
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun).1);
    let mut compared = BTreeMap::new();
    for entry in std::fs::read_dir(&out_dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "pdf") {
            let name = path.file_name().expect("name").to_owned();
            let other = std::fs::read(again.join(&name)).expect("re-rendered pdf");
            assert!(
                std::fs::read(&path).expect("pdf") == other,
                "{name:?} differs"
            );
            compared.insert(name, ());
        }
    }
    assert_eq!(compared.len(), 4);
    assert_eq!(
        env.smtp.messages().expect("mail").len(),
        5,
        "the dry run sent nothing"
    );
}
