//! The platform's whole destruction order, end to end against moto, the fake Kubernetes API and
//! a real Kafka broker: an account with one expired resource of every kind (an IAM role with a
//! managed and an inline policy in an instance profile used by an instance, an Auto Scaling
//! group and its instance, an ALB with a listener and a target group pointing at the instance, a
//! versioned S3 bucket with objects, delete markers and an unfinished upload, a Lambda function,
//! an EKS node group, an RDS instance and its snapshot, a volume, security groups, a namespace)
//! beside protected twins of each (production, restricted data, whitelisted by ARN). `--execute`
//! deletes exactly the expired set, in an order the kinds' own `wait_for` relations allow,
//! archives the audit on moto's S3, and touches nothing protected; a kind that cannot be listed
//! holds what may depend on it, and a failed archive write makes the run partial.

use std::collections::{BTreeMap, BTreeSet};

use inventory::Resource;
use serde_json::Value;

use crate::execute::{Bed, tags};
use crate::seed;
use crate::text;

/// The never-delete rules of this account: the example's, plus ARN rules for a bucket and for
/// a family of functions (S3 ARNs have neither region nor account).
const WHITELIST: &str = r#"never_delete:
  aws_resources:
    - arn: "arn:aws:s3:::stoa-artifacts"
      reason: build artifacts of every release
      owner: platform@example.com
    - arn: "arn:aws:lambda:*:*:function:stoa-core-*"
      reason: stoa core functions
      owner: platform@example.com
  tags:
    - key: critical
      value: "true"
    - key: environment
      value: prod
  kubernetes:
    namespaces: [kube-system]
"#;

/// Where the audit is archived.
const ARCHIVE_BUCKET: &str = "governance-audit";

/// `tags` plus `key=value`.
fn but(t: &BTreeMap<String, String>, key: &str, value: &str) -> BTreeMap<String, String> {
    seed::with(t.clone(), key, value)
}

/// The audit records of the executed run, in publication order.
async fn executed(bed: &Bed) -> Vec<Value> {
    bed.events("resource-deleted")
        .await
        .into_iter()
        .filter(|e| e["dry_run"] == false)
        .collect()
}

/// Ids with an outcome `deleted`.
fn deleted(audit: &[Value]) -> BTreeSet<String> {
    audit
        .iter()
        .filter(|e| e["phase"] == "outcome" && e["result"] == "deleted")
        .filter_map(|e| e["resource"].as_str().map(String::from))
        .collect()
}

/// The whole account as the inventory lists it.
async fn listed(bed: &Bed) -> Vec<Resource> {
    seed::list(&bed.aws.providers()).await.expect("listing")
}

/// The whitelist and a config with the audit archive in `bucket`.
fn config(bed: &Bed, bucket: &str) -> std::path::PathBuf {
    let path = bed.config_with(
        &format!(
            "  caps:\n    max_percent: 100\n    max_deletions: 100\n  audit_archive:\n    bucket: {bucket}\n    prefix: ttl/audit\n"
        ),
        "",
    );
    std::fs::write(bed.dir.path().join("whitelist.yaml"), WHITELIST).expect("whitelist");
    path
}

