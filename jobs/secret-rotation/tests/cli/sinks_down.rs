//! Every other sink or API down, one at a time: the job's exit code, result event and message
//! for each, and what Vault and the target hold afterwards.
//!
//! - Vault **sealed** (the real OpenBao, `sys/seal`) before the run: refused, exit 2, nothing
//!   read or changed (nothing listening at Vault's address: the same); unsealed, the next run
//!   rotates.
//! - Vault sealed **mid-run**, after the first side effect: the fault proxy's trip holds the
//!   journal write that follows step `set` (the new key is at the issuer) while the test seals
//!   OpenBao, then lets it through to the sealed server. The run ends `partial` (exit 1), the
//!   rotation interrupted at `set` with its journal in Vault; unsealed, the next run resumes it
//!   with the same rotation id and the same value.
//! - Vault answering **403**: a real OpenBao token whose policy lets it read one secret but not
//!   write it, and not read another: those two are errors of their own (nothing changed, the old
//!   key still the only one), the permitted one is rotated; `partial`, exit 1.
//! - The **Kubernetes API** answering 503 (the fault proxy in front of the fake API) when an
//!   `--execute` run takes its lock: refused, exit 2, nothing announced or rotated.
//! - **SMTP** not listening when the run sends a notice and a failure alert: the rotation that
//!   went through stays rotated, the run is `partial` (exit 1) naming the SMTP server, the
//!   undelivered mails are in `alerts_sent`, and the events are on Kafka.
//! - The **Pushgateway** answering 503 (the fault proxy): the rotation is done and the result
//!   event, built before the push, says `success` on Kafka; the exit code is 1 (the results
//!   could not all be published) and the log names the Pushgateway and its answer. The next run
//!   pushes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use testbed::fakekube::Rollout;
use testbed::faultproxy::{Fault, FaultProxy, Route, Rule, TripPoint};

use crate::bed::{Bed, Needs, finding, unique};
use crate::text;

fn api_key(name: &str) -> String {
    format!(
        "    - {{name: {name}, type: api-key, owner: {name}@example.com, vault: secret/apps/{name},\n        target: {{kind: api-key-issuer, server: partners, principal: {name}}}}}\n"
    )
}

/// A due API key `apps/<name>` (`age` days old) whose only key at the issuer is `k0`.
async fn seed_key(bed: &Bed, name: &str, age: i64) -> String {
    let old = unique(&format!("{name}-old"));
    bed.issuer
        .as_ref()
        .expect("issuer")
        .add_key(name, "k0", &old);
    bed.seed(
        &format!("apps/{name}"),
        json!({"api_key": old, "key_id": "k0"}),
        age,
        json!({}),
    )
    .await;
    old
}

/// Replaces `from` by `to` in a config file the bed wrote.
fn rewrite(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).expect("config");
    assert!(text.contains(from), "{from} in {text}");
    std::fs::write(config, text.replace(from, to)).expect("config");
}

/// The events on `topic` about `vault:secret/apps/<name>`.
async fn about(bed: &Bed, topic: &str, name: &str) -> Vec<Value> {
    let resource = format!("vault:secret/apps/{name}");
    bed.events(topic)
        .await
        .into_iter()
        .filter(|e| e["resource"] == resource.as_str())
        .collect()
}

/// The result event of run `run_id` as Kafka has it.
async fn result_on_kafka(bed: &Bed, run_id: &Value) -> Value {
    bed.events("security-job-results")
        .await
        .into_iter()
        .find(|e| e["run_id"] == *run_id)
        .unwrap_or_else(|| panic!("the result event of run {run_id} is on Kafka"))
}

