//! Kill -9 after each step of a rotation, then run again: the next run resumes the journaled
//! rotation and finishes it with one rotation id, one new Vault version and the same value.

use serde_json::{Value, json};
use testbed::fakekube::Rollout;

use crate::bed::{Bed, Needs, unique};
use crate::failures::run_and_kill_after;

const STEPS: [&str; 8] = [
    "journal",
    "create",
    "set",
    "test",
    "promote",
    "propagate",
    "restart",
    "finish",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_each_step_and_a_rerun_finish_with_one_rotation_and_the_same_value() {
    let bed = Bed::start(Needs {
        issuer: true,
        ..Needs::default()
    })
    .await;
    let issuer = bed.issuer.as_ref().expect("issuer");
    let mut scan = Vec::new();
    let mut outputs = Vec::new();
    let mut killed_logs: Vec<String> = Vec::new();
    for step in STEPS {
        let name = format!("k-{step}");
        let path = format!("apps/{name}");
        let old = unique("kill-old");
        issuer.add_key(&name, "initial", &old);
        bed.seed(
            &path,
            json!({"api_key": old, "key_id": "initial"}),
            40,
            json!({}),
        )
        .await;
        bed.kube_secret(&name, &[("api_key", &old), ("key_id", "initial")], None);
        bed.workload(
            "Deployment",
            &name,
            &name,
            false,
            Rollout::Completes { after_reads: 1 },
        );
        let config = bed.config_named(
            &format!("{name}.yaml"),
            &format!(
                "  secrets:\n    - {{name: {name}, type: api-key, owner: o@example.com, vault: secret/{path},\n        target: {{kind: api-key-issuer, server: partners, principal: {name}}},\n        kubernetes: [{{namespace: shop, name: {name}}}]}}\n"
            ),
        );

        killed_logs.extend(run_and_kill_after(&bed, &config, step).await);
        let custom = bed.custom(&path).await;
        let rotation_id = custom["rotation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{step}: journaled before the kill: {custom}"))
            .to_string();
        // The value of the killed run, once it has one.
        let pending: Option<String> = if step == "journal" {
            assert!(bed.pending(&path).await.is_none(), "{step}: no value yet");
            None
        } else if step == "finish" {
            assert_eq!(custom["rotation_state"], "finished", "{step}");
            Some(
                bed.data(&path).await.0["api_key"]
                    .as_str()
                    .expect("key")
                    .to_string(),
            )
        } else {
            let p = bed
                .pending(&path)
                .await
                .unwrap_or_else(|| panic!("{step}: a pending value exists"));
            Some(p["api_key"].as_str().expect("pending key").to_string())
        };

        bed.free_lock();
        let (event, out) = bed.run_ok(&config, true, &[], 0).await;
        let f = event["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["secret"] == name.as_str())
            .expect("finding")
            .clone();
        if step == "finish" {
            assert_eq!(f["result"], "none", "{step}: nothing left to do: {f:#}");
        } else {
            assert_eq!(f["result"], "rotated", "{step}: {f:#}");
            assert_eq!(f["resumed"], true, "{step}");
            assert_eq!(
                f["rotation_id"],
                rotation_id.as_str(),
                "{step}: the same rotation"
            );
        }

        // One rotation: one new version, one new key, one rotation id everywhere.
        let (data, version) = bed.data(&path).await;
        assert_eq!(version, 2, "{step}: exactly one new version");
        let value = data["api_key"].as_str().expect("key").to_string();
        if let Some(p) = &pending {
            assert_eq!(&value, p, "{step}: the same value");
        }
        assert_eq!(data["key_id"], rotation_id.as_str(), "{step}");
        assert_eq!(
            issuer.active_key_ids(&name),
            [rotation_id.clone(), "initial".to_string()],
            "{step}: one key added"
        );
        assert!(issuer.accepts(&name, &value), "{step}");
        let custom = bed.custom(&path).await;
        assert_eq!(custom["rotation_state"], "finished", "{step}");
        assert_eq!(custom["rotation_id"], rotation_id.as_str(), "{step}");
        assert!(
            bed.pending(&path).await.is_none(),
            "{step}: no pending value left"
        );
        assert_eq!(bed.kube_secret_data(&name)["api_key"], value, "{step}");
        assert_eq!(
            bed.template_annotations("deployments", &name)["secret-rotation.governance.io/version"],
            format!("{rotation_id}/2"),
            "{step}"
        );
        let resource = format!("vault:secret/{path}");
        let mine = |events: Vec<Value>| -> Vec<Value> {
            events
                .into_iter()
                .filter(|e| e["resource"] == resource.as_str())
                .collect()
        };
        let intents = mine(bed.events("secret-rotation").await);
        assert!(!intents.is_empty(), "{step}");
        assert!(
            intents
                .iter()
                .all(|e| e["rotation_id"] == rotation_id.as_str()),
            "{step}: {intents:?}"
        );
        let rotated = mine(bed.events("secret-rotated").await);
        assert!(!rotated.is_empty(), "{step}: the outcome was published");
        assert!(
            rotated
                .iter()
                .all(|e| e["rotation_id"] == rotation_id.as_str()),
            "{step}"
        );
        if step != "finish" {
            assert!(
                rotated.len() <= 2,
                "{step}: at least once, at most once per run that reached finish"
            );
        }
        assert!(
            mine(bed.events("secret-rotation-failed").await).is_empty(),
            "{step}"
        );
        scan.extend(bed.all_values(&path).await);
        outputs.push(out);
    }
    let refs: Vec<&std::process::Output> = outputs.iter().collect();
    bed.leak_scan(&refs, &scan).await;
    let killed = killed_logs.join("\n");
    assert!(
        killed.contains("paused after step"),
        "the killed runs' logs are scanned too"
    );
    for v in &scan {
        assert!(
            !killed.contains(v.as_str()),
            "a secret value leaked into a killed run's log"
        );
    }
}
