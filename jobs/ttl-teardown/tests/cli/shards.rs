//! Sharded runs (`--shard i/N`, as an Indexed Job's pods run): three shards over six (account,
//! region) pairs in moto (accounts through STS AssumeRole, moto's multi-account support), each
//! pair planned and deleted by exactly one shard, every event and metric group carrying its
//! shard, one lock per shard, and a shard that fails leaving the others' results intact.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use common::clients::{AwsTarget, aws_sdk_config_from};
use common::config::{AwsConfig, HttpUrl};
use serde_json::{Value, json};
use testbed::pushgateway::Pushgateway;

use crate::execute::{Bed, tags};
use crate::{run, text};

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
const NOW: &str = "2026-11-23T12:00:00Z";

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/ttl-teardown")
}

/// An EC2 client in `account`/`region` through the account's role, as the job reaches it.
async fn ec2(bed: &Bed, account: &str, region: &str) -> aws_sdk_ec2::Client {
    let config = AwsConfig {
        regions: vec![region.into()],
        endpoint_url: Some(HttpUrl::parse(&bed.aws.moto.endpoint()).expect("url")),
        accounts: vec![],
    };
    let target = AwsTarget {
        account: account.into(),
        region: region.into(),
        role_arn: Some(role(account)),
    };
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"));
    aws_sdk_ec2::Client::new(&aws_sdk_config_from(loader, &config, &target).await)
}

/// One expired, deletable instance in the pair; its id.
async fn expired_instance(client: &aws_sdk_ec2::Client) -> String {
    let image = client
        .describe_images()
        .send()
        .await
        .expect("images")
        .images()[0]
        .image_id()
        .expect("ami")
        .to_string();
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(
            tags(-5, true)
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build();
    let out = client
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec)
        .send()
        .await
        .expect("run instance");
    out.instances()[0].instance_id().expect("id").to_string()
}

async fn state(client: &aws_sdk_ec2::Client, id: &str) -> Option<InstanceStateName> {
    let out = client
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .ok()?;
    out.reservations()
        .first()?
        .instances()
        .first()?
        .state()?
        .name()
        .cloned()
}

