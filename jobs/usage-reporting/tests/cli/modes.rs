//! Dry runs, the application-labelled gateway, one tenant, daily runs, and refusals.

use std::time::Duration;

use serde_json::Value;

use crate::{Env, NOW, PERIOD, result_event, run, tenants, text};

fn tenant<'a>(event: &'a Value, slug: &str) -> &'a Value {
    event["details"]["tenants"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["tenant"] == slug))
        .unwrap_or_else(|| panic!("{slug} not in details.tenants"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_application_labels_one_tenant_and_daily_runs() {
    let env = Env::start(tenants()).await;
    let config = env.config("dry.yaml", &env.prom.url(), "", "");
    let config = config.display().to_string();

    // A dry run builds everything, sends nothing, says what it would send, pushes to the
    // dry-run group, and prints a table for people.
    let out = run(
        env.dir.path(),
        &[
            "--config", &config, "--now", NOW, "--period", "weekly", "--output", "table",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.starts_with("period 2026-11-23 to 2026-11-29 (UTC, 7 days)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would send to ops@acme.example.com,billing@acme.example.com")
            || stdout.contains("would send to billing@acme.example.com,ops@acme.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("critical quota_exceeded"), "{stdout}");
    assert!(stdout.contains("dry run success"), "{stdout}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        env.smtp.messages().expect("maildir").is_empty(),
        "a dry run mails nobody"
    );
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    assert!(
        testbed::pushgateway::find_metric(
            &json,
            &[("job", "usage-reporting"), ("mode", "dry-run")],
            "tenant_api_calls",
            &[("tenant", "acme")]
        )
        .is_some(),
        "dry-run group"
    );
    let dry_events = env.events("tenant-usage-report", 4).await;
    assert!(
        dry_events.iter().all(|e| e["dry_run"] == true),
        "marked dry_run"
    );

    // The gateway labels by application: the same figures, summed per tenant in our code, and
    // the quantiles from the summed buckets (not Prometheus' per tenant).
    let by_app = env.config(
        "by-app.yaml",
        &env.prom.url(),
        "    group_by: application\n",
        "",
    );
    let tenant_mode = run(
        env.dir.path(),
        &["--config", &config, "--now", NOW, "--output", "json"],
    )
    .await;
    let app_mode = run(
        env.dir.path(),
        &[
            "--config",
            &by_app.display().to_string(),
            "--now",
            NOW,
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(app_mode.status.code(), Some(0), "{}", text(&app_mode).1);
    let reports = env.events("tenant-usage-report", 12).await;
    assert_eq!(reports.len(), 12, "three dry runs of four tenants");
    let (a, b) = (&reports[4..8], &reports[8..12]);
    for (t, p) in a.iter().zip(b) {
        assert_eq!(t["tenant"]["slug"], p["tenant"]["slug"]);
        assert_eq!(t["api"], p["api"], "{}", t["tenant"]["slug"]);
        let (qt, qa) = (&t["latency"]["percentiles"], &p["latency"]["percentiles"]);
        for k in ["p50", "p95", "p99"] {
            if qt.is_null() {
                assert!(qa.is_null());
                continue;
            }
            let (x, y) = (
                qt[k]["value"].as_f64().expect("x"),
                qa[k]["value"].as_f64().expect("y"),
            );
            assert!(
                (x - y).abs() < 1e-9,
                "{k}: tenant mode {x} vs application mode {y}"
            );
            assert_eq!(qt[k]["lower"], qa[k]["lower"]);
            assert_eq!(qt[k]["upper"], qa[k]["upper"]);
        }
    }
    assert_eq!(result_event(&tenant_mode)["status"], "success");
    let (from, to) = PERIOD;
    assert_eq!(
        b[0]["api"]["calls"],
        env.world.truth("acme", from, to).calls
    );

    // One tenant, by its name: only it, and no platform summary.
    let one = run(
        env.dir.path(),
        &[
            "--config",
            &config,
            "--now",
            NOW,
            "--tenant",
            crate::OMEGA_NAME,
            "--output",
            "json",
        ],
    )
    .await;
    let event = result_event(&one);
    assert_eq!(event["summary"]["total_checked"], 1);
    assert_eq!(tenant(&event, "omega")["name"], crate::OMEGA_NAME);
    assert!(event["details"].get("platform_summary").is_none());

    // A daily run: yesterday only, no PDF by default, and with --execute mail only for
    // tenants whose quotas need attention (plus the platform summary).
    let out_dir = env.dir.path().join("daily");
    let daily = run(
        env.dir.path(),
        &[
            "--config",
            &config,
            "--now",
            NOW,
            "--period",
            "daily",
            "--execute",
            "--out-dir",
            &out_dir.display().to_string(),
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(daily.status.code(), Some(0), "{}", text(&daily).1);
    let event = result_event(&daily);
    assert_eq!(
        event["details"]["period"]["label"],
        "2026-11-29 to 2026-11-29 (UTC, 1 day)"
    );
    let files: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().all(|f| f.ends_with(".csv")),
        "no PDF on daily runs: {files:?}"
    );
    assert_eq!(files.len(), 4);
    assert_eq!(
        tenant(&event, "delta")["email"],
        "not sent: daily run without quota warnings"
    );
    assert_eq!(tenant(&event, "acme")["email"], "sent");
    let mails = env
        .smtp
        .wait_for(4, Duration::from_secs(10))
        .await
        .expect("mail");
    // acme (calls over quota), bravo (connectors over 0), omega (calls near quota), summary.
    assert_eq!(
        mails.len(),
        4,
        "{:?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    assert!(
        mails
            .iter()
            .all(|m| !m.attachment_names().iter().any(|a| a.ends_with(".pdf")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_happen_before_any_side_effect() {
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let cases = [
        (
            write(
                "typo.yaml",
                "job:\n  postgres: {host: db, dbname: cp, user: r}\n  reports: {dayly_pdf: true}\n",
            ),
            vec![],
            "typo.yaml:3:13: job.reports.dayly_pdf: unknown field",
        ),
        (
            write(
                "selector.yaml",
                "job:\n  postgres: {host: db, dbname: cp, user: r}\n  prometheus: {url: http://p:9090, metrics: {failed_selector: 'x=\"1\"} or vector(1) or up{'}}\n",
            ),
            vec![],
            "job.prometheus.metrics.failed_selector",
        ),
        (
            write(
                "nosmtp.yaml",
                "job:\n  postgres: {host: db, dbname: cp, user: r}\n",
            ),
            vec!["--execute"],
            "notify.smtp: --execute sends the reports by email",
        ),
        (
            write(
                "pw.yaml",
                "job:\n  postgres: {host: db, dbname: cp, user: r, password_file: missing.txt}\n",
            ),
            vec![],
            "job.postgres.password_file",
        ),
    ];
    for (config, extra, expected) in cases {
        let mut args = vec!["--config", config.as_str()];
        args.extend(extra);
        let out = run(dir.path(), &args).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{config}: {stderr}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
        assert!(stdout.is_empty(), "nothing reported: {stdout}");
    }
    let out = run(
        dir.path(),
        &["--config", "x.yaml", "--period", "2026-11-30/2026-11-23"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("must be after its start"),
        "{}",
        text(&out).1
    );

    // --help explains the modes.
    let help = run(dir.path(), &["--help"]).await;
    let (stdout, _) = text(&help);
    for needle in [
        "--execute sends the emails",
        "--tenant",
        "--period",
        "--out-dir",
        "dry run",
    ] {
        assert!(
            stdout.contains(needle),
            "--help lacks {needle:?}:\n{stdout}"
        );
    }

    // A tenant nobody has: refused once the control plane was read, nothing sent.
    let env = Env::start(tenants()).await;
    let config = env.config("c.yaml", &env.prom.url(), "", "");
    let out = run(
        env.dir.path(),
        &[
            "--config",
            &config.display().to_string(),
            "--tenant",
            "nobody",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    let event = result_event(&out);
    assert_eq!(event["status"], "failure");
    assert!(
        event["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("nobody")),
        "{event:#}"
    );
}
