//! `--execute` against moto, the fake Kubernetes API and a real Kafka broker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testbed::fakekube::FakeKube;
use testbed::kafka::{Tansu, consume_all};

use crate::{repo_root, run, seed, text};

const ACCOUNT: &str = "123456789012";
const NOW: &str = "2026-11-23T12:00:00Z";
pub const TOPICS: [&str; 4] = [
    "security-job-results",
    "resource-expiring",
    "tag-violation",
    "resource-deleted",
];

fn now() -> Timestamp {
    NOW.parse().expect("timestamp")
}

/// Valid dev tags with a deadline `hours` from NOW (7d ttl); `warned` records warn-24h for it.
pub fn tags(hours: i64, warned: bool) -> BTreeMap<String, String> {
    let created = now() - SignedDuration::from_hours(7 * 24) + SignedDuration::from_hours(hours);
    let deadline = created + SignedDuration::from_hours(7 * 24);
    let mut t: BTreeMap<String, String> = [
        ("environment", "dev"),
        ("owner", "dev@example.com"),
        ("project", "checkout"),
        ("cost-center", "cc-1"),
        ("ttl", "7d"),
        ("auto-teardown", "true"),
        ("data-class", "internal"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    t.insert("created_at".into(), created.to_string());
    if warned {
        t.insert("ttl-notified-stage".into(), format!("warn-24h@{deadline}"));
    }
    t
}

pub struct Bed {
    /// moto with a client of every service the kinds use (the provider tests' seeding).
    pub aws: seed::Bed,
    pub broker: Tansu,
    pub kube: FakeKube,
    pub dir: tempfile::TempDir,
    pub ec2: aws_sdk_ec2::Client,
}

impl Bed {
    pub async fn start() -> Bed {
        let aws = seed::Bed::start().await.expect("moto");
        let broker = Tansu::start().await.expect("tansu");
        for t in TOPICS {
            broker.create_topic(t, 1).await.expect("topic");
        }
        let kube = FakeKube::start().await.expect("fake kube");
        kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "governance-jobs"}})).expect("ns");
        let dir = tempfile::tempdir().expect("tempdir");
        Bed {
            ec2: aws.ec2.clone(),
            aws,
            broker,
            kube,
            dir,
        }
    }

    pub fn config(&self, caps: &str) -> PathBuf {
        self.config_with(caps, "")
    }

    /// A config with `job_extra` appended to the job section and `shared` sections before it.
    pub fn config_with(&self, job_extra: &str, shared: &str) -> PathBuf {
        let caps = job_extra;
        std::fs::copy(
            repo_root().join("examples/whitelist.yaml"),
            self.dir.path().join("whitelist.yaml"),
        )
        .expect("copy");
        let kubeconfig = self
            .kube
            .write_kubeconfig(self.dir.path())
            .expect("kubeconfig");
        let text = format!(
            "aws:\n  regions: [us-east-1]\n  endpoint_url: {endpoint}\n  accounts: [{{id: \"{ACCOUNT}\"}}]\nkubernetes:\n  kubeconfig: {kubeconfig}\n  cluster_name: test\nkafka:\n  delivery_timeout: 5s\njob:\n  whitelist: whitelist.yaml\n  allowed_accounts: [\"{ACCOUNT}\"]\n  sources:\n    aws: true\n    kubernetes: {{}}\n  waiting:\n    timeout: 20s\n    interval: 200ms\n{caps}",
            endpoint = self.aws.moto.endpoint(),
            kubeconfig = kubeconfig.display(),
        );
        let text = format!("{shared}{text}");
        let name = if caps.is_empty() {
            "config.yaml"
        } else {
            "config-capped.yaml"
        };
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = self.aws.moto.env();
        env.push(("GOV_KAFKA_BROKERS", self.broker.bootstrap()));
        env
    }

    pub async fn run(&self, config: &Path, execute: bool) -> std::process::Output {
        let mut args = vec![
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            NOW,
            "--output",
            "json",
        ];
        if execute {
            args.push("--execute");
        }
        run(self.dir.path(), &args, &self.env()).await
    }

    async fn ami(&self) -> String {
        let images = self.ec2.describe_images().send().await.expect("images");
        images.images()[0].image_id().expect("ami").to_string()
    }

    pub async fn instance(&self, tags: &BTreeMap<String, String>, groups: &[&str]) -> String {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let mut req = self
            .ec2
            .run_instances()
            .image_id(self.ami().await)
            .min_count(1)
            .max_count(1)
            .instance_type("t3.large".into())
            .tag_specifications(spec);
        for g in groups {
            req = req.security_group_ids(*g);
        }
        let out = req.send().await.expect("run instance");
        out.instances()[0].instance_id().expect("id").to_string()
    }

    async fn group(&self, name: &str, tags: &BTreeMap<String, String>) -> String {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let out = self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(name)
            .tag_specifications(spec)
            .send()
            .await
            .expect("group");
        out.group_id().expect("id").to_string()
    }

    /// The instance as DescribeInstances has it now.
    pub async fn describe_instance(&self, id: &str) -> Option<aws_sdk_ec2::types::Instance> {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned()
    }

    pub async fn instance_state(&self, id: &str) -> Option<InstanceStateName> {
        self.describe_instance(id)
            .await
            .and_then(|i| i.state().and_then(|s| s.name()).cloned())
    }

    async fn group_exists(&self, id: &str) -> bool {
        self.ec2
            .describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .is_ok_and(|o| !o.security_groups().is_empty())
    }

    pub async fn instance_tag(&self, id: &str, key: &str) -> Option<String> {
        let instance = self.describe_instance(id).await?;
        instance
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_string)
    }

    /// The root volume of an instance (its DeleteOnTermination block device).
    async fn root_volume(&self, instance: &str) -> String {
        self.describe_instance(instance)
            .await
            .expect("the instance")
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs())
            .filter(|e| e.delete_on_termination() == Some(true))
            .find_map(|e| e.volume_id())
            .expect("a root volume")
            .to_string()
    }

    pub async fn events(&self, topic: &str) -> Vec<Value> {
        consume_all(
            &self.broker.bootstrap(),
            topic,
            1000,
            Duration::from_secs(3),
        )
        .await
        .expect("consume")
        .into_iter()
        .map(|(_, p)| serde_json::from_slice(&p).expect("json"))
        .collect()
    }

    fn seed_kube(&self) {
        let annotations: serde_json::Map<String, Value> = tags(-5, true)
            .into_iter()
            .map(|(k, v)| (format!("ttl.governance.io/{k}"), Value::String(v)))
            .collect();
        self.kube
            .insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "preview-1", "annotations": annotations}}))
            .expect("ns");
        self.kube
            .insert(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "preview-1", "annotations": annotations},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}))
            .expect("deployment");
    }
}