fn config(bed: &Bed, pgw: &Pushgateway) -> std::path::PathBuf {
    let accounts: Vec<String> = ACCOUNTS
        .iter()
        .map(|a| format!("{{id: \"{a}\", role_arn: \"{}\"}}", role(a)))
        .collect();
    let allowed: Vec<String> = ACCOUNTS.iter().map(|a| format!("\"{a}\"")).collect();
    let shared = format!(
        "aws:\n  regions: [{}]\n  endpoint_url: {}\n  accounts: [{}]\npushgateway:\n  url: {}\n",
        REGIONS.join(", "),
        bed.aws.moto.endpoint(),
        accounts.join(", "),
        pgw.url()
    );
    let path = bed.config_with(
        &format!(
            "  caps:\n    max_percent: 100\n  allowed_accounts: [{}]\n",
            allowed.join(", ")
        ),
        "",
    );
    // The Bed's config names one account; this one names three, each through its role.
    let text = std::fs::read_to_string(&path).expect("config");
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("kubernetes:"))
        .filter(|l| !l.starts_with("  allowed_accounts: [\"123456789012\"]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let sharded = bed.dir.path().join("sharded.yaml");
    std::fs::write(&sharded, format!("{shared}{body}")).expect("write");
    sharded
}

async fn shard_run(bed: &Bed, config: &std::path::Path, shard: &str) -> std::process::Output {
    let args = [
        "--config",
        config.to_str().expect("utf-8"),
        "--now",
        NOW,
        "--output",
        "json",
        "--execute",
        "--shard",
        shard,
    ];
    run(bed.dir.path(), &args, &bed.env()).await
}

/// (account, region) of an ARN.
fn pair(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts[4].to_string(), parts[3].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_split_six_account_region_pairs_and_each_publishes_its_own() {
    let bed = Bed::start().await;
    let pgw = Pushgateway::start().await.expect("pushgateway");
    let mut instances: BTreeMap<(String, String), (aws_sdk_ec2::Client, String)> = BTreeMap::new();
    for account in ACCOUNTS {
        for region in REGIONS {
            let client = ec2(&bed, account, region).await;
            let id = expired_instance(&client).await;
            instances.insert((account.to_string(), region.to_string()), (client, id));
        }
    }
    let config = config(&bed, &pgw);

    // Shard 2's lock is held by someone else: that shard is refused, the others are not.
    bed.kube
        .insert(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ttl-teardown-shard-2", "namespace": "governance-jobs"},
            "spec": {"holderIdentity": "another-run", "leaseDurationSeconds": 3600,
                     "renewTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                     "acquireTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}}))
        .expect("lease");
    // Shards 0 and 1 run at the same time: one lock each.
    let (zero, one) = tokio::join!(
        shard_run(&bed, &config, "0/3"),
        shard_run(&bed, &config, "1/3")
    );
    let two = shard_run(&bed, &config, "2/3").await;
    for (out, expected) in [(&zero, 0), (&one, 0), (&two, 2)] {
        let (stdout, stderr) = text(out);
        assert_eq!(
            out.status.code(),
            Some(expected),
            "stdout: {stdout}\nstderr: {stderr}"
        );
    }
    assert!(text(&two).1.contains("another-run"), "{}", text(&two).1);

    // The sorted pairs, every third from the shard's index.
    let sorted: Vec<(String, String)> = instances.keys().cloned().collect();
    let expected = |index: usize| -> BTreeSet<(String, String)> {
        sorted
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == index)
            .map(|(_, p)| p.clone())
            .collect()
    };
    let results = bed.events("security-job-results").await;
    // Pair → the shards with a finding about one of its resources.
    let mut planned: BTreeMap<(String, String), BTreeSet<u64>> = BTreeMap::new();
    for index in 0..3u64 {
        let event = results
            .iter()
            .find(|e| e["shard"] == json!({"index": index, "count": 3}))
            .unwrap_or_else(|| panic!("shard {index}'s result event: {results:#?}"));
        let status = if index == 2 { "failure" } else { "success" };
        assert_eq!(event["status"], status, "{event:#}");
        for f in event["findings"].as_array().expect("findings") {
            if let Some(arn) = f["resource"]
                .as_str()
                .filter(|r| r.starts_with("arn:aws:ec2"))
            {
                planned.entry(pair(arn)).or_default().insert(index);
            }
        }
        if index < 2 {
            let mine: BTreeSet<(String, String)> = planned
                .iter()
                .filter(|(_, shards)| shards.contains(&index))
                .map(|(p, _)| p.clone())
                .collect();
            assert_eq!(mine, expected(index as usize), "shard {index}'s slice");
        }
    }
    assert!(
        planned.values().all(|shards| shards.len() == 1),
        "each pair planned by exactly one shard: {planned:?}"
    );

    // Deleted where a shard ran, untouched where it was refused.
    for (p, (client, id)) in &instances {
        let gone = matches!(
            state(client, id).await,
            Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) | None
        );
        assert_eq!(gone, !expected(2).contains(p), "{p:?} {id}");
    }
    // Every audit record names its shard; the refused shard wrote none.
    let audit = bed.events("resource-deleted").await;
    assert!(!audit.is_empty());
    for e in &audit {
        let index = e["shard"]["index"].as_u64().expect("shard in the envelope");
        assert!(index < 2, "{e}");
        if let Some(arn) = e["resource"].as_str().filter(|r| r.starts_with("arn:")) {
            assert!(expected(index as usize).contains(&pair(arn)), "{e}");
        }
    }

    // The roll-up (`governance-jobs summary`) reads the shards' events back: two present and
    // successful, the refused one failed, the deletions and checks summed.
    let kafka: common::config::KafkaConfig =
        serde_saphyr::from_str(&format!("brokers: [\"{}\"]\n", bed.broker.bootstrap()))
            .expect("kafka config");
    let rolled = common::rollup::read(
        &kafka,
        "security-job-results",
        "ttl-teardown",
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(20),
    )
    .await
    .expect("read back")
    .expect("sharded events");
    assert_eq!(rolled.shards, 3);
    assert!(rolled.missing.is_empty(), "{rolled:?}");
    assert_eq!(rolled.failed_shards, [2], "{rolled:?}");
    assert_eq!(
        (rolled.deleted + rolled.pending) as usize,
        2 * (6 - expected(2).len()),
        "each instance of the shards that ran and its root volume: {rolled:?}"
    );
    assert!(!rolled.is_success());
    assert!(common::rollup::table(&rolled).contains("failed shards: [2]"));

    // One Pushgateway group per shard, side by side.
    let metrics = pgw.metrics_json().await.expect("metrics");
    for index in ["0", "1", "2"] {
        let run = testbed::pushgateway::find_metric(
            &metrics,
            &[("job", "ttl-teardown"), ("shard", index)],
            "security_job_last_run_success",
            &[],
        )
        .unwrap_or_else(|| panic!("shard {index}'s group: {metrics:#}"));
        let ok = if index == "2" { 0.0 } else { 1.0 };
        assert_eq!(run.value, ok, "shard {index}");
    }
}

#[tokio::test]
async fn jobs_that_do_not_split_and_bad_shard_settings_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = crate::demo_copy(dir.path());
    let config = config.to_str().expect("utf-8");
    for (args, env, says) in [
        (vec!["--shard", "3/3"], vec![], "index must be in 0..3"),
        (vec!["--shard", "x"], vec![], "expected INDEX/COUNT"),
        (
            vec![],
            vec![("GOV_SHARD_COUNT", "3".to_string())],
            "JOB_COMPLETION_INDEX is not",
        ),
        // The demo is an offline inventory: not split by pair.
        (
            vec!["--shard", "1/3"],
            vec![],
            "offline inventory with a shard",
        ),
    ] {
        let mut all = vec![
            "--config",
            config,
            "--now",
            crate::DEMO_NOW,
            "--output",
            "json",
        ];
        all.extend(args);
        let out = run(dir.path(), &all, &env).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
    // An Indexed Job's environment, with a count of 1, is an unsharded run.
    let out = run(
        dir.path(),
        &[
            "--config",
            config,
            "--now",
            crate::DEMO_NOW,
            "--output",
            "json",
        ],
        &[
            ("GOV_SHARD_COUNT", "1".to_string()),
            ("JOB_COMPLETION_INDEX", "0".to_string()),
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("json");
    assert!(event.get("shard").is_none(), "{event}");
}