#[tokio::test]
async fn execute_takes_the_platform_apart_in_dependency_order_archives_and_spares_the_protected() {
    let bed = Bed::start().await;
    let expired = tags(-5, true);
    bed.aws.platform("", &expired).await.expect("platform");
    bed.aws
        .platform("prod-", &but(&expired, "environment", "prod"))
        .await
        .expect("prod twins");
    bed.aws
        .platform("rst-", &but(&expired, "data-class", "restricted"))
        .await
        .expect("restricted twins");
    // Whitelisted by ARN, otherwise as expired as the rest; the role the protected function
    // runs as is held by it (it waits for the function), so it stays too.
    let role = bed.aws.role("stoa-role", &expired).await.expect("role");
    bed.aws
        .bucket("stoa-artifacts", &expired)
        .await
        .expect("bucket");
    bed.aws
        .function("stoa-core-api", &role, &[], &expired)
        .await
        .expect("function");
    bed.aws
        .bucket(ARCHIVE_BUCKET, &BTreeMap::new())
        .await
        .expect("archive bucket");
    let annotations: serde_json::Map<String, Value> = expired
        .iter()
        .map(|(k, v)| (format!("ttl.governance.io/{k}"), Value::String(v.clone())))
        .collect();
    for ns in ["preview-1", "prod-preview"] {
        let mut a = annotations.clone();
        if ns.starts_with("prod") {
            a.insert("ttl.governance.io/environment".into(), "prod".into());
        }
        bed.kube
            .insert(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "annotations": a}}))
            .expect("namespace");
    }
    let before = listed(&bed).await;
    let config = config(&bed, ARCHIVE_BUCKET);

    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let event: Value = serde_json::from_str(&stdout).expect("event");
    let audit = executed(&bed).await;

    // Exactly the expired set: every listed AWS resource with the expired tags that no rule
    // protects, the parts that go with them (root volumes, a group's instances, through parts
    // of parts), and the expired namespace.
    let protected = |r: &Resource| {
        r.name.starts_with("prod-")
            || r.name.starts_with("rst-")
            || r.name.starts_with("stoa-")
            || r.tags.get("environment").is_some_and(|e| e == "prod")
            || r.tags.get("data-class").is_some_and(|d| d == "restricted")
    };
    let mut want: BTreeSet<String> = before
        .iter()
        .filter(|r| r.tags.contains_key("ttl-notified-stage") && !protected(r))
        .map(|r| r.id.clone())
        .chain(["k8s:preview-1".to_string()])
        .collect();
    loop {
        let parts: Vec<String> = before
            .iter()
            .filter(|r| !want.contains(&r.id))
            .filter(|r| r.part_of.as_ref().is_some_and(|o| want.contains(o)))
            .map(|r| r.id.clone())
            .collect();
        if parts.is_empty() {
            break;
        }
        want.extend(parts);
    }
    assert!(
        want.iter()
            .any(|id| id.contains(":volume/")
                && before.iter().any(|r| r.id == *id && r.tags.is_empty())),
        "an untagged root volume goes with its instance"
    );
    let got = deleted(&audit);
    let kinds_of = |ids: &BTreeSet<String>| -> BTreeSet<&str> {
        before
            .iter()
            .filter(|r| ids.contains(&r.id))
            .map(|r| r.kind)
            .collect()
    };
    assert_eq!(
        got.iter()
            .filter(|id| id.starts_with("arn:"))
            .collect::<BTreeSet<_>>(),
        want.iter()
            .filter(|id| id.starts_with("arn:"))
            .collect::<BTreeSet<_>>(),
        "deleted {:?}",
        kinds_of(&got)
    );
    assert!(
        got.iter().any(|id| id.ends_with("preview-1"))
            && !got.iter().any(|id| id.contains("prod-preview")),
        "{got:?}"
    );
    let every_aws_kind: BTreeSet<&str> = inventory::kinds::KINDS
        .iter()
        .filter(|k| k.aws().is_some())
        .map(|k| k.name())
        .collect();
    assert_eq!(kinds_of(&got), every_aws_kind, "one of every kind went");

    // Order: nothing's intent before the outcome of what it waits for (the kinds' relations,
    // per instance), and each intent before its own outcome.
    let pos = |phase: &str, id: &str| {
        audit
            .iter()
            .position(|e| e["phase"] == phase && e["resource"] == id)
    };
    for r in before.iter().filter(|r| got.contains(&r.id)) {
        let intent = pos("intent", &r.id).unwrap_or_else(|| panic!("no intent for {}", r.id));
        assert!(intent < pos("outcome", &r.id).expect("outcome"), "{}", r.id);
        // A part goes with its owner, through it (an instance of a group): no order of its own.
        for w in r
            .wait_for
            .iter()
            .filter(|w| got.contains(*w) && r.part_of.as_ref() != Some(*w))
        {
            assert!(
                pos("outcome", w).expect("outcome") < intent,
                "{} ({}) started before {w} was gone",
                r.id,
                r.kind
            );
        }
    }
    // The platform's order where the kinds relate, per instance (what the loop above held the
    // run to): roles after what runs as them, security groups after what is in them, target
    // groups after their load balancer, snapshots after their database. Unrelated resources of
    // those kinds may go in any order.
    let kind_of = |id: &str| before.iter().find(|r| r.id == id).map(|r| r.kind);
    for (earlier, later) in [
        ("ec2-instance", "iam-role"),
        ("lambda-function", "iam-role"),
        ("eks-nodegroup", "iam-role"),
        ("load-balancer", "target-group"),
        ("ec2-instance", "security-group"),
        ("load-balancer", "security-group"),
        ("rds-instance", "rds-snapshot"),
    ] {
        assert!(
            before.iter().any(|r| r.kind == later
                && got.contains(&r.id)
                && r.wait_for
                    .iter()
                    .any(|w| got.contains(w) && kind_of(w) == Some(earlier))),
            "a deleted {later} waited for a deleted {earlier}"
        );
    }

    // Nothing protected touched: every protected resource is still there, with no intent.
    let after = listed(&bed).await;
    for r in before.iter().filter(|r| protected(r)) {
        assert!(after.iter().any(|a| a.id == r.id), "{} was deleted", r.id);
        assert_eq!(pos("intent", &r.id), None, "{} had an intent", r.id);
    }
    assert!(bed.kube.get("namespaces", None, "prod-preview").is_some());

    // The archive: one JSONL object at <prefix>/<yyyy>/<mm>/<dd>/<run_id>.jsonl holding the
    // run's plan, intents and outcomes as Kafka has them.
    // Dated by the day (UTC) the run happened, its `started_at`, not the `--now` it evaluated
    // at (the rules' 2026-11-23).
    let run_id = event["run_id"].as_str().expect("run id");
    let started: jiff::Timestamp = event["started_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("started_at");
    let day = started.strftime("%Y/%m/%d");
    let key = format!("ttl/audit/{day}/{run_id}.jsonl");
    assert_eq!(
        event["details"]["audit_archive"],
        format!("s3://{ARCHIVE_BUCKET}/{key}"),
        "{event}"
    );
    let object = bed
        .aws
        .s3
        .get_object()
        .bucket(ARCHIVE_BUCKET)
        .key(&key)
        .send()
        .await
        .expect("archived object");
    let body = object.body.collect().await.expect("body").into_bytes();
    let archived: Vec<Value> = std::str::from_utf8(&body)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let phases = |records: &[Value]| -> Vec<(String, String)> {
        records
            .iter()
            .filter(|e| e["run_id"].as_str().is_none_or(|r| r == run_id))
            .map(|e| {
                (
                    e["phase"].as_str().unwrap_or_default().to_string(),
                    e["resource"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(archived[0]["phase"], "plan");
    assert_eq!(
        phases(&archived),
        phases(&audit),
        "the archive is the Kafka audit"
    );
}

#[tokio::test]
async fn an_unlisted_kind_holds_its_dependants_and_a_failed_archive_makes_the_run_partial() {
    let bed = Bed::start().await;
    let expired = tags(-5, true);
    let ami = bed.aws.ami().await.expect("ami");
    let role = bed.aws.role("app-role", &expired).await.expect("role");
    let sg = bed.aws.group("app", &expired).await.expect("group");
    bed.aws
        .function("api", &role, &[&sg], &expired)
        .await
        .expect("function");
    let web = bed
        .aws
        .instance(&ami, &[], &expired)
        .await
        .expect("instance");
    bed.aws.bucket("scratch", &expired).await.expect("bucket");
    let before = listed(&bed).await;
    // The archive bucket does not exist: the write fails after the deletions.
    let config = config(&bed, "no-such-bucket");
    // Lambda cannot be listed: its own endpoint variable points at a closed port. The SDK
    // prefers a service's endpoint variable to the shared one (`AWS_ENDPOINT_URL`, moto here),
    // but an endpoint set in code (`aws.endpoint_url`) to both, so the config leaves it out.
    let yaml: String = std::fs::read_to_string(&config)
        .expect("config")
        .lines()
        .filter(|l| !l.trim_start().starts_with("endpoint_url:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, yaml).expect("config");
    let mut cmd_env = bed.env();
    cmd_env.push(("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:1".to_string()));
    let out = crate::run(
        bed.dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            "2026-11-23T12:00:00Z",
            "--output",
            "json",
            "--execute",
        ],
        &cmd_env,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "partial\nstdout: {stdout}\nstderr: {stderr}"
    );
    let event: Value = serde_json::from_str(&stdout).expect("event");
    assert_eq!(event["status"], "partial", "{event}");
    let errors = event["errors"].to_string();
    assert!(
        errors.contains("audit archive s3://no-such-bucket/ttl/audit/")
            && errors.contains(".jsonl: NoSuchBucket: The specified bucket does not exist"),
        "{errors}"
    );
    assert!(
        errors.contains("lambda-function"),
        "the listing failure is reported: {stdout}\n{stderr}"
    );

    // What waits for Lambda functions (the role they run as, the group they are in) is held,
    // and says why; what does not (the instance, the bucket) went.
    let audit = executed(&bed).await;
    let got = deleted(&audit);
    let id = |kind: &str, name: &str| seed::find(&before, kind, name).id.clone();
    assert!(got.contains(&id("ec2-instance", &web)), "{got:?}");
    assert!(got.contains(&id("s3-bucket", "scratch")), "{got:?}");
    for (kind, name) in [("iam-role", "app-role"), ("security-group", sg.as_str())] {
        let held = id(kind, name);
        assert!(
            !got.contains(&held),
            "{held} deleted while lambda-function was unlisted"
        );
        assert!(
            stdout.contains(&held) && stdout.contains("lambda-function could not be listed in"),
            "{held} held with its reason: {stdout}"
        );
    }
    let after = listed(&bed).await;
    assert!(after.iter().any(|r| r.id == id("iam-role", "app-role")));
    assert!(
        after.iter().any(|r| r.kind == "lambda-function"),
        "unlisted, untouched"
    );

    // The Kafka audit is whole: the plan, then an intent and an outcome per deletion.
    assert_eq!(audit[0]["phase"], "plan");
    for d in &got {
        assert!(
            audit
                .iter()
                .any(|e| e["phase"] == "intent" && e["resource"] == d.as_str())
        );
    }
}