/// The event's `errors` (left out of the event when there are none).
fn errors(event: &Value) -> Vec<String> {
    event["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.as_str().expect("text").to_string())
        .collect()
}

async fn seal(bed: &Bed) {
    bed.bao
        .request(reqwest::Method::PUT, "sys/seal", None)
        .await
        .expect("seal");
    let status = bed
        .bao
        .request(reqwest::Method::GET, "sys/seal-status", None)
        .await
        .expect("seal status");
    assert_eq!(status["sealed"], true, "{status}");
}

/// Unseals the dev server with the key it printed at start.
async fn unseal(bed: &Bed, log: &Path) {
    let printed = std::fs::read_to_string(log).expect("openbao log");
    let key = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
        .expect("the dev server prints its unseal key")
        .trim()
        .to_string();
    let status = bed
        .bao
        .request(
            reqwest::Method::PUT,
            "sys/unseal",
            Some(json!({ "key": key })),
        )
        .await
        .expect("unseal");
    assert_eq!(status["sealed"], false, "unsealed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_sealed_before_the_run_refuses_it_and_changes_nothing() {
    let mut bed = Bed::start(Needs {
        issuer: true,
        smtp: true,
        ..Needs::default()
    })
    .await;
    let log: PathBuf = bed.bao.process().log_path().to_path_buf();
    let old = seed_key(&bed, "sealed", 40).await;
    let config = bed.config(&format!("  secrets:\n{}", api_key("sealed")));
    seal(&bed).await;

    let mut outputs = Vec::new();
    for execute in [false, true] {
        let (event, out) = bed.run_ok(&config, execute, &[], 2).await;
        let (_, stderr) = text(&out);
        assert_eq!(event["status"], "failure", "{event:#}");
        assert_eq!(event["dry_run"], !execute);
        let errs = errors(&event);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("aborted: vault unavailable: vault http://")
                && errs[0].contains("is sealed")
                && errs[0].contains("nothing was read or changed"),
            "the error names Vault and why: {errs:?}"
        );
        assert!(stderr.contains("is sealed"), "the log says so: {stderr}");
        assert!(
            event["findings"].as_array().expect("findings").is_empty(),
            "nothing classified on a Vault that cannot be read"
        );
        assert_eq!(
            result_on_kafka(&bed, &event["run_id"]).await["status"],
            "failure"
        );
        outputs.push(out);
    }
    // Nothing listening at Vault's address is refused the same way.
    let port = testbed::process::free_port().expect("port");
    let nowhere = bed.config_named(
        "unreachable.yaml",
        &format!("  secrets:\n{}", api_key("sealed")),
    );
    rewrite(
        &nowhere,
        &format!("address: \"{}\"", bed.bao.address()),
        &format!("address: \"http://127.0.0.1:{port}\""),
    );
    let (event, out) = bed.run_ok(&nowhere, true, &[], 2).await;
    let errs = errors(&event);
    assert!(
        errs.len() == 1
            && errs[0].starts_with("aborted: vault unavailable: vault GET sys/seal-status: ")
            && errs[0].ends_with("nothing was read or changed"),
        "{errs:?}"
    );
    outputs.push(out);
    // Nothing was announced, due or not.
    for topic in ["secret-rotation", "secret-rotation-due", "secret-rotated"] {
        assert!(bed.events(topic).await.is_empty(), "{topic}");
    }
    assert!(
        bed.smtp
            .as_ref()
            .expect("smtp")
            .messages()
            .expect("mails")
            .is_empty(),
        "no mail"
    );

    // Unsealed: nothing changed, and the next run rotates.
    unseal(&bed, &log).await;
    let (data, version) = bed.data("apps/sealed").await;
    assert_eq!((data["api_key"].as_str(), version), (Some(old.as_str()), 1));
    assert!(bed.custom("apps/sealed").await.get("rotation_id").is_none());
    let issuer = bed.issuer.as_ref().expect("issuer");
    assert_eq!(issuer.active_key_ids("sealed"), ["k0"]);
    assert!(issuer.accepts("sealed", &old), "the old key still works");
    let (event, out) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&event, "sealed")["result"], "rotated");
    assert_eq!(bed.data("apps/sealed").await.1, 2);
    outputs.push(out);
    let refs: Vec<&std::process::Output> = outputs.iter().collect();
    bed.leak_scan(&refs, &bed.all_values("apps/sealed").await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_sealed_mid_run_is_partial_and_the_next_run_resumes_the_rotation() {
    let mut bed = Bed::start(Needs {
        issuer: true,
        smtp: true,
        ..Needs::default()
    })
    .await;
    let log: PathBuf = bed.bao.process().log_path().to_path_buf();
    let old_first = seed_key(&bed, "first", 50).await;
    let old_second = seed_key(&bed, "second", 40).await;
    let proxy = FaultProxy::start(&bed.bao.address(), 1)
        .await
        .expect("proxy");
    let config = bed.config(&format!(
        "  secrets:\n{}{}",
        api_key("first"),
        api_key("second")
    ));
    rewrite(
        &config,
        &format!("address: \"{}\"", bed.bao.address()),
        &format!("address: \"{}\"", proxy.endpoint()),
    );
    // first's journal writes: 1 before create, 2 before set, 3 before test (after the new key
    // was set at the issuer). Hold the third, seal Vault, let it through.
    let fired = proxy.trip(
        Arc::new(|m: &reqwest::Method, path: &str, _: &[u8]| {
            m == reqwest::Method::POST && path == "/v1/secret/metadata/apps/first"
        }),
        3,
        TripPoint::Before,
    );
    let run = bed.run(&config, true, &[]);
    let sealer = async {
        fired.notified().await;
        seal(&bed).await;
        proxy.release_trip();
    };
    let (out, ()) = tokio::join!(run, sealer);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    assert_eq!(event["status"], "partial");

    let f = finding(&event, "first");
    assert_eq!(
        (f["result"].as_str(), f["step"].as_str()),
        (Some("interrupted"), Some("set")),
        "{f:#}"
    );
    let message = f["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the next run resumes it") && message.contains("503: Vault is sealed"),
        "{f:#}"
    );
    let rotation_id = f["rotation_id"].as_str().expect("rotation id").to_string();
    // The second one never started: its first journal write met the sealed Vault.
    let s = finding(&event, "second");
    assert_eq!(
        (s["result"].as_str(), s["step"].as_str()),
        (Some("interrupted"), Some("journal")),
        "{s:#}"
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped before any credential changed"),
        "{s:#}"
    );
    let errs = errors(&event);
    assert!(
        errs.iter().any(|e| e
            == "first: rotation interrupted at set: vault POST secret/metadata/apps/first: 503: Vault is sealed"),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e
            == "second: rotation stopped before any credential changed: vault POST secret/metadata/apps/second: 503: Vault is sealed"),
        "{errs:?}"
    );
    assert_eq!(
        result_on_kafka(&bed, &event["run_id"]).await["status"],
        "partial"
    );
    // The intent went out before the key was set; no outcome yet.
    let intents = about(&bed, "secret-rotation", "first").await;
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["rotation_id"], rotation_id.as_str());
    assert!(about(&bed, "secret-rotation", "second").await.is_empty());
    assert!(bed.events("secret-rotated").await.is_empty());
    // The owners and on-call were told, and the event lists those mails.
    let mails = bed
        .smtp
        .as_ref()
        .expect("smtp")
        .wait_for(2, std::time::Duration::from_secs(10))
        .await
        .expect("mails");
    assert!(mails.iter().any(|m| {
        m.subject()
            .unwrap_or_default()
            .contains("rotation of first failed at set")
            && m.to() == ["first@example.com", "oncall@example.com"]
    }));
    let alerts = event["alerts_sent"].as_array().expect("alerts");
    assert!(
        alerts.iter().any(|a| a["delivered"] == true
            && a["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("rotation of first failed at set")),
        "{alerts:?}"
    );

    // Unsealed: the journal says where first stopped; Vault still serves the old key, which
    // still works; the new key is at the issuer beside it.
    unseal(&bed, &log).await;
    let custom = bed.custom("apps/first").await;
    assert_eq!(custom["rotation_state"], "set", "{custom}");
    assert_eq!(custom["rotation_id"], rotation_id.as_str());
    let pending = bed.pending("apps/first").await.expect("the pending value");
    let new = pending["api_key"]
        .as_str()
        .expect("pending key")
        .to_string();
    let (data, version) = bed.data("apps/first").await;
    assert_eq!(
        (data["api_key"].as_str(), version),
        (Some(old_first.as_str()), 1)
    );
    let issuer = bed.issuer.as_ref().expect("issuer");
    assert_eq!(
        issuer.active_key_ids("first"),
        [rotation_id.clone(), "k0".to_string()]
    );
    assert!(issuer.accepts("first", &old_first) && issuer.accepts("first", &new));
    assert!(bed.custom("apps/second").await.get("rotation_id").is_none());
    assert_eq!(bed.data("apps/second").await.1, 1);
    assert_eq!(issuer.active_key_ids("second"), ["k0"]);

    // The next run resumes first (same id, same value, no third key) and rotates second.
    let (again, out2) = bed.run_ok(&config, true, &[], 0).await;
    let f = finding(&again, "first");
    assert_eq!(f["result"], "rotated", "{f:#}");
    assert_eq!(f["resumed"], true);
    assert_eq!(f["rotation_id"], rotation_id.as_str());
    let (data, version) = bed.data("apps/first").await;
    assert_eq!((data["api_key"].as_str(), version), (Some(new.as_str()), 2));
    assert_eq!(
        issuer.active_key_ids("first"),
        [rotation_id.clone(), "k0".to_string()]
    );
    assert_eq!(bed.custom("apps/first").await["rotation_state"], "finished");
    assert_eq!(finding(&again, "second")["result"], "rotated");
    assert_eq!(bed.data("apps/second").await.1, 2);
    let rotated = about(&bed, "secret-rotated", "first").await;
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["rotation_id"], rotation_id.as_str());

    let mut values = bed.all_values("apps/first").await;
    values.extend(bed.all_values("apps/second").await);
    values.extend([old_first, old_second]);
    bed.leak_scan(&[&out, &out2], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_403_for_a_path_the_token_may_not_write_or_read_is_an_error_of_that_secret() {
    let bed = Bed::start(Needs {
        issuer: true,
        smtp: true,
        ..Needs::default()
    })
    .await;
    let old_allowed = seed_key(&bed, "allowed", 40).await;
    let old_readonly = seed_key(&bed, "readonly", 45).await;
    let old_hidden = seed_key(&bed, "hidden", 50).await;
    // A real token: everything on allowed (and its pending values), read-only on readonly,
    // nothing on hidden.
    let policy = r#"
path "secret/data/apps/allowed" { capabilities = ["create", "read", "update"] }
path "secret/metadata/apps/allowed" { capabilities = ["create", "read", "update"] }
path "secret/data/_rotation/apps/allowed/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/_rotation/apps/allowed/*" { capabilities = ["read", "delete"] }
path "secret/data/apps/readonly" { capabilities = ["read"] }
path "secret/metadata/apps/readonly" { capabilities = ["read"] }
"#;
    bed.bao
        .request(
            reqwest::Method::PUT,
            "sys/policies/acl/rotation-partial",
            Some(json!({ "policy": policy })),
        )
        .await
        .expect("policy");
    let created = bed
        .bao
        .request(
            reqwest::Method::POST,
            "auth/token/create",
            Some(json!({"policies": ["rotation-partial"], "ttl": "1h"})),
        )
        .await
        .expect("token");
    let token = created["auth"]["client_token"]
        .as_str()
        .expect("client token")
        .to_string();
    let config = bed.config(&format!(
        "  secrets:\n{}{}{}",
        api_key("allowed"),
        api_key("readonly"),
        api_key("hidden")
    ));
    let env = bed.env_with("BAO_TOKEN", &token);
    let out = crate::run(bed.dir.path(), &Bed::args(&config, true, &[]), &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    assert_eq!(event["status"], "partial");

    assert_eq!(finding(&event, "allowed")["result"], "rotated");
    assert_eq!(bed.data("apps/allowed").await.1, 2);
    // readonly: classified, but its first journal write was refused: nothing changed.
    let r = finding(&event, "readonly");
    assert_eq!(
        (r["result"].as_str(), r["step"].as_str()),
        (Some("interrupted"), Some("journal")),
        "{r:#}"
    );
    assert_eq!(
        r["message"],
        "readonly rotation stopped before any credential changed (the journal could not be written; the next run tries again): vault POST secret/metadata/apps/readonly: 403: permission denied",
        "one line, naming the call and Vault's answer"
    );
    // hidden: its metadata cannot be read: a problem, never attempted.
    let h = finding(&event, "hidden");
    assert_eq!(h["result"], "problem", "{h:#}");
    assert_eq!(
        h["message"],
        "hidden: vault GET secret/metadata/apps/hidden: 403: permission denied"
    );
    let mut errs = errors(&event);
    errs.sort();
    assert_eq!(
        errs,
        [
            "hidden: vault GET secret/metadata/apps/hidden: 403: permission denied",
            "readonly: rotation stopped before any credential changed: vault POST secret/metadata/apps/readonly: 403: permission denied",
        ]
    );
    assert_eq!(
        result_on_kafka(&bed, &event["run_id"]).await["status"],
        "partial"
    );
    // Only allowed was announced and changed.
    assert_eq!(about(&bed, "secret-rotation", "allowed").await.len(), 1);
    for name in ["readonly", "hidden"] {
        assert!(
            about(&bed, "secret-rotation", name).await.is_empty(),
            "{name}"
        );
    }
    let issuer = bed.issuer.as_ref().expect("issuer");
    for (name, old) in [("readonly", &old_readonly), ("hidden", &old_hidden)] {
        let (data, version) = bed.data(&format!("apps/{name}")).await;
        assert_eq!(
            (data["api_key"].as_str(), version),
            (Some(old.as_str()), 1),
            "{name}"
        );
        assert!(
            bed.custom(&format!("apps/{name}"))
                .await
                .get("rotation_id")
                .is_none(),
            "{name}: no journal"
        );
        assert_eq!(issuer.active_key_ids(name), ["k0"], "{name}");
        assert!(issuer.accepts(name, old), "{name}: the old key still works");
    }
    // The owner of readonly was told, in words that do not promise a resume.
    let mails = bed
        .smtp
        .as_ref()
        .expect("smtp")
        .wait_for(1, std::time::Duration::from_secs(10))
        .await
        .expect("mail");
    let mail = mails
        .iter()
        .find(|m| m.to() == ["readonly@example.com", "oncall@example.com"])
        .expect("readonly's alert");
    let body = mail.text_body().unwrap_or_default();
    assert!(
        body.contains("stopped before any credential changed")
            && body.contains("403: permission denied"),
        "{body}"
    );

    let mut values = bed.all_values("apps/allowed").await;
    values.extend([old_allowed, old_readonly, old_hidden, token]);
    bed.leak_scan(&[&out], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_503_at_lock_time_refuses_execute_before_anything_is_rotated() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let old = seed_key(&bed, "orders", 40).await;
    bed.kube_secret("orders-key", &[("api_key", &old), ("key_id", "k0")], None);
    bed.workload(
        "Deployment",
        "orders",
        "orders-key",
        false,
        Rollout::Completes { after_reads: 0 },
    );
    let writes_before = bed.kube.requests().iter().filter(|r| r.is_write()).count();
    let proxy = FaultProxy::start(&bed.kube.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    let config = bed.config(
        "  secrets:\n    - {name: orders, type: api-key, owner: orders@example.com, vault: secret/apps/orders,\n        target: {kind: api-key-issuer, server: partners, principal: orders},\n        kubernetes: [{namespace: shop, name: orders-key}]}\n",
    );
    // The same cluster, through the proxy.
    let kubeconfig = bed.dir.path().join("kubeconfig");
    let proxied = bed.dir.path().join("kubeconfig-proxied");
    let text_kc = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    assert!(text_kc.contains(&bed.kube.url()));
    std::fs::write(
        &proxied,
        text_kc.replace(&bed.kube.url(), &proxy.endpoint()),
    )
    .expect("kubeconfig");
    rewrite(
        &config,
        &format!("kubeconfig: {}", kubeconfig.display()),
        &format!("kubeconfig: {}", proxied.display()),
    );

    let (event, out) = bed.run_ok(&config, true, &[], 2).await;
    let (_, stderr) = text(&out);
    assert_eq!(event["status"], "failure");
    let errs = errors(&event);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("aborted: ")
            && errs[0].contains("run lock")
            && errs[0].contains("governance-jobs/secret-rotation")
            && errs[0].contains("503"),
        "the error names the lock and the API's answer: {errs:?}"
    );
    assert!(stderr.contains("run refused"), "{stderr}");
    assert!(event["findings"].as_array().expect("findings").is_empty());
    assert_eq!(
        result_on_kafka(&bed, &event["run_id"]).await["status"],
        "failure"
    );
    assert!(proxy.stats().total("status") >= 1, "the API was asked");
    // Nothing announced, nothing changed anywhere.
    for topic in ["secret-rotation", "secret-rotation-due", "secret-rotated"] {
        assert!(bed.events(topic).await.is_empty(), "{topic}");
    }
    let (data, version) = bed.data("apps/orders").await;
    assert_eq!((data["api_key"].as_str(), version), (Some(old.as_str()), 1));
    assert!(bed.custom("apps/orders").await.get("rotation_id").is_none());
    let issuer = bed.issuer.as_ref().expect("issuer");
    assert_eq!(issuer.active_key_ids("orders"), ["k0"]);
    assert!(issuer.accepts("orders", &old), "the old key still works");
    assert_eq!(bed.kube_secret_data("orders-key")["api_key"], old);
    assert_eq!(
        bed.kube.requests().iter().filter(|r| r.is_write()).count(),
        writes_before,
        "no write reached Kubernetes"
    );

    // The API back: the same run rotates.
    proxy.set_rules(vec![]);
    let (event, out2) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&event, "orders")["result"], "rotated");
    assert_ne!(bed.kube_secret_data("orders-key")["api_key"], old);
    bed.leak_scan(&[&out, &out2], &bed.all_values("apps/orders").await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_leaves_the_rotation_done_and_the_run_partial_naming_the_server() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let old_due = seed_key(&bed, "due", 40).await;
    // In its notice window (25 days, due at 30, notice 7 days before): an owner notice.
    let old_young = seed_key(&bed, "young", 25).await;
    // A principal that already has two keys: the issuer refuses a third, the rotation fails at
    // set and on-call is alerted.
    let old_full = seed_key(&bed, "full", 45).await;
    bed.issuer
        .as_ref()
        .expect("issuer")
        .add_key("full", "k1", &unique("full-second"));
    let config = bed.config(&format!(
        "  secrets:\n{}{}{}",
        api_key("due"),
        api_key("young"),
        api_key("full")
    ));
    // Nothing listens on this port.
    let port = testbed::process::free_port().expect("port");
    let server = format!("127.0.0.1:{port}");
    rewrite(
        &config,
        "job:\n",
        &format!(
            "notify:\n  smtp: {{host: 127.0.0.1, port: {port}, tls: none, from: rotation@example.com}}\n  email_to: [oncall@example.com]\njob:\n"
        ),
    );

    let (event, out) = bed.run_ok(&config, true, &[], 1).await;
    let (_, stderr) = text(&out);
    assert_eq!(event["status"], "partial", "{event:#}");
    // The rotation that went through is reported as such.
    let d = finding(&event, "due");
    assert_eq!(d["result"], "rotated", "{d:#}");
    let (data, version) = bed.data("apps/due").await;
    assert_eq!(version, 2);
    let new = data["api_key"].as_str().expect("key").to_string();
    let issuer = bed.issuer.as_ref().expect("issuer");
    assert!(issuer.accepts("due", &new), "the new key works");
    // The notice was not sent, and not recorded: the next run sends it.
    let y = finding(&event, "young");
    assert_eq!(y["result"], "notice", "{y:#}");
    assert!(
        y["message"]
            .as_str()
            .unwrap_or_default()
            .contains("owner notice not sent"),
        "{y:#}"
    );
    assert!(
        bed.custom("apps/young")
            .await
            .get("notice_sent_for")
            .is_none()
    );
    // The failed rotation was undone; its alert could not be delivered either.
    let f = finding(&event, "full");
    assert_eq!(
        (f["result"].as_str(), f["step"].as_str()),
        (Some("failed"), Some("set")),
        "{f:#}"
    );
    assert_eq!(issuer.active_key_ids("full").len(), 2);
    assert!(issuer.accepts("full", &old_full));
    assert_eq!(bed.data("apps/full").await.1, 1);

    let errs = errors(&event);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("notice for young: smtp {server}: "))),
        "the error names the SMTP server: {errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("full: rotation failed at set")),
        "{errs:?}"
    );
    let alerts = event["alerts_sent"].as_array().expect("alerts");
    let undelivered: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["channel"] == "email" && a["delivered"] == false)
        .collect();
    assert_eq!(undelivered.len(), 2, "the notice and the alert: {alerts:?}");
    for a in &undelivered {
        assert!(
            a["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("smtp {server}: ")),
            "{a}"
        );
    }
    assert!(
        undelivered.iter().any(|a| a["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("rotation of full failed at set")),
        "{undelivered:?}"
    );
    assert!(stderr.contains(&server), "the log names the server");
    // Kafka has the outcome and the run's event.
    let rotated = about(&bed, "secret-rotated", "due").await;
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["rotation_id"], d["rotation_id"]);
    assert_eq!(about(&bed, "secret-rotation-failed", "full").await.len(), 1);
    let on_kafka = result_on_kafka(&bed, &event["run_id"]).await;
    assert_eq!(on_kafka["status"], "partial");
    assert_eq!(on_kafka["errors"], event["errors"]);

    let mut values = bed.all_values("apps/due").await;
    values.extend([old_due, old_young, old_full]);
    bed.leak_scan(&[&out], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushgateway_503_is_exit_1_with_the_rotation_done_and_its_event_on_kafka() {
    let bed = Bed::start(Needs {
        issuer: true,
        pushgateway: true,
        ..Needs::default()
    })
    .await;
    let old = seed_key(&bed, "metered", 40).await;
    let config = bed.config(&format!("  secrets:\n{}", api_key("metered")));
    let pgw = bed.pgw.as_ref().expect("pushgateway");
    let proxy = FaultProxy::start(&pgw.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    let env = bed.env_with("GOV_PUSHGATEWAY_URL", &proxy.endpoint());
    let out = crate::run(bed.dir.path(), &Bed::args(&config, true, &[]), &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    // The event is built and published before the push: it says what the run did.
    assert_eq!(event["status"], "success", "{event:#}");
    assert!(errors(&event).is_empty());
    assert!(
        stderr.contains("metrics not pushed") && stderr.contains("503"),
        "the log names the Pushgateway push and its answer:\n{stderr}"
    );
    assert!(proxy.stats().total("status") >= 1);
    let f = finding(&event, "metered");
    assert_eq!(f["result"], "rotated");
    let (data, version) = bed.data("apps/metered").await;
    assert_eq!(version, 2);
    let new = data["api_key"].as_str().expect("key").to_string();
    assert!(
        bed.issuer
            .as_ref()
            .expect("issuer")
            .accepts("metered", &new)
    );
    assert_eq!(
        result_on_kafka(&bed, &event["run_id"]).await["status"],
        "success"
    );
    assert_eq!(about(&bed, "secret-rotated", "metered").await.len(), 1);
    assert!(
        pgw.find_metric(
            &[("job", "secret-rotation")],
            "secret_rotation_last_success_timestamp_seconds",
            &[("secret", "metered")],
        )
        .await
        .expect("query")
        .is_none(),
        "nothing reached the Pushgateway"
    );

    // Back: the next run (nothing to do) pushes, with the rotation's time.
    let (again, out2) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&again, "metered")["result"], "none");
    let now_s = crate::NOW
        .parse::<jiff::Timestamp>()
        .expect("now")
        .as_second() as f64;
    let last = pgw
        .find_metric(
            &[("job", "secret-rotation")],
            "secret_rotation_last_success_timestamp_seconds",
            &[("secret", "metered")],
        )
        .await
        .expect("query")
        .expect("pushed");
    assert_eq!(last.value, now_s);
    let mut values = bed.all_values("apps/metered").await;
    values.push(old);
    bed.leak_scan(&[&out, &out2], &values).await;
}