#[tokio::test]
async fn execute_deletes_exactly_the_expired_set_in_dependency_order_and_warns_once() {
    let bed = Bed::start().await;
    let sg = bed.group("expired-sg", &tags(-5, true)).await;
    let expired = bed.instance(&tags(-5, true), &[&sg]).await;
    let expired_root = bed.root_volume(&expired).await;
    let expiring = bed.instance(&tags(30, false), &[]).await;
    let mut prod = tags(-5, true);
    prod.insert("environment".into(), "prod".into());
    let prod = bed.instance(&prod, &[]).await;
    let mut critical = tags(-5, true);
    critical.insert("critical".into(), "true".into());
    let critical = bed.instance(&critical, &[]).await;
    let mut bad = tags(-5, true);
    bad.insert("ttl".into(), "45d".into());
    let bad = bed.instance(&bad, &[]).await;
    let fresh = bed.instance(&tags(200, false), &[]).await;
    bed.seed_kube();
    let config = bed.config("");

    // A dry run changes nothing.
    let out = bed.run(&config, false).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        bed.instance_state(&expired).await,
        Some(InstanceStateName::Running)
    );
    assert!(bed.group_exists(&sg).await);
    assert!(bed.kube.get("namespaces", None, "preview-1").is_some());
    assert_eq!(
        bed.instance_tag(&expiring, "ttl-notified-stage").await,
        None,
        "a dry run records nothing"
    );

    // --execute deletes exactly the expired, eligible set.
    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(matches!(
        bed.instance_state(&expired).await,
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) | None
    ));
    assert!(
        !bed.group_exists(&sg).await,
        "the instance's group went after it"
    );
    for kept in [&expiring, &prod, &critical, &bad, &fresh] {
        assert_eq!(
            bed.instance_state(kept).await,
            Some(InstanceStateName::Running),
            "{kept} must be untouched"
        );
    }
    assert!(bed.kube.get("namespaces", None, "preview-1").is_none());
    assert!(
        bed.kube
            .get("deployments", Some("preview-1"), "web")
            .is_none()
    );
    assert!(bed.kube.get("namespaces", None, "kube-system").is_some());
    let stage = bed
        .instance_tag(&expiring, "ttl-notified-stage")
        .await
        .expect("warning stage recorded");
    assert!(stage.starts_with("warn-48h@"), "{stage}");

    // The audit: a plan record, then for each deletion its intent before its outcome; the
    // instance's intent comes before its group's.
    let audit = bed.events("resource-deleted").await;
    let executed: Vec<&Value> = audit.iter().filter(|e| e["dry_run"] == false).collect();
    assert_eq!(executed[0]["phase"], "plan");
    let pos = |phase: &str, suffix: &str| {
        executed
            .iter()
            .position(|e| {
                e["phase"] == phase && e["resource"].as_str().is_some_and(|r| r.ends_with(suffix))
            })
            .unwrap_or_else(|| panic!("no {phase} for {suffix}: {executed:?}"))
    };
    assert!(pos("intent", &expired) < pos("outcome", &expired));
    assert!(
        pos("intent", &expired) < pos("intent", &sg),
        "instance before its security group"
    );
    assert!(pos("intent", &sg) < pos("outcome", &sg));
    assert!(pos("intent", "deployment/preview-1/web") < pos("intent", "k8s:preview-1"));
    let deleted: Vec<&str> = executed
        .iter()
        .filter(|e| e["phase"] == "outcome" && e["result"] == "deleted")
        .filter_map(|e| e["resource"].as_str())
        .collect();
    // The instance, its root volume (with it), its group, the namespace and its deployment.
    assert_eq!(deleted.len(), 5, "{deleted:?}");
    assert!(
        deleted
            .contains(&format!("arn:aws:ec2:us-east-1:{ACCOUNT}:volume/{}", expired_root).as_str()),
        "{deleted:?}"
    );

    // A second run deletes nothing more and does not warn again for the same deadline.
    let expiring_before = bed.events("resource-expiring").await.len();
    let out = bed.run(&config, true).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let expiring_after = bed.events("resource-expiring").await;
    let new: Vec<&Value> = expiring_after[expiring_before..].iter().collect();
    assert!(
        new.iter().all(|e| !e["resource"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&expiring)),
        "warned once per deadline: {new:?}"
    );
    let audit = bed.events("resource-deleted").await;
    let deletions = audit
        .iter()
        .filter(|e| e["phase"] == "outcome" && e["result"] == "deleted")
        .count();
    assert_eq!(deletions, deleted.len(), "no resource deleted twice");
}

