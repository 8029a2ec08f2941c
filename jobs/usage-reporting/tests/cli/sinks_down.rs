//! Every other sink or API down, one at a time, against the real services (the Pushgateway,
//! Prometheus and the fake Kubernetes API behind the test bed's fault proxy): the documented
//! exit code, result event and message for each, nothing invented for what failed, and the
//! other sinks still served.
//!
//! - SMTP down during an `--execute` run (nothing listening; a real server refusing every
//!   message; a server that takes the connection and never answers): `partial`, exit 1 — the
//!   first send is the run's first side effect, so it is not a refusal — one error per email
//!   naming the SMTP server; the events, metrics and files are all there. A silent server costs
//!   one `notify.smtp.timeout`: the later emails are not attempted.
//! - The Pushgateway answering 503: exit 1 (the results could not all be published), the log
//!   names the Pushgateway and its answer; the result event (built before the push, so
//!   `success`), the tenants' events and the emails are delivered; the next run pushes.
//! - The Kubernetes API answering 503 (the inventory's namespaces, for `k8s_namespaces`):
//!   `partial`, exit 1, the error names the kind and the cluster; that dimension is left out
//!   for every tenant, never counted 0; the job takes no Lease (it is read-only), so nothing
//!   is refused.
//! - Prometheus answering 503: `partial`, exit 1, the error names Prometheus, its query and
//!   the answer; no API figure anywhere (events, metrics, emails), the rest reported.
//!   Prometheus timing out is `bad_data.rs` (`failing_sources_make_partial_runs_…`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testbed::fakekube::FakeKube;
use testbed::faultproxy::{Fault, FaultProxy, Route, Rule};
use testbed::pushgateway::find_metric;
use testbed::smtp::SmtpSink;

use crate::{Env, NOW, PERIOD, result_event, run, tenants, text};

/// Replaces `from` by `to` in the config file at `path` (which must contain it).
fn rewrite(path: &Path, from: &str, to: &str) {
    let yaml = std::fs::read_to_string(path).expect("config");
    assert!(yaml.contains(from), "{from:?} not in {yaml}");
    std::fs::write(path, yaml.replace(from, to)).expect("config");
}

/// `--execute` over the weekly period, files in `out_dir`, the event on stdout.
async fn execute(env: &Env, config: &Path, out_dir: &Path) -> std::process::Output {
    run(
        env.dir.path(),
        &[
            "--config",
            &config.display().to_string(),
            "--execute",
            "--now",
            NOW,
            "--period",
            "weekly",
            "--out-dir",
            &out_dir.display().to_string(),
            "--output",
            "json",
        ],
    )
    .await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn report_of<'a>(reports: &'a [Value], slug: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["tenant"]["slug"] == slug)
        .unwrap_or_else(|| panic!("no tenant-usage-report for {slug}"))
}

