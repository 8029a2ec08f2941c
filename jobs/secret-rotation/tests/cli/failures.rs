//! When a rotation cannot go through: a check-and-set conflict stops that secret only; a failed
//! rollout (past its progress deadline, or past the job's own timeout) rolls back and the old
//! credential still works; a paused consumer refuses the rotation
//! before anything changes; the cap defers the rest; a held run lock refuses the run.

use std::time::Duration;

use serde_json::json;
use testbed::fakekube::Rollout;
use tokio::io::AsyncBufReadExt as _;

use crate::bed::{Bed, Needs, finding, unique};
use crate::text;

fn api_key(name: &str, principal: &str) -> String {
    format!(
        "    - {{name: {name}, type: api-key, owner: {name}@example.com, vault: secret/apps/{name},\n        target: {{kind: api-key-issuer, server: partners, principal: {principal}}}}}\n"
    )
}

/// Runs with `--pause-after step` until the job says it paused, then kills it (SIGKILL).
pub async fn run_and_kill_after(bed: &Bed, config: &std::path::Path, step: &str) -> Vec<String> {
    let mut cmd = crate::command(
        bed.dir.path(),
        &Bed::args(config, true, &["--pause-after", step]),
        &bed.env(),
    );
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut log = Vec::new();
    let paused = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains("paused after step");
            log.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    assert!(
        paused,
        "the run paused after {step}; its log:\n{}",
        log.join("\n")
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_and_set_conflict_stops_that_secret_only() {
    let bed = Bed::start(Needs {
        issuer: true,
        smtp: true,
        ..Needs::default()
    })
    .await;
    let issuer = bed.issuer.as_ref().expect("issuer");
    let (old_a, old_b) = (unique("conflict-a"), unique("conflict-b"));
    issuer.add_key("a", "a0", &old_a);
    issuer.add_key("b", "b0", &old_b);
    bed.seed(
        "apps/alpha",
        json!({"api_key": old_a, "key_id": "a0"}),
        60,
        json!({}),
    )
    .await;
    bed.seed(
        "apps/beta",
        json!({"api_key": old_b, "key_id": "b0"}),
        40,
        json!({}),
    )
    .await;
    let config = bed.config(&format!(
        "  secrets:\n{}{}",
        api_key("alpha", "a"),
        api_key("beta", "b")
    ));

    // The first run gets alpha (the most overdue) as far as its test, and dies there.
    run_and_kill_after(&bed, &config, "test").await;
    let rotation_id = bed.custom("apps/alpha").await["rotation_id"]
        .as_str()
        .expect("journaled")
        .to_string();
    assert_eq!(issuer.active_key_ids("a").len(), 2, "the new key was set");
    // Meanwhile someone else writes alpha's main path.
    let theirs = unique("someone-elses");
    bed.bao
        .request(
            reqwest::Method::POST,
            "secret/data/apps/alpha",
            Some(json!({"data": {"api_key": theirs, "key_id": "manual"}})),
        )
        .await
        .expect("write");
    bed.free_lock();

    let (event, out) = bed.run_ok(&config, true, &[], 1).await;
    assert_eq!(event["status"], "partial");
    let a = finding(&event, "alpha");
    assert_eq!(
        (a["result"].as_str(), a["step"].as_str()),
        (Some("failed"), Some("promote")),
        "{a:#}"
    );
    assert_eq!(
        a["rotation_id"],
        rotation_id.as_str(),
        "the resumed rotation, same id"
    );
    assert!(
        a["message"]
            .as_str()
            .unwrap_or("")
            .contains("written by someone else"),
        "{a:#}"
    );
    // Theirs stays; our key is revoked again; the journal says failed.
    let (data, version) = bed.data("apps/alpha").await;
    assert_eq!(
        (data["api_key"].as_str(), version),
        (Some(theirs.as_str()), 2)
    );
    assert_eq!(issuer.active_key_ids("a"), ["a0"]);
    let custom = bed.custom("apps/alpha").await;
    assert_eq!(custom["rotation_state"], "failed");
    assert_eq!(custom["rotation_failed_step"], "promote");
    assert!(bed.pending("apps/alpha").await.is_none());
    // The other secret went through.
    assert_eq!(finding(&event, "beta")["result"], "rotated");
    assert_eq!(bed.data("apps/beta").await.1, 2);
    // Events and alerts.
    let failed = bed.events("secret-rotation-failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["rotation_id"], rotation_id.as_str());
    assert_eq!(failed[0]["step"], "promote");
    let mails = bed
        .smtp
        .as_ref()
        .expect("smtp")
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(
        mails[0].to(),
        ["alpha@example.com", "oncall@example.com"],
        "owner and on-call"
    );
    assert!(
        mails[0]
            .subject()
            .unwrap_or_default()
            .contains("rotation of alpha failed at promote")
    );

    let mut values = bed.all_values("apps/alpha").await;
    values.extend(bed.all_values("apps/beta").await);
    values.push(old_a);
    bed.leak_scan(&[&out], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollout_rolls_back_and_the_old_credential_still_works() {
    let bed = Bed::start(Needs {
        postgres: true,
        smtp: true,
        pushgateway: true,
        ..Needs::default()
    })
    .await;
    let pg = bed.postgres.as_ref().expect("postgres");
    let old = unique("app-old");
    pg.execute(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{old}'"),
    )
    .await
    .expect("role");
    bed.seed(
        "db/app",
        json!({"username": "app", "password": old}),
        100,
        json!({}),
    )
    .await;
    bed.kube_secret("app-db", &[("username", "app"), ("password", &old)], None);
    bed.workload(
        "Deployment",
        "healthy",
        "app-db",
        false,
        Rollout::Completes { after_reads: 0 },
    );
    bed.workload(
        "Deployment",
        "broken",
        "app-db",
        true,
        Rollout::ExceedsDeadline,
    );
    let config = bed.config(
        "  caps: {max_restarts_per_wave: 1}\n  secrets:\n    - {name: app-db, type: database-password, owner: app@example.com, vault: secret/db/app,\n        target: {kind: postgres, server: orders, role: app}, kubernetes: [{namespace: shop, name: app-db}]}\n",
    );
    let (event, out) = bed.run_ok(&config, true, &[], 1).await;
    let f = finding(&event, "app-db");
    assert_eq!(
        (f["result"].as_str(), f["step"].as_str()),
        (Some("rolled_back"), Some("restart")),
        "{f:#}"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("progress deadline"),
        "{f:#}"
    );

    // Vault: version 2 was the new value, version 3 is the old one back.
    let (data, version) = bed.data("db/app").await;
    assert_eq!(
        (data["password"].as_str(), version),
        (Some(old.as_str()), 3)
    );
    let values = bed.all_values("db/app").await;
    let new = values
        .iter()
        .find(|v| **v != old)
        .expect("the new value of version 2")
        .clone();
    // The old credential works again; the new one does not (a single user: the target was
    // restored first, before anything pointed back at the old value).
    assert!(
        pg.can_login("app", &old, "postgres").await,
        "the old credential still works"
    );
    assert!(!pg.can_login("app", &new, "postgres").await);
    assert_eq!(bed.kube_secret_data("app-db")["password"], old);
    let annotations = &bed
        .kube
        .get("secrets", Some("shop"), "app-db")
        .expect("secret")["metadata"]["annotations"];
    assert_eq!(
        annotations["secret-rotation.governance.io/vault-version"],
        "3"
    );
    // Waves of one, in name order: broken went first and failed its rollout; the rollback
    // restarted every consumer again for the rolled-back version, broken and healthy alike.
    let id = f["rotation_id"].as_str().expect("id");
    for name in ["healthy", "broken"] {
        assert_eq!(
            bed.template_annotations("deployments", name)["secret-rotation.governance.io/version"],
            format!("{id}/3"),
            "{name}"
        );
    }
    let custom = bed.custom("db/app").await;
    assert_eq!(custom["rotation_state"], "failed");
    assert_eq!(custom["rotation_failed_step"], "restart");
    let failed = bed.events("secret-rotation-failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["step"], "restart");
    assert_eq!(failed[0]["rolled_back"], true);
    assert_eq!(
        failed[0]["consumers_recovered"], false,
        "broken exceeds its deadline on the old value too"
    );
    assert!(bed.events("secret-rotated").await.is_empty());
    let mails = bed
        .smtp
        .as_ref()
        .expect("smtp")
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("mail");
    assert_eq!(mails[0].to(), ["app@example.com", "oncall@example.com"]);
    let pgw = bed.pgw.as_ref().expect("pushgateway");
    let failures = pgw
        .find_metric(
            &[("job", "secret-rotation")],
            "secret_rotation_failures",
            &[("step", "restart")],
        )
        .await
        .expect("query")
        .expect("metric");
    assert_eq!(failures.value, 1.0);
    let mut scan = values.clone();
    scan.push(pg.superuser_password().to_string());
    bed.leak_scan(&[&out], &scan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_consumer_refuses_the_rotation_and_the_cap_defers_the_rest() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let issuer = bed.issuer.as_ref().expect("issuer");
    let mut names = Vec::new();
    // held is the most overdue: refused before the cap counts it, it takes no one's place.
    for (name, age) in [("held", 50), ("one", 41), ("two", 42), ("three", 43)] {
        let v = unique(name);
        issuer.add_key(name, "k0", &v);
        bed.seed(
            &format!("apps/{name}"),
            json!({"api_key": v, "key_id": "k0"}),
            age,
            json!({}),
        )
        .await;
        names.push(name);
    }
    bed.kube_secret("held-key", &[("api_key", "x")], None);
    bed.workload(
        "Deployment",
        "frozen",
        "held-key",
        false,
        Rollout::Completes { after_reads: 0 },
    );
    let mut frozen = bed
        .kube
        .get("deployments", Some("shop"), "frozen")
        .expect("deployment");
    frozen["spec"]["paused"] = json!(true);
    bed.kube.insert(frozen).expect("pause");
    let mut body = String::from("  caps: {max_rotations_per_run: 2}\n  secrets:\n");
    body.push_str("    - {name: held, type: api-key, owner: held@example.com, vault: secret/apps/held,\n        target: {kind: api-key-issuer, server: partners, principal: held}, kubernetes: [{namespace: shop, name: held-key}]}\n");
    for name in ["one", "two", "three"] {
        body.push_str(&api_key(name, name));
    }
    let config = bed.config(&body);
    let (event, out) = bed.run_ok(&config, true, &[], 1).await;
    let held = finding(&event, "held");
    assert_eq!(held["result"], "problem");
    assert!(
        held["message"].as_str().unwrap_or("").contains("paused"),
        "{held:#}"
    );
    assert_eq!(bed.data("apps/held").await.1, 1, "nothing written");
    assert!(
        bed.custom("apps/held").await.get("rotation_id").is_none(),
        "not even the journal"
    );
    assert_eq!(issuer.active_key_ids("held"), ["k0"]);
    // Three due, a cap of two: the two most overdue go (three: 43 days, two: 42), one waits.
    assert_eq!(finding(&event, "three")["result"], "rotated");
    assert_eq!(finding(&event, "two")["result"], "rotated");
    let one = finding(&event, "one");
    assert_eq!(one["result"], "deferred");
    assert!(
        one["message"]
            .as_str()
            .unwrap_or("")
            .contains("max_rotations_per_run")
    );
    assert_eq!(bed.data("apps/one").await.1, 1);
    let mut values = Vec::new();
    for n in names {
        values.extend(bed.all_values(&format!("apps/{n}")).await);
    }
    bed.leak_scan(&[&out], &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_is_refused_while_another_run_holds_the_lock_or_without_kafka() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let v = unique("locked");
    bed.seed(
        "apps/locked",
        json!({"api_key": v, "key_id": "k0"}),
        40,
        json!({}),
    )
    .await;
    let config = bed.config(&format!("  secrets:\n{}", api_key("locked", "locked")));
    bed.kube
        .insert(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "secret-rotation", "namespace": "governance-jobs"},
            "spec": {"holderIdentity": "another-run", "leaseDurationSeconds": 3600,
                     "renewTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                     "acquireTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}}))
        .expect("lease");
    let out = bed.run(&config, true, &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("run lock"), "{stderr}");
    assert_eq!(bed.data("apps/locked").await.1, 1);
    // Without a broker: refused before anything happens.
    bed.free_lock();
    let env: Vec<(&str, String)> = bed
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "GOV_KAFKA_BROKERS")
        .collect();
    let out2 = crate::run(bed.dir.path(), &Bed::args(&config, true, &[]), &env).await;
    let (stdout, stderr) = text(&out2);
    assert_eq!(out2.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("durable audit sink"), "{stderr}");
    assert!(stdout.is_empty());
    assert!(bed.custom("apps/locked").await.get("rotation_id").is_none());
    bed.leak_scan(&[&out, &out2], &[v]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_times_out_rolls_back_too() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let issuer = bed.issuer.as_ref().expect("issuer");
    let old = unique("agent-old");
    issuer.add_key("agent", "k0", &old);
    bed.seed(
        "apps/agent",
        json!({"api_key": old, "key_id": "k0"}),
        40,
        json!({}),
    )
    .await;
    bed.kube_secret("agent-key", &[("api_key", &old), ("key_id", "k0")], None);
    // A DaemonSet has no progress deadline: only the job's own timeout ends the wait.
    bed.workload("DaemonSet", "agent", "agent-key", true, Rollout::Stalls);
    let config = bed.config(
        "  secrets:\n    - {name: agent, type: api-key, owner: agent@example.com, vault: secret/apps/agent,\n        target: {kind: api-key-issuer, server: partners, principal: agent},\n        kubernetes: [{namespace: shop, name: agent-key}]}\n",
    );
    // The bed's rollout section says 15s; this test's is shorter.
    let text_cfg = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text_cfg.replace("timeout: 15s", "timeout: 1s")).expect("config");
    let (event, out) = bed.run_ok(&config, true, &[], 1).await;
    let f = finding(&event, "agent");
    assert_eq!(
        (f["result"].as_str(), f["step"].as_str()),
        (Some("rolled_back"), Some("restart")),
        "{f:#}"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("not verified within 1s"),
        "{f:#}"
    );
    assert_eq!(f["consumers"], json!(["DaemonSet/shop/agent"]));
    let (data, version) = bed.data("apps/agent").await;
    assert_eq!(
        (data["api_key"].as_str(), version),
        (Some(old.as_str()), 3),
        "Vault is back on the old key"
    );
    assert_eq!(
        issuer.active_key_ids("agent"),
        ["k0"],
        "the new key was revoked"
    );
    assert!(
        issuer.accepts("agent", &old),
        "the old credential still works"
    );
    assert_eq!(bed.kube_secret_data("agent-key")["api_key"], old);
    bed.leak_scan(&[&out], &bed.all_values("apps/agent").await)
        .await;
}