#[tokio::test]
async fn refusals_delete_nothing_lease_held_cap_exceeded_audit_sink_down() {
    let mut bed = Bed::start().await;
    let expired = bed.instance(&tags(-5, true), &[]).await;
    let also = bed.instance(&tags(-5, true), &[]).await;

    // Another run holds the lease.
    let renew = Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    bed.kube
        .insert(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "ttl-teardown", "namespace": "governance-jobs"},
            "spec": {"holderIdentity": "other-run", "leaseDurationSeconds": 600, "acquireTime": renew, "renewTime": renew}}))
        .expect("lease");
    let config = bed.config("");
    let out = bed.run(&config, true).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("other-run"), "says who holds it: {stderr}");
    assert_eq!(
        bed.instance_state(&expired).await,
        Some(InstanceStateName::Running)
    );
    bed.kube
        .remove("leases", Some("governance-jobs"), "ttl-teardown");

    // Over the cap: nothing at all.
    let capped = bed.config("  caps:\n    max_deletions: 1\n");
    let out = bed.run(&capped, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    assert!(
        event["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("max_deletions = 1"),
        "{event}"
    );
    assert_eq!(
        bed.instance_state(&expired).await,
        Some(InstanceStateName::Running)
    );
    assert_eq!(
        bed.instance_state(&also).await,
        Some(InstanceStateName::Running)
    );
    assert!(
        bed.kube
            .get("leases", Some("governance-jobs"), "ttl-teardown")
            .is_some_and(|l| l["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or_default()
                .is_empty()),
        "the lease was released"
    );

    // The audit sink is down: nothing at all.
    bed.broker.stop();
    let out = bed.run(&config, true).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("audit sink unavailable"), "{stderr}");
    assert_eq!(
        bed.instance_state(&expired).await,
        Some(InstanceStateName::Running)
    );
    assert_eq!(
        bed.instance_state(&also).await,
        Some(InstanceStateName::Running)
    );
}

#[tokio::test]
async fn a_run_killed_mid_way_is_finished_by_the_next_with_no_double_deletion() {
    let bed = Bed::start().await;
    // Enough deletions (each a few rate-limited calls) that the kill lands mid-way.
    let mut groups = Vec::new();
    let mut instances = Vec::new();
    let mut roots = Vec::new();
    for n in 0..6 {
        let g = bed.group(&format!("g{n}"), &tags(-5, true)).await;
        let i = bed.instance(&tags(-5, true), &[&g]).await;
        roots.push(bed.root_volume(&i).await);
        instances.push(i);
        groups.push(g);
    }
    // Every eligible resource here is expired: lift the percentage cap for this test.
    let config = bed.config("  caps:\n    max_percent: 100\n");

    // Kill the first run right after its first removal started (its log says so), before the
    // security groups that wait for the instances: the run dies mid-way, deterministically.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ttl-teardown"));
    cmd.current_dir(bed.dir.path())
        .args([
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            NOW,
            "--output",
            "json",
            "--execute",
        ])
        .args(["--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in bed.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let mut log = Vec::new();
    let started_removal = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains("\"removal in progress\"");
            log.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    assert!(
        started_removal,
        "the first run reached its first removal; its log:\n{}",
        log.join("\n")
    );

    // The dead run's lease would expire after its duration; an operator (or time) frees it.
    bed.kube
        .remove("leases", Some("governance-jobs"), "ttl-teardown");
    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    for g in &groups {
        assert!(!bed.group_exists(g).await, "{g} deleted");
    }
    for i in &instances {
        assert!(matches!(
            bed.instance_state(i).await,
            Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) | None
        ));
    }

    let audit = bed.events("resource-deleted").await;
    let first_run = audit[0]["run_id"].clone();
    let by_run = |run_is_first: bool, phase: &str, result: Option<&str>| {
        audit
            .iter()
            .filter(|e| (e["run_id"] == first_run) == run_is_first && e["phase"] == phase)
            .filter(|e| result.is_none_or(|r| e["result"] == r))
            .count()
    };
    assert!(
        by_run(true, "outcome", Some("deleted")) < groups.len() + instances.len() + roots.len(),
        "the first run was cut short"
    );
    assert!(
        by_run(false, "intent", None) >= 1,
        "the second run had work left to finish"
    );
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    for e in audit
        .iter()
        .filter(|e| e["phase"] == "outcome" && e["result"] == "deleted")
    {
        *deleted
            .entry(short(e["resource"].as_str().unwrap_or_default()))
            .or_default() += 1;
    }
    // Exactly one `deleted` per resource that is gone (the instances' root volumes with them):
    // the killed run's removals are closed by the second run's reconciliation, never claimed
    // twice, never left unclaimed.
    let expected: BTreeMap<String, usize> = groups
        .iter()
        .chain(&instances)
        .chain(&roots)
        .map(|id| (id.clone(), 1))
        .collect();
    assert_eq!(
        deleted.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every deleted resource has its `deleted` outcome"
    );
    assert_eq!(deleted, expected, "no resource has two `deleted` outcomes");

    // Every intent, of either run, ends with a final outcome: its own run's, or a
    // reconciliation naming it.
    for intent in audit.iter().filter(|e| e["phase"] == "intent") {
        let closed = audit.iter().any(|e| {
            e["phase"] == "outcome"
                && e["result"] != "pending"
                && e["resource"] == intent["resource"]
                && ((e["run_id"] == intent["run_id"]
                    && e["attempt"] == intent["attempt"]
                    && e["reconciles"].is_null())
                    || (e["reconciles"]["run_id"] == intent["run_id"]
                        && e["reconciles"]["attempt"] == intent["attempt"])
                    || (e["result"] == "deleted"
                        && e["supersedes"].as_array().is_some_and(|refs| {
                            refs.iter().any(|r| {
                                r["run_id"] == intent["run_id"] && r["attempt"] == intent["attempt"]
                            })
                        })))
        });
        assert!(closed, "intent without a final outcome: {intent}");
    }
    // Closed by a reconciliation record, or handed to the second run and closed by its own
    // `deleted` (`supersedes`).
    let reconciled: Vec<&Value> = audit
        .iter()
        .filter(|e| !e["reconciles"].is_null())
        .collect();
    let superseded: usize = audit
        .iter()
        .filter_map(|e| e["supersedes"].as_array())
        .map(Vec::len)
        .sum();
    assert!(
        reconciled.len() + superseded > 0,
        "the second run reconciled the killed run's open intents"
    );
    assert!(
        reconciled
            .iter()
            .all(|e| e["reconciles"]["run_id"] == first_run && e["run_id"] != first_run),
        "{reconciled:?}"
    );
    let report: Value = serde_json::from_str(&stdout).expect("json report");
    assert_eq!(
        report["details"]["reconciled"]["found"].as_u64(),
        Some((reconciled.len() + superseded) as u64),
        "{report}"
    );
    assert_eq!(
        report["details"]["reconciled"]["handed_over"].as_u64(),
        Some(superseded as u64),
        "{report}"
    );
}

fn short(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

#[tokio::test]
async fn root_volumes_are_read_for_the_instances_that_go_and_a_protected_one_holds_its_instance() {
    let bed = Bed::start().await;
    let held = bed.instance(&tags(-5, true), &[]).await;
    let going = bed.instance(&tags(-5, true), &[]).await;
    let fresh = bed.instance(&tags(100, false), &[]).await;
    let (held_root, going_root, fresh_root) = (
        bed.root_volume(&held).await,
        bed.root_volume(&going).await,
        bed.root_volume(&fresh).await,
    );
    // Someone marked held's root volume production after launch.
    bed.ec2
        .create_tags()
        .resources(&held_root)
        .tags(Tag::builder().key("environment").value("prod").build())
        .send()
        .await
        .expect("tag the root volume");
    let config = bed.config("");

    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let event: Value = serde_json::from_str(&stdout).expect("event");
    let arn = |kind: &str, id: &str| format!("arn:aws:ec2:us-east-1:{ACCOUNT}:{kind}/{id}");
    let finding = |id: &str| {
        event["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["resource"] == id)
            .cloned()
    };

    // held: expired, but deleting it would take a protected volume with it.
    let f = finding(&arn("instance", &held)).expect("held's finding");
    assert_ne!(f["action"], "delete", "{f}");
    let reason = f["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&arn("volume", &held_root)) && reason.contains("protected"),
        "{f}"
    );
    assert_eq!(
        bed.instance_state(&held).await,
        Some(InstanceStateName::Running)
    );
    // going: deleted, its root volume with it, priced in.
    let f = finding(&arn("volume", &going_root)).expect("going's root volume's finding");
    assert_eq!(f["part_of"], arn("instance", &going), "{f}");
    assert_eq!(f["action"], "delete", "{f}");
    assert!(
        f["cost_avoided_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{f}"
    );
    assert!(matches!(
        bed.instance_state(&going).await,
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown) | None
    ));
    // fresh stays, and its root volume was never read: no finding for it.
    assert!(finding(&arn("volume", &fresh_root)).is_none());
    let f = finding(&arn("instance", &fresh));
    assert!(f.is_none(), "{f:?}");
    let mut volumes: Vec<&str> = event["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "ebs-volume")
        .filter_map(|f| f["resource"].as_str())
        .collect();
    volumes.sort_unstable();
    let mut want = [arn("volume", &held_root), arn("volume", &going_root)];
    want.sort_unstable();
    assert_eq!(
        volumes, want,
        "the root volumes read are those of the expired instances"
    );
}