fn dimensions(report: &Value) -> Vec<String> {
    report["quotas"]
        .as_array()
        .map(|q| {
            q.iter()
                .filter_map(|q| q["dimension"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The tenant-usage-report events published after the first `skip`.
async fn reports_after(env: &Env, skip: usize) -> Vec<Value> {
    let all = env.events("tenant-usage-report", skip + 4).await;
    assert_eq!(all.len(), skip + 4, "one tenant-usage-report per tenant");
    all[skip..].to_vec()
}

/// The result event published on Kafka for `run_id`.
async fn published(env: &Env, run_id: &Value, at_least: usize) -> Value {
    env.events("security-job-results", at_least)
        .await
        .into_iter()
        .find(|e| e["run_id"] == *run_id)
        .unwrap_or_else(|| panic!("the result event of run {run_id} is not on Kafka"))
}

/// Files in `dir`, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts what an `--execute` run whose every email failed on `server` looks like.
fn assert_every_email_failed(event: &Value, server: &str, expect_in_error: &str) {
    assert_eq!(event["status"], "partial", "{event:#}");
    assert_eq!(event["dry_run"], false);
    let errors = strings(&event["errors"]);
    // Four tenants with contacts, then the platform summary; nothing else failed.
    let mut expected: Vec<String> = ["acme", "bravo", "omega", "delta"]
        .iter()
        .map(|t| format!("tenant {t}: email: smtp {server}: "))
        .collect();
    expected.push(format!("platform summary: email: smtp {server}: "));
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for prefix in &expected {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(prefix.as_str()) && e.contains(expect_in_error)),
            "no {prefix:?}…{expect_in_error:?} in {errors:#?}"
        );
    }
    let alerts = event["alerts_sent"].as_array().expect("alerts_sent");
    assert_eq!(alerts.len(), 5, "{alerts:#?}");
    for a in alerts {
        assert_eq!(a["channel"], "email");
        assert_eq!(a["delivered"], false, "{a:#}");
        assert!(
            a["error"]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("smtp {server}: "))),
            "{a:#}"
        );
    }
    for t in event["details"]["tenants"].as_array().expect("tenants") {
        assert_eq!(t["email"], "failed", "{t:#}");
    }
    assert_eq!(event["details"]["platform_summary"]["email"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_in_an_execute_run_is_partial_and_everything_else_is_delivered() {
    let env = Env::start(tenants()).await;
    let (from, to) = PERIOD;
    let smtp_port = format!("port: {}, tls: none", env.smtp.port());
    let mut reports_seen = 0;

    // Nothing listens on the SMTP port (connections refused).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = env.config("smtp-closed.yaml", &env.prom.url(), "", "");
    rewrite(&config, &smtp_port, &format!("port: {closed}, tls: none"));
    let out_dir = env.dir.path().join("closed");
    let out = execute(&env, &config, &out_dir).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial:\n{stderr}\n{stdout}");
    let event = result_event(&out);
    assert_every_email_failed(&event, &format!("127.0.0.1:{closed}"), "");
    // The figures were read and published all the same: exactly the population's.
    let reports = reports_after(&env, reports_seen).await;
    reports_seen += 4;
    for r in &reports {
        assert_eq!(r["dry_run"], false);
        assert_eq!(r["api_source"]["state"], "ok");
    }
    assert_eq!(
        report_of(&reports, "acme")["api"]["calls"],
        env.world.truth("acme", from, to).calls
    );
    assert_eq!(
        published(&env, &event["run_id"], 1).await["status"],
        "partial"
    );
    // The reports are on disk (PDF and CSV per tenant), and the metrics pushed, saying the
    // run did not succeed.
    assert_eq!(files(&out_dir).len(), 8, "{:?}", files(&out_dir));
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    let group = [("job", "usage-reporting")];
    assert_eq!(
        find_metric(&json, &group, "tenant_api_calls", &[("tenant", "acme")]).map(|s| s.value),
        report_of(&reports, "acme")["api"]["calls"].as_f64()
    );
    assert_eq!(
        find_metric(&json, &group, "security_job_last_run_success", &[]).map(|s| s.value),
        Some(0.0)
    );

    // A real server refusing every message: aiosmtpd requiring STARTTLS, spoken to in plain
    // text, answers MAIL with 530.
    let pki = testbed::pki::Pki::generate().expect("pki");
    let refusing = SmtpSink::start_tls(&pki.server.cert, &pki.server.key)
        .await
        .expect("smtp sink requiring starttls");
    let config = env.config("smtp-refusing.yaml", &env.prom.url(), "", "");
    rewrite(
        &config,
        &smtp_port,
        &format!("port: {}, tls: none", refusing.port()),
    );
    let out_dir = env.dir.path().join("refusing");
    let out = execute(&env, &config, &out_dir).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial:\n{stderr}\n{stdout}");
    let event = result_event(&out);
    assert_every_email_failed(&event, &format!("127.0.0.1:{}", refusing.port()), "530");
    let reports = reports_after(&env, reports_seen).await;
    reports_seen += 4;
    assert!(reports.iter().all(|r| r["api_source"]["state"] == "ok"));
    assert_eq!(files(&out_dir).len(), 8);
    assert!(
        refusing.messages().expect("maildir").is_empty(),
        "the refusing server stored nothing"
    );

    // A server that takes the connection and never answers (nothing accepts it): the first
    // email fails after notify.smtp.timeout, and the others are not attempted — without that
    // bound the run waited for as long as the connection stayed open.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let config = env.config("smtp-silent.yaml", &env.prom.url(), "", "");
    rewrite(
        &config,
        &smtp_port,
        &format!("port: {silent_port}, tls: none, timeout: 2s"),
    );
    let out_dir = env.dir.path().join("silent");
    let out = execute(&env, &config, &out_dir).await;
    drop(silent);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial:\n{stderr}\n{stdout}");
    let event = result_event(&out);
    let server = format!("127.0.0.1:{silent_port}");
    assert_every_email_failed(&event, &server, "");
    let errors = strings(&event["errors"]);
    assert_eq!(
        errors[0],
        format!("tenant acme: email: smtp {server}: no answer within 2s (notify.smtp.timeout)")
    );
    for e in &errors[1..] {
        assert!(
            e.ends_with(&format!(
                "smtp {server}: not attempted: an earlier email got no answer within 2s"
            )),
            "{e}"
        );
    }
    let reports = reports_after(&env, reports_seen).await;
    assert!(reports.iter().all(|r| r["api_source"]["state"] == "ok"));
    assert_eq!(files(&out_dir).len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushgateway_503_is_exit_1_with_the_reports_mailed_and_the_event_on_kafka() {
    let env = Env::start(tenants()).await;
    let proxy = FaultProxy::start(&env.pgw.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    let config = env.config("pgw-503.yaml", &env.prom.url(), "", "");
    rewrite(
        &config,
        &format!("url: {}\n", env.pgw.url()),
        &format!("url: {}\n", proxy.endpoint()),
    );

    let out = execute(&env, &config, &env.dir.path().join("down")).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{stdout}");
    // The event is built before the push: the run itself succeeded, the log says what failed.
    let event = result_event(&out);
    assert_eq!(event["status"], "success", "{:#}", event["errors"]);
    assert!(
        stderr.contains("metrics not pushed")
            && stderr.contains(&format!(
                "pushgateway {}/metrics/job/usage-reporting: 503",
                proxy.endpoint()
            )),
        "the log names the Pushgateway and its answer:\n{stderr}"
    );
    assert!(proxy.stats().total("status") >= 1);
    assert_eq!(
        published(&env, &event["run_id"], 1).await["status"],
        "success",
        "the result event is on Kafka all the same"
    );
    let reports = reports_after(&env, 0).await;
    let (from, to) = PERIOD;
    assert_eq!(
        report_of(&reports, "acme")["api"]["calls"],
        env.world.truth("acme", from, to).calls
    );
    let mails = env
        .smtp
        .wait_for(5, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails.len(), 5, "four tenants and the platform summary");
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    assert!(
        find_metric(
            &json,
            &[("job", "usage-reporting")],
            "tenant_api_calls",
            &[]
        )
        .is_none(),
        "nothing reached the Pushgateway"
    );

    // Back: the next run pushes, and succeeds.
    proxy.set_rules(vec![]);
    let out = execute(&env, &config, &env.dir.path().join("back")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    assert_eq!(
        find_metric(
            &json,
            &[("job", "usage-reporting")],
            "tenant_api_calls",
            &[("tenant", "acme")]
        )
        .map(|s| s.value),
        report_of(&reports, "acme")["api"]["calls"].as_f64()
    );
}

/// A namespace of the fake cluster, annotated for `project` (none: not a tenant's).
fn namespace(name: &str, project: Option<&str>) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if let Some(p) = project {
        ns["metadata"]["annotations"] = json!({"governance.io/project": p});
    }
    ns
}

/// A config reading the cluster's namespaces (as the chart's) through `server`.
fn kube_config(env: &Env, kube: &FakeKube, name: &str, server: &str) -> PathBuf {
    let kubeconfig = kube.write_kubeconfig(env.dir.path()).expect("kubeconfig");
    rewrite(&kubeconfig, &kube.url(), server);
    let config = env.config(
        name,
        &env.prom.url(),
        "",
        "  inventory: {kubernetes: {annotation_prefix: governance.io/, kinds: []}}\n",
    );
    let yaml = std::fs::read_to_string(&config).expect("config")
        + &format!(
            "kubernetes:\n  kubeconfig: {}\n  cluster_name: test\n",
            kubeconfig.display()
        );
    std::fs::write(&config, yaml).expect("config");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_api_503_leaves_namespaces_out_and_the_rest_is_reported() {
    let env = Env::start(tenants()).await;
    let kube = FakeKube::start().await.expect("fake kube");
    for i in 0..6 {
        kube.insert(namespace(&format!("acme-{i}"), Some("acme")))
            .expect("namespace");
    }
    kube.insert(namespace("bravo-0", Some("bravo")))
        .expect("namespace");
    kube.insert(namespace("shared", None)).expect("namespace");
    let proxy = FaultProxy::start(&kube.url(), 1).await.expect("proxy");
    let config = kube_config(&env, &kube, "kube.yaml", &proxy.endpoint());
    let config_s = config.display().to_string();

    // Calm: the namespaces count (acme over the default quota of 5), and only what was listed
    // is shown — no AWS dimension without AWS.
    let out = run(
        env.dir.path(),
        &["--config", &config_s, "--now", NOW, "--output", "json"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let calm = reports_after(&env, 0).await;
    let ns = |r: &Value| {
        r["quotas"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["dimension"] == "k8s_namespaces"))
            .cloned()
            .unwrap_or_else(|| panic!("no k8s_namespaces: {:#}", r["quotas"]))
    };
    let acme = ns(report_of(&calm, "acme"));
    assert_eq!(
        (acme["used"].as_f64(), acme["limit"].as_f64()),
        (Some(6.0), Some(5.0))
    );
    assert_eq!(acme["state"], "exceeded");
    assert_eq!(ns(report_of(&calm, "bravo"))["used"], 1.0);
    assert_eq!(ns(report_of(&calm, "delta"))["used"], 0.0);
    assert!(
        !dimensions(report_of(&calm, "acme")).contains(&"ec2_instances".to_string()),
        "AWS was not listed: {:?}",
        dimensions(report_of(&calm, "acme"))
    );

    // The API server answers 503 to everything, during an --execute run.
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    let before = kube.requests().len();
    let out = execute(&env, &config, &env.dir.path().join("kube-down")).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial:\n{stderr}\n{stdout}");
    let event = result_event(&out);
    assert_eq!(event["status"], "partial");
    let errors = strings(&event["errors"]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("inventory: k8s-namespace in ")
            && errors[0].contains("test")
            && errors[0].contains("503"),
        "the error names the kind, the cluster and the answer: {}",
        errors[0]
    );
    // Bounded retries (common::clients::KUBE_RETRIES), not kube's fifteen.
    let faults = proxy.stats().total("status");
    assert!(
        (1..=u64::from(common::clients::KUBE_RETRIES) + 1).contains(&faults),
        "{faults} answers of 503"
    );
    // Read-only: no Lease, nothing written; the job needs no lock, so nothing is refused.
    assert_eq!(
        kube.requests().len(),
        before,
        "nothing reached the API server"
    );
    assert!(kube.list("leases", Some("default")).is_empty());

    let down = reports_after(&env, 4).await;
    let (from, to) = PERIOD;
    for r in &down {
        assert!(
            !dimensions(r).contains(&"k8s_namespaces".to_string()),
            "{}: a dimension nobody could list is left out, never 0: {:?}",
            r["tenant"]["slug"],
            dimensions(r)
        );
        assert!(
            strings(&r["notes"])
                .iter()
                .any(|n| n
                    == "k8s namespaces could not be counted: k8s-namespace could not be listed"),
            "{}: the report says why: {:#}",
            r["tenant"]["slug"],
            r["notes"]
        );
    }
    assert!(
        !event["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["dimension"] == "k8s_namespaces"),
        "no quota finding on a count nobody could make"
    );
    // The other sources and sinks: the API figures, Kafka Connect, the emails, the metrics.
    assert_eq!(
        report_of(&down, "acme")["api"]["calls"],
        env.world.truth("acme", from, to).calls
    );
    assert!(dimensions(report_of(&down, "acme")).contains(&"kafka_connectors".to_string()));
    let mails = env
        .smtp
        .wait_for(5, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails.len(), 5);
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    let group = [("job", "usage-reporting")];
    assert!(
        find_metric(
            &json,
            &group,
            "tenant_quota_used",
            &[("tenant", "acme"), ("resource", "k8s_namespaces")]
        )
        .is_none(),
        "no namespace count pushed"
    );
    assert_eq!(
        find_metric(
            &json,
            &group,
            "usage_report_source_up",
            &[("source", "inventory")]
        )
        .map(|s| s.value),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_503_leaves_the_api_figures_out_and_the_rest_is_reported() {
    let env = Env::start(tenants()).await;
    let proxy = FaultProxy::start(&env.prom.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    let config = env.config("prom-503.yaml", &proxy.endpoint(), "", "");
    let out_dir = env.dir.path().join("prom-down");
    let out = execute(&env, &config, &out_dir).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial:\n{stderr}\n{stdout}");
    let event = result_event(&out);
    assert_eq!(event["status"], "partial");
    let errors = strings(&event["errors"]);
    assert_eq!(errors.len(), 1, "only Prometheus failed: {errors:#?}");
    assert!(
        errors[0].starts_with(&format!("prometheus {}: query ", proxy.endpoint()))
            && errors[0].contains("503"),
        "the error names Prometheus, the query and the answer: {}",
        errors[0]
    );
    assert!(proxy.stats().total("status") >= 1);
    assert!(
        !event["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["type"] == "no_usage_data"),
        "a failed source is an error, not 'no data'"
    );

    // No API figure anywhere; Kafka Connect still reported.
    let reports = reports_after(&env, 0).await;
    for r in &reports {
        assert!(r["api"].is_null(), "{:#}", r["api"]);
        assert!(r["latency"].is_null() || r["latency"]["percentiles"].is_null());
        assert_eq!(r["api_source"]["state"], "failed");
        assert!(
            !dimensions(r).contains(&"api_calls_per_month".to_string()),
            "no rate quota without usage"
        );
    }
    assert!(dimensions(report_of(&reports, "acme")).contains(&"kafka_connectors".to_string()));
    let json = env.pgw.metrics_json().await.expect("pushgateway");
    let group = [("job", "usage-reporting")];
    assert!(find_metric(&json, &group, "tenant_api_calls", &[]).is_none());
    assert_eq!(
        find_metric(
            &json,
            &group,
            "usage_report_source_up",
            &[("source", "prometheus")]
        )
        .map(|s| s.value),
        Some(0.0)
    );
    assert_eq!(
        find_metric(
            &json,
            &group,
            "tenant_quota_used",
            &[("tenant", "acme"), ("resource", "kafka_connectors")]
        )
        .map(|s| s.value),
        Some(4.0)
    );

    // The emails go out, saying what could not be read instead of showing zeros.
    let mails = env
        .smtp
        .wait_for(5, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails.len(), 5);
    let acme = mails
        .iter()
        .find(|m| m.to().iter().any(|t| t.contains("ops@acme.example.com")))
        .expect("acme's email");
    let body = acme.text_body().expect("text body");
    assert!(body.contains("API usage could not be read"), "{body}");
    assert!(!body.contains("API calls"), "{body}");
    let pdf = out_dir.join("usage-acme-2026-11-23_2026-11-30.pdf");
    let pdf = crate::pdf_text(&pdf);
    assert!(pdf.contains("could not be read"), "{pdf}");
}
