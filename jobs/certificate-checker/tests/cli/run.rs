//! Whole runs: every source, every rule, every sink.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use common::event::{Finding, ResultEvent, Severity};
use serde_json::{Value, json};
use testbed::fakekube::FakeKube;
use testbed::kafka::{Tansu, consume_all};
use testbed::pushgateway::Pushgateway;
use testbed::smtp::SmtpSink;

use crate::certs::{self, NOW, days_from_now};
use crate::{run, text};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(ns: &str, name: &str, kind: &str, labelled: bool, data: &[(&str, String)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(b64(v))))
        .collect();
    let labels = if labelled {
        json!({"team": "platform"})
    } else {
        json!({})
    };
    json!({"apiVersion": "v1", "kind": "Secret", "type": kind,
           "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": data})
}

fn find<'a>(event: &'a ResultEvent, kind: &str, resource: &str) -> &'a Finding {
    event
        .findings
        .iter()
        .find(|f| f.kind == kind && f.resource == resource)
        .unwrap_or_else(|| panic!("no {kind} finding for {resource}: {:#?}", event.findings))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_reports_each_certificate_once_and_reaches_every_sink() {
    // Certificates: a root, an intermediate, leaves at each threshold, and the fixtures.
    let root = certs::ca("Test Root");
    let inter = certs::intermediate(&root, "Test Intermediate");
    let expired = certs::leaf(&root, "expired.example", days_from_now(-2));
    let soon = certs::leaf(&inter, "soon.example", days_from_now(3));
    let warn = certs::leaf(&root, "warn.example", days_from_now(20));
    let info = certs::leaf(&root, "info.example", days_from_now(45));
    let fine = certs::leaf(&inter, "localhost", days_from_now(90));
    let hidden = certs::leaf(&root, "hidden.example", days_from_now(1));

    // Kubernetes: labelled TLS secrets, an Opaque one with an extra key, one unlabelled.
    let kube = FakeKube::start().await.expect("fakekube");
    for ns in ["apps", "edge"] {
        kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .expect("namespace");
    }
    let tls = "kubernetes.io/tls";
    let ca = root.cert.pem();
    let seed = [
        secret(
            "apps",
            "expired",
            tls,
            true,
            &[("tls.crt", expired.pem()), ("ca.crt", ca.clone())],
        ),
        secret(
            "apps",
            "soon",
            tls,
            true,
            &[
                ("tls.crt", format!("{}{}", soon.pem(), inter.cert.pem())),
                ("ca.crt", ca.clone()),
            ],
        ),
        secret("apps", "warn", tls, true, &[("tls.crt", warn.pem())]),
        secret("edge", "info", tls, true, &[("tls.crt", info.pem())]),
        secret("edge", "fine", tls, true, &[("tls.crt", fine.pem())]),
        secret(
            "apps",
            "weak",
            tls,
            true,
            &[("tls.crt", certs::RSA1024_PEM.to_string())],
        ),
        secret(
            "apps",
            "legacy",
            "Opaque",
            true,
            &[("cert.pem", certs::SHA1_PEM.to_string())],
        ),
        secret("apps", "hidden", tls, false, &[("tls.crt", hidden.pem())]),
    ];
    for s in seed {
        kube.insert(s).expect("secret");
    }

    // Endpoints: a good chain (same leaf as edge/fine), self-signed, wrong host, dead.
    let ep_fine = certs::serve(
        vec![fine.der().to_vec(), inter.cert.der().to_vec()],
        fine.key.serialize_der(),
    )
    .await;
    let selfsigned = certs::self_signed("localhost", days_from_now(200));
    let ep_self = certs::serve(
        vec![selfsigned.der().to_vec()],
        selfsigned.key.serialize_der(),
    )
    .await;
    let wrong = certs::leaf(&root, "wrong.example", days_from_now(200));
    let ep_wrong = certs::serve(vec![wrong.der().to_vec()], wrong.key.serialize_der()).await;
    let ep_dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr")
    };

    // Vault: OpenBao's real PKI engine, a root and one leaf issued with an explicit not_after.
    let (bao, vault_serial) = crate::vault::openbao_pki("vaulted.example", days_from_now(25)).await;
    let vault = bao.address();
    let vault_resource = format!("vault:pki/{vault_serial}");

    // Sinks.
    let broker = Tansu::start().await.expect("tansu");
    broker
        .create_topic("security-job-results", 1)
        .await
        .expect("topic");
    let pgw = Pushgateway::start().await.expect("pushgateway");
    let sink = SmtpSink::start().await.expect("smtp sink");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("root.pem"), root.cert.pem()).expect("root");
    std::fs::write(dir.path().join("vault-token"), format!("{}\n", bao.token())).expect("token");
    let kubeconfig = kube.write_kubeconfig(dir.path()).expect("kubeconfig");
    let config = format!(
        "kubernetes:\n  kubeconfig: {kubeconfig}\n\
         notify:\n  smtp: {{host: {host}, port: {port}, tls: none, from: certs@example.com}}\n  email_to: [oncall@example.com]\n\
         job:\n\
         \x20 kubernetes: {{enabled: true, label_selector: team=platform, extra_keys: [cert.pem]}}\n\
         \x20 endpoints:\n\
         \x20   - {{address: \"{ep_fine}\", sni: localhost}}\n\
         \x20   - {{address: \"{ep_self}\", sni: localhost}}\n\
         \x20   - {{address: \"{ep_wrong}\", sni: localhost}}\n\
         \x20   - {{address: \"{ep_dead}\"}}\n\
         \x20 vault: {{address: \"{vault}\", mounts: [pki], token_file: vault-token}}\n\
         \x20 roots: {{webpki: false, extra_pem_files: [root.pem]}}\n\
         \x20 timeout: 2s\n",
        kubeconfig = kubeconfig.display(),
        host = sink.host(),
        port = sink.port(),
    );
    std::fs::write(dir.path().join("config.yaml"), config).expect("config");

    let env = [
        ("GOV_KAFKA_BROKERS", broker.bootstrap()),
        ("GOV_PUSHGATEWAY_URL", pgw.url()),
    ];
    let out = run(
        dir.path(),
        &["--config", "config.yaml", "--now", NOW, "--output", "json"],
        &env,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let event: ResultEvent = serde_json::from_str(&stdout).expect("printed event");
    assert!(event.dry_run);
    assert!(event.errors.is_empty(), "{:?}", event.errors);

    // Expiry, one finding per certificate, with its fields.
    let e = find(&event, "certificate_expiry", "k8s:secret/apps/expired");
    assert_eq!(e.severity, Severity::Critical);
    assert_eq!(e.fields["days_remaining"], -2);
    assert_eq!(e.fields["not_after"], days_from_now(-2).to_string());
    assert!(
        e.fields["subject"]
            .as_str()
            .unwrap_or("")
            .contains("expired.example")
    );
    assert!(
        e.fields["issuer"]
            .as_str()
            .unwrap_or("")
            .contains("Test Root")
    );
    let fingerprint = e.fields["fingerprint"].as_str().expect("fingerprint");
    let hex = fingerprint
        .strip_prefix("sha256:")
        .expect("sha256: prefix, as the README shows");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fingerprint}"
    );
    assert!(e.fields["serial"].as_str().is_some_and(|s| !s.is_empty()));
    let soon_f = find(&event, "certificate_expiry", "k8s:secret/apps/soon");
    assert_eq!(
        (soon_f.severity, soon_f.fields["days_remaining"].as_i64()),
        (Severity::Critical, Some(3))
    );
    let w = find(&event, "certificate_expiry", "k8s:secret/apps/warn");
    assert_eq!(
        (w.severity, w.fields["days_remaining"].as_i64()),
        (Severity::Warning, Some(20))
    );
    let i = find(&event, "certificate_expiry", "k8s:secret/edge/info");
    assert_eq!(
        (i.severity, i.fields["days_remaining"].as_i64()),
        (Severity::Info, Some(45))
    );
    let v = find(&event, "certificate_expiry", &vault_resource);
    assert_eq!(
        (v.severity, v.fields["days_remaining"].as_i64()),
        (Severity::Warning, Some(25))
    );

    // The same leaf in a Secret and behind an endpoint: one finding, both locations.
    let fine_url = format!("https://{ep_fine}");
    let f = find(&event, "certificate_expiry", &fine_url);
    assert_eq!(f.severity, Severity::Ok);
    assert_eq!(
        f.fields["locations"],
        json!([fine_url, "k8s:secret/edge/fine"])
    );
    // The intermediate: in a Secret's chain and in the endpoint's chain.
    let inter_f = event
        .findings
        .iter()
        .find(|f| {
            f.kind == "certificate_expiry"
                && f.fields["subject"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Test Intermediate")
        })
        .expect("intermediate");
    assert_eq!(
        inter_f.fields["locations"],
        json!([fine_url, "k8s:secret/apps/soon"])
    );
    // The root, in two ca.crt keys.
    let root_f = event
        .findings
        .iter()
        .find(|f| {
            f.kind == "certificate_expiry" && f.fields["subject"].as_str() == Some("CN=Test Root")
        })
        .expect("root");
    assert_eq!(
        root_f.fields["locations"],
        json!(["k8s:secret/apps/expired", "k8s:secret/apps/soon"])
    );
    assert_eq!(
        event
            .findings
            .iter()
            .filter(|f| f.kind == "certificate_expiry"
                && f.fields["fingerprint"] == root_f.fields["fingerprint"])
            .count(),
        1
    );

    // The other rules.
    let weak = find(&event, "weak_key", "k8s:secret/apps/weak");
    assert_eq!(
        (weak.severity, weak.fields["key_bits"].as_u64()),
        (Severity::Warning, Some(1024))
    );
    assert_eq!(
        find(&event, "sha1_signature", "k8s:secret/apps/legacy").severity,
        Severity::Warning
    );
    let self_url = format!("https://{ep_self}");
    assert_eq!(
        find(&event, "untrusted_chain", &self_url).severity,
        Severity::Critical
    );
    let wrong_url = format!("https://{ep_wrong}");
    let hm = find(&event, "hostname_mismatch", &wrong_url);
    assert_eq!(
        (hm.severity, hm.fields["server_name"].as_str()),
        (Severity::Critical, Some("localhost"))
    );
    let dead_url = format!("https://{ep_dead}");
    let hf = find(&event, "handshake_failed", &dead_url);
    assert!(
        hf.fields["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("connect:"),
        "{hf:?}"
    );
    // Trusted and right-named endpoints raise nothing about trust or names.
    assert!(
        !event
            .findings
            .iter()
            .any(|f| f.resource == fine_url && f.kind != "certificate_expiry")
    );
    assert!(
        !event
            .findings
            .iter()
            .any(|f| f.kind == "untrusted_chain" && f.resource == wrong_url)
    );
    // The unlabelled Secret was not read.
    assert!(!stdout.contains("hidden"), "{stdout}");
    // Distinct certificates: 5 labelled leaves + root + intermediate + 2 fixtures
    // + self-signed + wrong-host + the Vault leaf + the Vault root (its PKI lists it) = 13.
    assert_eq!(event.summary.total_checked, 13);
    let vault_root = event
        .findings
        .iter()
        .find(|f| f.kind == "certificate_expiry" && f.fields["subject"] == "CN=Vault Root")
        .expect("the OpenBao root is listed under pki/certs too");
    assert_eq!(vault_root.severity, Severity::Ok);

    // Kafka carries exactly the printed event.
    let records = consume_all(
        &broker.bootstrap(),
        "security-job-results",
        1,
        Duration::from_secs(20),
    )
    .await
    .expect("consume");
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].0.as_deref(),
        Some(b"certificate-checker".as_slice())
    );
    let consumed: ResultEvent = serde_json::from_slice(&records[0].1).expect("result event");
    assert_eq!(consumed, event, "field by field");

    // Metrics.
    let group = [("job", "certificate-checker"), ("mode", "dry-run")];
    let not_after = pgw
        .find_metric(
            &group,
            "certificate_not_after_timestamp_seconds",
            &[
                ("source", "kubernetes"),
                ("location", "k8s:secret/apps/soon"),
                ("subject", "CN=soon.example"),
            ],
        )
        .await
        .expect("query")
        .expect("not_after gauge");
    assert_eq!(not_after.value, days_from_now(3).as_second() as f64);
    let by_endpoint = pgw
        .find_metric(
            &group,
            "certificate_not_after_timestamp_seconds",
            &[
                ("source", "endpoint"),
                ("location", fine_url.as_str()),
                ("subject", "CN=localhost"),
            ],
        )
        .await
        .expect("query")
        .expect("endpoint gauge");
    assert_eq!(by_endpoint.value, days_from_now(90).as_second() as f64);
    let critical = pgw
        .find_metric(
            &group,
            "certificate_checker_certificates",
            &[("severity", "critical")],
        )
        .await
        .expect("query")
        .expect("per-severity gauge");
    assert_eq!(critical.value, 2.0, "expired + 3 days");
    let findings_total = pgw
        .find_metric(
            &group,
            "security_job_findings_total",
            &[("severity", "critical")],
        )
        .await
        .expect("query")
        .expect("common findings counter");
    assert_eq!(findings_total.value, event.summary.critical as f64);

    // One digest email, routed as critical, naming every non-ok finding.
    let mails = sink
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("mail");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().expect("messages").len(),
        1,
        "one digest, not one per certificate"
    );
    let subject = mails[0].subject().unwrap_or_default();
    assert!(
        subject.starts_with("[critical] certificates: "),
        "{subject}"
    );
    let body = mails[0].text_body().unwrap_or_default();
    for r in [
        "k8s:secret/apps/expired",
        "k8s:secret/apps/warn",
        &vault_resource,
        &wrong_url,
        &dead_url,
    ] {
        assert!(body.contains(r), "digest lacks {r}: {body}");
    }
    assert!(
        !body.contains("k8s:secret/edge/fine"),
        "ok certificates stay out of the digest: {body}"
    );
    assert!(mails[0].html_body().unwrap_or_default().contains("<table>"));
    let email: Vec<_> = event
        .alerts_sent
        .iter()
        .filter(|a| a.channel == "email")
        .collect();
    assert_eq!(email.len(), 1);
    assert!(email[0].delivered);
    assert_eq!(email[0].severity, Severity::Critical);
    assert_eq!(email[0].target, "oncall@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_and_execute_work_without_any_sink() {
    let leaf = certs::self_signed("localhost", days_from_now(20));
    let ep = certs::serve(vec![leaf.der().to_vec()], leaf.key.serialize_der()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.yaml"),
        format!("kafka:\n  fallback: {{file: events.jsonl}}\njob:\n  endpoints: [{{address: \"{ep}\", sni: localhost}}]\n  roots: {{webpki: true}}\n"),
    )
    .expect("config");
    let out = run(
        dir.path(),
        &[
            "--config",
            "config.yaml",
            "--now",
            NOW,
            "--output",
            "table",
            "--execute",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("SEVERITY  TYPE"), "{stdout}");
    let expiry = lines
        .iter()
        .find(|l| l.contains("certificate_expiry"))
        .expect("row");
    assert!(expiry.starts_with("warning"), "{expiry}");
    assert!(
        expiry.contains(" 20 ")
            && expiry.contains("localhost")
            && expiry.contains(&format!("https://{ep}")),
        "{expiry}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("critical") && l.contains("untrusted_chain")),
        "{stdout}"
    );
    assert!(stdout.contains("executed run success"), "{stdout}");
    // --execute changes nothing but the event's dry_run flag.
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("events");
    let event: ResultEvent =
        serde_json::from_str(events.lines().next().expect("line")).expect("event");
    assert!(!event.dry_run);
    assert_eq!(event.summary.total_checked, 1);
}

#[tokio::test]
async fn bad_config_and_missing_secrets_exit_2_before_anything_happens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "job:\n  thresholds: {critical_days: 40, warning_days: 30}\n",
            "job.thresholds: expected critical_days <= warning_days <= info_days",
        ),
        (
            "job:\n  endpoints:\n    - address: nohost\n",
            "config.yaml:3:16: job.endpoints[0].address: expected host:port",
        ),
        (
            "job:\n  vault: {address: \"http://127.0.0.1:1\", mounts: [pki], token_file: missing-token}\n",
            "job.vault.token_file",
        ),
        (
            "job:\n  roots: {extra_pem_files: [nope.pem]}\n",
            "job.roots.extra_pem_files[0]: cannot read",
        ),
        (
            "job:\n  vault: {address: \"http://127.0.0.1:1\", mounts: [pki]}\n",
            "environment variable VAULT_TOKEN",
        ),
    ];
    for (yaml, expected) in cases {
        std::fs::write(dir.path().join("config.yaml"), yaml).expect("config");
        let out = run(dir.path(), &["--config", "config.yaml"], &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{yaml}: stderr lacks {expected:?}: {stderr}"
        );
        assert!(stdout.is_empty(), "no report for a refused run: {stdout}");
    }
}

