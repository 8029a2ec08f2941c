//! Whole rotations: a dry run that plans, an `--execute` run that rotates end to end, retiring
//! after the grace period, notices, and a manual type that is never written.

use std::time::Duration;

use serde_json::{Value, json};
use testbed::fakekube::Rollout;

use crate::bed::{Bed, Needs, finding, unique};
use crate::text;

const API_KEY_SECRET: &str = "  secrets:\n    - name: payments-api-key\n      type: api-key\n      owner: payments@example.com\n      vault: secret/apps/payments\n      target: {kind: api-key-issuer, server: partners, principal: payments}\n      kubernetes: [{namespace: shop, name: payments-api-key}]\n";

/// A due API key (40 days old) with its Secret and two consumers (one reads it from `env`, one
/// from a volume), and one unrelated workload.
async fn api_key_bed(needs: Needs) -> (Bed, String) {
    let bed = Bed::start(Needs {
        issuer: true,
        ..needs
    })
    .await;
    let old = unique("old-api-key");
    bed.issuer
        .as_ref()
        .expect("issuer")
        .add_key("payments", "initial", &old);
    bed.seed(
        "apps/payments",
        json!({"api_key": old, "key_id": "initial"}),
        40,
        json!({}),
    )
    .await;
    bed.kube_secret(
        "payments-api-key",
        &[("api_key", &old), ("key_id", "initial")],
        None,
    );
    bed.workload(
        "Deployment",
        "checkout",
        "payments-api-key",
        false,
        Rollout::Completes { after_reads: 2 },
    );
    bed.workload(
        "StatefulSet",
        "ledger",
        "payments-api-key",
        true,
        Rollout::Completes { after_reads: 1 },
    );
    bed.workload(
        "Deployment",
        "unrelated",
        "other-secret",
        false,
        Rollout::Completes { after_reads: 0 },
    );
    (bed, old)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let (bed, old) = api_key_bed(Needs::default()).await;
    let config = bed.config(API_KEY_SECRET);
    let before = bed.custom("apps/payments").await;
    let (event, out) = bed.run_ok(&config, false, &[], 0).await;
    assert_eq!(event["dry_run"], true);
    let f = finding(&event, "payments-api-key");
    assert_eq!(f["type"], "secret_rotation");
    assert_eq!(f["resource"], "vault:secret/apps/payments");
    assert_eq!(f["action"], "rotate");
    assert_eq!(f["result"], "planned");
    assert_eq!(
        f["state"], "overdue",
        "40 days: due at 30, overdue after 37"
    );
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["age_days"], 40);
    assert_eq!(f["secret_type"], "api-key");
    assert_eq!(
        f["consumers"],
        json!(["Deployment/shop/checkout", "StatefulSet/shop/ledger"]),
        "found from pod templates; the unrelated workload is not one"
    );
    assert!(f["message"].as_str().unwrap_or("").contains("would rotate"));

    // Nothing changed anywhere.
    assert_eq!(bed.data("apps/payments").await.1, 1);
    assert_eq!(bed.custom("apps/payments").await, before);
    assert_eq!(
        bed.issuer
            .as_ref()
            .expect("issuer")
            .active_key_ids("payments"),
        ["initial"]
    );
    assert!(
        bed.kube.requests().iter().all(|r| !r.is_write()),
        "a dry run sends no write to Kubernetes"
    );
    assert!(
        !bed.issuer
            .as_ref()
            .expect("issuer")
            .requests()
            .iter()
            .any(|(m, _)| m != "GET"),
        "nor to the issuer"
    );
    // The due event went out, marked as a dry run.
    let due = bed.events("secret-rotation-due").await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0]["dry_run"], true);
    assert_eq!(due[0]["state"], "overdue");
    // The table for people.
    let out_table = bed.run(&config, false, &["--output", "table"]).await;
    let (table, _) = text(&out_table);
    let row = table
        .lines()
        .find(|l| l.contains("payments-api-key"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.starts_with("critical") && row.contains("rotate") && row.contains("planned"),
        "{row}"
    );
    assert!(
        row.contains("Deployment/shop/checkout,StatefulSet/shop/ledger"),
        "{row}"
    );
    bed.leak_scan(&[&out, &out_table], &[old]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_api_key_is_rotated_end_to_end_and_its_two_consumers_verified() {
    let (bed, old) = api_key_bed(Needs {
        pushgateway: true,
        smtp: true,
        ..Needs::default()
    })
    .await;
    let config = bed.config(API_KEY_SECRET);
    let (event, out) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(event["status"], "success", "{event:#}");
    let f = finding(&event, "payments-api-key");
    assert_eq!(f["result"], "rotated", "{f:#}");
    assert_eq!(f["step"], "finish");
    let rotation_id = f["rotation_id"].as_str().expect("rotation id").to_string();
    assert_eq!(rotation_id.len(), 36);
    assert_eq!(&rotation_id[14..15], "7", "a UUIDv7");

    // Vault: one new version holding the new key, check-and-set on version 1.
    let (data, version) = bed.data("apps/payments").await;
    assert_eq!(version, 2);
    let new = data["api_key"].as_str().expect("api_key").to_string();
    assert_ne!(new, old);
    assert_eq!(new.len(), 32);
    assert_eq!(data["key_id"], rotation_id.as_str());
    let custom = bed.custom("apps/payments").await;
    assert_eq!(custom["rotation_state"], "finished");
    assert_eq!(custom["rotation_id"], rotation_id.as_str());
    assert_eq!(custom["last_rotated"], crate::NOW);
    assert_eq!(custom["retire_state"], "pending");
    assert_eq!(custom["retire_ref"], "initial");
    assert_eq!(custom["retire_after"], "2026-12-08T00:00:00Z");
    assert!(
        custom["rotated_by"]
            .as_str()
            .unwrap_or("")
            .starts_with("secret-rotation/"),
        "{custom}"
    );
    assert!(
        bed.pending("apps/payments").await.is_none(),
        "the pending value is deleted once promoted"
    );

    // The issuer holds both keys; both work until the old one is retired.
    let issuer = bed.issuer.as_ref().expect("issuer");
    assert_eq!(
        issuer.active_key_ids("payments"),
        [rotation_id.clone(), "initial".to_string()]
    );
    assert!(issuer.accepts("payments", &new) && issuer.accepts("payments", &old));

    // The Secret carries the new value and says which rotation and version wrote it.
    let secret = bed.kube_secret_data("payments-api-key");
    assert_eq!(secret["api_key"], new);
    let annotations = &bed
        .kube
        .get("secrets", Some("shop"), "payments-api-key")
        .expect("secret")["metadata"]["annotations"];
    assert_eq!(
        annotations["secret-rotation.governance.io/rotation-id"],
        rotation_id.as_str()
    );
    assert_eq!(
        annotations["secret-rotation.governance.io/vault-version"],
        "2"
    );

    // Both consumers restarted and rolled out; the unrelated one untouched.
    let marker = format!("{rotation_id}/2");
    for (plural, name) in [("deployments", "checkout"), ("statefulsets", "ledger")] {
        let a = bed.template_annotations(plural, name);
        assert_eq!(
            a["secret-rotation.governance.io/version"],
            marker.as_str(),
            "{name}"
        );
        assert_eq!(a["kubectl.kubernetes.io/restartedAt"], crate::NOW, "{name}");
        let w = bed.kube.get(plural, Some("shop"), name).expect("workload");
        assert_eq!(
            w["status"]["observedGeneration"], w["metadata"]["generation"],
            "{name} verified"
        );
    }
    assert!(
        bed.template_annotations("deployments", "unrelated")
            .is_null()
    );

    // Events: the intent before the credential changed, then the outcome, one rotation id.
    let intents = bed.events("secret-rotation").await;
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["phase"], "intent");
    assert_eq!(intents[0]["rotation_id"], rotation_id.as_str());
    assert_eq!(
        intents[0]["consumers"],
        json!(["Deployment/shop/checkout", "StatefulSet/shop/ledger"])
    );
    let rotated = bed.events("secret-rotated").await;
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["rotation_id"], rotation_id.as_str());
    assert_eq!(rotated[0]["vault_version"], 2);
    assert_eq!(rotated[0]["dry_run"], false);
    assert!(bed.events("secret-rotation-failed").await.is_empty());
    let results = bed.events("security-job-results").await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["run_id"], event["run_id"]);

    // Metrics.
    let pgw = bed.pgw.as_ref().expect("pushgateway");
    let group = [("job", "secret-rotation")];
    let sample = |metric: &'static str, labels: Vec<(&'static str, &'static str)>| async move {
        pgw.find_metric(&group, metric, &labels)
            .await
            .expect("query")
            .unwrap_or_else(|| panic!("{metric} {labels:?}"))
            .value
    };
    let now_s = crate::NOW
        .parse::<jiff::Timestamp>()
        .expect("now")
        .as_second() as f64;
    assert_eq!(
        sample(
            "secret_rotation_last_success_timestamp_seconds",
            vec![("secret", "payments-api-key")]
        )
        .await,
        now_s
    );
    assert_eq!(
        sample(
            "secret_age_seconds",
            vec![("secret", "payments-api-key"), ("type", "api-key")]
        )
        .await,
        40.0 * 86_400.0,
        "the age the run classified"
    );
    assert_eq!(
        sample(
            "secret_rotation_due_timestamp_seconds",
            vec![("secret", "payments-api-key"), ("type", "api-key")]
        )
        .await,
        now_s - 10.0 * 86_400.0
    );
    assert_eq!(
        sample("secret_rotation_rotations", vec![("result", "rotated")]).await,
        1.0
    );
    assert_eq!(
        sample("secret_rotation_failures", vec![("step", "restart")]).await,
        0.0
    );

    // A second run the same day: nothing to do (fresh), nothing written.
    let (again, out2) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&again, "payments-api-key")["result"], "none");
    assert_eq!(bed.data("apps/payments").await.1, 2);

    // After the grace period a later run retires the old key.
    let out3 = bed
        .run(&config, true, &["--now", "2026-12-09T00:00:00Z"])
        .await;
    let (stdout, stderr) = text(&out3);
    assert_eq!(out3.status.code(), Some(0), "{stdout}\n{stderr}");
    let retired: Value = serde_json::from_str(&stdout).expect("event");
    assert_eq!(finding(&retired, "payments-api-key")["result"], "retired");
    assert_eq!(issuer.active_key_ids("payments"), [rotation_id.as_str()]);
    assert!(!issuer.accepts("payments", &old) && issuer.accepts("payments", &new));
    assert_eq!(bed.custom("apps/payments").await["retire_state"], "done");
    let retire_events: Vec<Value> = bed
        .events("secret-rotation")
        .await
        .into_iter()
        .filter(|e| e["phase"] == "retire")
        .collect();
    assert_eq!(retire_events.len(), 1);
    assert_eq!(retire_events[0]["retired"], "initial");

    let mut values = bed.all_values("apps/payments").await;
    values.push(issuer.admin_token().to_string());
    bed.leak_scan(&[&out, &out2, &out3], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_declared_in_vault_metadata_is_discovered_and_rotated() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let old = unique("old-discovered");
    bed.issuer
        .as_ref()
        .expect("issuer")
        .add_key("reports", "k0", &old);
    bed.seed(
        "managed/reports/api",
        json!({"api_key": old, "key_id": "k0"}),
        31,
        json!({
            "type": "api-key",
            "owner": "reports@example.com",
            "name": "reports-api",
            "target": "{\"kind\": \"api-key-issuer\", \"server\": \"partners\", \"principal\": \"reports\"}",
        }),
    )
    .await;
    // Under the prefix but not declaring itself: not managed.
    bed.seed(
        "managed/other",
        json!({"x": unique("unmanaged-value")}),
        999,
        json!({}),
    )
    .await;
    // A broken declaration: an error of that secret only.
    bed.seed(
        "managed/broken",
        json!({"api_key": unique("broken-value")}),
        31,
        json!({"type": "api-key", "owner": "nope"}),
    )
    .await;
    let config = bed.config("  discover:\n    - vault: secret/managed\n");
    let (event, out) = bed.run_ok(&config, true, &[], 1).await;
    assert_eq!(event["status"], "partial");
    let f = finding(&event, "reports-api");
    assert_eq!(f["origin"], "vault-metadata");
    assert_eq!(f["result"], "rotated", "{f:#}");
    assert_eq!(bed.data("managed/reports/api").await.1, 2);
    assert_eq!(
        bed.custom("managed/reports/api").await["type"],
        "api-key",
        "the declaration is kept"
    );
    let errors = event["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .as_str()
            .unwrap_or("")
            .contains("managed/broken: custom_metadata: owner"),
        "{errors:?}"
    );
    assert!(
        !event["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["resource"] == "vault:secret/managed/other")
    );
    let mut values = bed.all_values("managed/reports/api").await;
    values.extend(bed.all_values("managed/broken").await);
    bed.leak_scan(&[&out], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_go_once_per_due_date_and_a_manual_type_is_never_written() {
    let bed = Bed::start(Needs {
        smtp: true,
        issuer: true,
        ..Needs::default()
    })
    .await;
    let soon = unique("soon-key");
    let master = unique("master-key");
    bed.seed(
        "apps/soon",
        json!({"api_key": soon, "key_id": "k"}),
        25,
        json!({}),
    )
    .await;
    bed.seed("apps/master", json!({"value": master}), 400, json!({}))
        .await;
    bed.kube_secret("master-key", &[("value", &master)], None);
    let config = bed.config(
        "  secrets:\n\
         \x20   - {name: soon, type: api-key, owner: soon@example.com, vault: secret/apps/soon,\n\
         \x20      target: {kind: api-key-issuer, server: partners, principal: soon}}\n\
         \x20   - {name: master, type: encryption-key, owner: crypto@example.com, vault: secret/apps/master,\n\
         \x20      kubernetes: [{namespace: shop, name: master-key}]}\n",
    );
    // The forced run, with --execute: still, a manual type is only noticed.
    let (event, out) = bed.run_ok(&config, true, &["--forced"], 0).await;
    let m = finding(&event, "master");
    assert_eq!(
        (m["action"].as_str(), m["result"].as_str()),
        (Some("manual"), Some("noticed"))
    );
    assert_eq!(m["severity"], "critical", "400 days: overdue");
    assert!(
        m["message"]
            .as_str()
            .unwrap_or("")
            .contains("action required")
    );
    assert_eq!(
        bed.data("apps/master").await,
        (json!({"value": master}), 1),
        "never written"
    );
    assert_eq!(bed.kube_secret_data("master-key")["value"], master);
    // The forced run rotates what would become due before the next one (the API key, due in
    // five days); without --forced it would only have been noticed.
    let s = finding(&event, "soon");
    assert_eq!(s["result"], "rotated", "{s:#}");

    let mails = bed
        .smtp
        .as_ref()
        .expect("smtp")
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails.len(), 1, "one notice: the rotated key needs none");
    assert_eq!(mails[0].to(), ["crypto@example.com"]);
    let subject = mails[0].subject().unwrap_or_default();
    assert!(
        subject.contains("action required: rotate master by 2026-10-27"),
        "{subject}"
    );
    let due = bed.custom("apps/master").await["notice_sent_for"].clone();
    assert_eq!(due, "2026-10-27T00:00:00Z", "recorded once sent");
    assert_eq!(event["alerts_sent"].as_array().map(Vec::len), Some(1));

    // Again: the notice for this due date was sent; no second mail.
    let (again, out2) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&again, "master")["result"], "action_required");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        bed.smtp
            .as_ref()
            .expect("smtp")
            .messages()
            .expect("mails")
            .len(),
        1
    );
    assert_eq!(bed.data("apps/master").await.1, 1);

    // An automatic type in its notice window gets its notice once too.
    let young = unique("young-key");
    bed.seed(
        "apps/young",
        json!({"api_key": young, "key_id": "y"}),
        25,
        json!({}),
    )
    .await;
    let config = bed.config_named(
        "young.yaml",
        "  secrets:\n    - {name: young, type: api-key, owner: young@example.com, vault: secret/apps/young,\n        target: {kind: api-key-issuer, server: partners, principal: young}}\n",
    );
    let (e1, out3) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&e1, "young")["result"], "noticed");
    let (e2, out4) = bed.run_ok(&config, true, &[], 0).await;
    assert_eq!(finding(&e2, "young")["result"], "notice");
    let mails = bed
        .smtp
        .as_ref()
        .expect("smtp")
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("mail");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        bed.smtp
            .as_ref()
            .expect("smtp")
            .messages()
            .expect("mails")
            .len(),
        2
    );
    assert!(mails.iter().any(|m| {
        m.subject()
            .unwrap_or_default()
            .contains("young will be rotated on 2026-12-06")
    }));
    assert_eq!(
        bed.data("apps/young").await.1,
        1,
        "a notice writes no value"
    );

    let mut values = vec![master, young];
    values.extend(bed.all_values("apps/soon").await);
    bed.leak_scan(&[&out, &out2, &out3, &out4], &values).await;
}