#[tokio::test]
async fn help_says_execute_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["--help"], &[]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("--execute is accepted"), "{stdout}");
    assert!(stdout.contains("changes nothing"), "{stdout}");
}

/// Runs the checker in `dir` with `kubeconfig` and the given `job:` section body (no sinks),
/// asserts the run ended `partial` (exit 1) with exactly one error, and returns its event.
async fn partial_run(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    job: &str,
) -> ResultEvent {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "kafka:\n  fallback: {{file: events.jsonl}}\nkubernetes:\n  kubeconfig: {}\njob:\n{job}",
            kubeconfig.display()
        ),
    )
    .expect("config");
    let out = run(
        dir,
        &["--config", "config.yaml", "--now", NOW, "--output", "json"],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let event: ResultEvent = serde_json::from_str(&stdout).expect("event");
    assert_eq!(event.status.as_str(), "partial");
    assert_eq!(event.errors.len(), 1, "{:?}", event.errors);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_makes_the_run_partial_but_endpoints_are_still_checked() {
    // A cluster that is gone (connection refused); a 503 would go through kube's retries.
    let kube = FakeKube::start().await.expect("fakekube");
    let leaf = certs::self_signed("localhost", days_from_now(3));
    let ep = certs::serve(vec![leaf.der().to_vec()], leaf.key.serialize_der()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = kube.write_kubeconfig(dir.path()).expect("kubeconfig");
    kube.shutdown().await;
    let event = partial_run(
        dir.path(),
        &kubeconfig,
        &format!(
            "  kubernetes: {{enabled: true}}\n  endpoints: [{{address: \"{ep}\", sni: localhost}}]\n"
        ),
    )
    .await;
    assert!(
        event.errors[0].starts_with("kubernetes: "),
        "{:?}",
        event.errors
    );
    let f = find(&event, "certificate_expiry", &format!("https://{ep}"));
    assert_eq!(f.severity, Severity::Critical);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_answering_503_is_given_up_at_the_list_deadline() {
    // 503 is what kube-rs retries for minutes; the listing's own deadline ends it.
    let kube = FakeKube::start().await.expect("fakekube");
    kube.set_unavailable(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = kube.write_kubeconfig(dir.path()).expect("kubeconfig");
    let event = partial_run(
        dir.path(),
        &kubeconfig,
        "  kubernetes: {enabled: true, list_timeout: 1s}\n",
    )
    .await;
    assert!(
        event.errors[0].contains("job.kubernetes.list_timeout"),
        "{:?}",
        event.errors
    );
    kube.shutdown().await;
}

/// Vault keeps expired certificates under `pki/certs` until a tidy runs, but OpenBao will not
/// issue one whose validity already ended: this one case uses the Vault-shaped stand-in.
#[tokio::test]
async fn an_expired_certificate_still_in_vault_pki_is_critical() {
    let root = certs::ca("Test Root");
    let expired = certs::leaf(&root, "gone.example", days_from_now(-3));
    let vault = crate::vault::start(
        "s.cli-token",
        BTreeMap::from([(
            "pki".to_string(),
            BTreeMap::from([("3a-01".to_string(), expired.pem())]),
        )]),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vault-token"), "s.cli-token\n").expect("token");
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "kafka:\n  fallback: {{file: events.jsonl}}\njob:\n  vault: {{address: \"{vault}\", mounts: [pki], token_file: vault-token}}\n"
        ),
    )
    .expect("config");
    let out = run(
        dir.path(),
        &["--config", "config.yaml", "--now", NOW, "--output", "json"],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let event: ResultEvent = serde_json::from_str(&stdout).expect("event");
    let f = find(&event, "certificate_expiry", "vault:pki/3a-01");
    assert_eq!(
        (f.severity, f.fields["days_remaining"].as_i64()),
        (Severity::Critical, Some(-3))
    );
}
