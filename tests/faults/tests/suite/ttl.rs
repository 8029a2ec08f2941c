//! One AWS account in moto holding the whole platform (every kind, expired and warned) and a
//! few kept resources, the fake Kubernetes API for the run lock, a Kafka broker, and
//! `ttl-teardown --execute` run against them, optionally through a fault proxy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use inventory::Resource;
use serde_json::Value;
use std::sync::Arc;
use testbed::fakekube::FakeKube;

use axum::http::Method;
use testbed::faultproxy::{FaultProxy, Matcher};
use testbed::kafka::{Tansu, consume_all};

use crate::seed;

/// The evaluation instant of every run.
pub const NOW: &str = "2026-11-23T12:00:00Z";
/// Created 7 days and 5 hours before [`NOW`] with a 7-day TTL: the deadline passed 5 hours ago.
const CREATED: &str = "2026-11-16T07:00:00Z";
/// That deadline, recorded as warned 24 hours ahead.
const WARNED: &str = "warn-24h@2026-11-23T07:00:00Z";

/// The topics a TTL run publishes to.
pub const TOPICS: [&str; 4] = [
    "security-job-results",
    "resource-expiring",
    "tag-violation",
    "resource-deleted",
];

/// Tags of an expired, warned development resource named `name`.
pub fn expired(name: &str) -> BTreeMap<String, String> {
    let mut t = seed::eligible(name);
    t.insert("created_at".into(), CREATED.into());
    t.insert("ttl-notified-stage".into(), WARNED.into());
    t
}

/// (kind, Name tag or `-`, state) → how many: what an account holds, comparable between two
/// moto servers (ids differ, names and kinds do not).
pub type Census = BTreeMap<(String, String, String), usize>;

/// The [`Census`] of a listing.
pub fn census(all: &[Resource]) -> Census {
    let mut out = BTreeMap::new();
    for r in all {
        let state = r.state.clone().unwrap_or_default();
        *out.entry((r.kind.to_string(), label(r), state))
            .or_insert(0) += 1;
    }
    out
}

fn label(r: &Resource) -> String {
    r.tags.get("Name").cloned().unwrap_or_else(|| "-".into())
}

/// The account, the lock's Kubernetes, the broker and a working directory.
pub struct Account {
    pub aws: seed::Bed,
    pub kube: FakeKube,
    pub broker: Tansu,
    pub dir: tempfile::TempDir,
    /// Every resource as seeded, by id: (kind, Name).
    pub seeded: BTreeMap<String, (String, String)>,
    /// The census as seeded.
    pub before: Census,
    /// The listing as seeded.
    pub listed: Vec<Resource>,
    /// Resources that go with another (a root volume with its instance, an Auto Scaling
    /// group's instances with the group): id → the id of the one they go with.
    pub part_of: BTreeMap<String, String>,
}

impl Account {
    /// The platform (every kind, expired and warned, named `x`) beside a production instance
    /// and a volume that is not expired yet (`keep-*`).
    pub async fn seeded() -> Account {
        let aws = seed::Bed::start().await.expect("moto");
        aws.platform("", &expired("x")).await.expect("platform");
        let ami = aws.ami().await.expect("ami");
        let prod = seed::with(expired("keep-prod"), "environment", "prod");
        aws.instance(&ami, &[], &prod).await.expect("prod instance");
        let fresh = seed::with(
            seed::eligible("keep-fresh"),
            "created_at",
            "2026-11-22T12:00:00Z",
        );
        aws.volume(8, &fresh).await.expect("fresh volume");
        let listed = seed::list(&aws.providers()).await.expect("listing");
        let seeded = listed
            .iter()
            .map(|r| (r.id.clone(), (r.kind.to_string(), label(r))))
            .collect();
        let part_of = listed
            .iter()
            .filter_map(|r| {
                let owner = r
                    .refs
                    .iter()
                    .find(|x| x.relation == inventory::Relation::PartOf)?;
                let o = listed
                    .iter()
                    .find(|o| o.kind == owner.kind && o.name == owner.key)?;
                Some((r.id.clone(), o.id.clone()))
            })
            .collect();
        let kube = FakeKube::start().await.expect("fake kube");
        kube.insert(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "governance-jobs"}}))
            .expect("namespace");
        let broker = Tansu::start().await.expect("tansu");
        for t in TOPICS {
            broker.create_topic(t, 1).await.expect("topic");
        }
        Account {
            before: census(&listed),
            aws,
            kube,
            broker,
            dir: tempfile::tempdir().expect("tempdir"),
            seeded,
            part_of,
            listed,
        }
    }

    /// A config for AWS at `endpoint` (moto, or a proxy in front of it) with the example
    /// whitelist, caps that allow the whole platform, and `delivery_timeout` for Kafka.
    pub fn config(&self, endpoint: &str, delivery_timeout: &str) -> PathBuf {
        self.config_with(endpoint, delivery_timeout, "", None)
    }

    /// [`Account::config`] with `shared` sections before it (e.g. `pushgateway:`) and the run
    /// lock's Kubernetes API at `kube` instead of the stand-in itself (a proxy in front of it).
    pub fn config_with(
        &self,
        endpoint: &str,
        delivery_timeout: &str,
        shared: &str,
        kube: Option<&str>,
    ) -> PathBuf {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::copy(
            repo.join("examples/whitelist.yaml"),
            self.dir.path().join("whitelist.yaml"),
        )
        .expect("whitelist");
        let kubeconfig = self
            .kube
            .write_kubeconfig(self.dir.path())
            .expect("kubeconfig");
        if let Some(server) = kube {
            let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
            let text = text.replace(&self.kube.url(), server);
            std::fs::write(&kubeconfig, text).expect("kubeconfig");
        }
        let config = self.dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "{shared}aws:\n  regions: [{region}]\n  endpoint_url: {endpoint}\n  accounts: [{{id: \"{account}\"}}]\nkubernetes:\n  kubeconfig: {kubeconfig}\n  cluster_name: test\nkafka:\n  delivery_timeout: {delivery_timeout}\njob:\n  whitelist: whitelist.yaml\n  allowed_accounts: [\"{account}\"]\n  sources:\n    aws: true\n  caps:\n    max_percent: 100\n    max_deletions: 100\n  waiting:\n    timeout: 60s\n    interval: 200ms\n",
                region = seed::REGION,
                account = seed::ACCOUNT,
                kubeconfig = kubeconfig.display(),
            ),
        )
        .expect("config");
        config
    }

    /// The arguments and environment of `ttl-teardown --execute` on `config`.
    pub fn command(&self, config: &std::path::Path) -> (Vec<String>, Vec<(&'static str, String)>) {
        self.command_as(config, true)
    }

    /// [`Account::command`], a dry run unless `execute`.
    pub fn command_as(
        &self,
        config: &std::path::Path,
        execute: bool,
    ) -> (Vec<String>, Vec<(&'static str, String)>) {
        let mut args = [
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            NOW,
            "--output",
            "json",
            "--execute",
        ]
        .map(String::from)
        .to_vec();
        if !execute {
            args.retain(|a| a != "--execute");
        }
        let mut env: Vec<(&'static str, String)> = self.aws.moto.env();
        env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
        env.push(("GOV_KAFKA_BROKERS", self.broker.bootstrap()));
        if let Ok(level) = std::env::var("GOV_FAULTS_JOB_LOG") {
            env.push(("RUST_LOG", level));
        }
        (args, env)
    }

    /// Runs `ttl-teardown --execute` against AWS at `endpoint`.
    pub async fn execute(&self, endpoint: &str) -> std::process::Output {
        self.run(&self.config(endpoint, "5s"), true).await
    }

    /// Runs `ttl-teardown` on `config`, a dry run unless `execute`.
    pub async fn run(&self, config: &std::path::Path, execute: bool) -> std::process::Output {
        let (args, env) = self.command_as(config, execute);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        faults::run("ttl-teardown", self.dir.path(), &args, &env).await
    }

    /// The audit records on the broker (every run's), in order.
    pub async fn audit(&self) -> Vec<Value> {
        consume_all(
            &self.broker.bootstrap(),
            "resource-deleted",
            1000,
            Duration::from_secs(3),
        )
        .await
        .expect("audit")
        .into_iter()
        .filter_map(|(_, p)| serde_json::from_slice(&p).ok())
        .collect()
    }

    /// (kind, Name) of the resources whose audit `phase` record has `result` (any result when
    /// `None`).
    pub fn named(
        &self,
        audit: &[Value],
        phase: &str,
        result: Option<&str>,
    ) -> BTreeSet<(String, String)> {
        audit
            .iter()
            .filter(|e| e["phase"] == phase && result.is_none_or(|r| e["result"] == r))
            .filter_map(|e| {
                e["resource"]
                    .as_str()
                    .and_then(|id| self.seeded.get(id))
                    .cloned()
            })
            .collect()
    }

    /// Ids of the resources with an audit `phase` record.
    pub fn ids(audit: &[Value], phase: &str) -> BTreeSet<String> {
        audit
            .iter()
            .filter(|e| e["phase"] == phase)
            .filter_map(|e| e["resource"].as_str().map(String::from))
            .collect()
    }

    /// Whether removing `id` was announced by an intent: its own, or (for what goes with
    /// another resource) the intent of the one it goes with.
    pub fn announced(&self, id: &str, intents: &BTreeSet<String>) -> bool {
        let mut at = id;
        for _ in 0..4 {
            if intents.contains(at) {
                return true;
            }
            match self.part_of.get(at) {
                Some(owner) => at = owner,
                None => return false,
            }
        }
        false
    }

    /// The account now.
    pub async fn listed(&self) -> Vec<Resource> {
        seed::list(&self.aws.providers()).await.expect("listing")
    }

    /// Ids seeded with TTL tags (what the job may delete) that are no longer listed, or listed
    /// terminated or deleting. Untagged resources are never the job's: moto removes some with
    /// what they were attached to (a root volume with its instance) where AWS might not.
    pub async fn removed(&self) -> BTreeSet<String> {
        let now: BTreeMap<String, Option<String>> = self
            .listed()
            .await
            .into_iter()
            .map(|r| (r.id, r.state))
            .collect();
        self.listed
            .iter()
            .filter(|r| r.tags.contains_key("ttl"))
            .map(|r| &r.id)
            .filter(|id| match now.get(*id) {
                None => true,
                Some(state) => state.as_deref().is_some_and(|s| {
                    ["terminated", "shutting-down", "deleting", "deleted"].contains(&s)
                }),
            })
            .cloned()
            .collect()
    }

    /// A fault proxy in front of this account's moto.
    pub async fn proxy(&self, seed_value: u64) -> FaultProxy {
        FaultProxy::start(&self.aws.moto.endpoint(), seed_value)
            .await
            .expect("proxy")
    }
}

/// A call that removes something (not a tag write): query-protocol `Terminate*`, `Delete*`,
/// `Detach*`, `Remove*`, `Abort*`, `Deregister*`; REST `DELETE` (not of tags) and S3's
/// multi-object delete.
pub fn removal() -> Matcher {
    Arc::new(|method: &Method, path: &str, body: &[u8]| {
        let body = String::from_utf8_lossy(body);
        if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            return !action.contains("Tag")
                && [
                    "Terminate",
                    "Delete",
                    "Detach",
                    "Remove",
                    "Abort",
                    "Deregister",
                ]
                .iter()
                .any(|p| action.starts_with(p));
        }
        let query = path.split_once('?').map_or("", |(_, q)| q);
        (method == Method::DELETE && !query.contains("tagging") && !path.contains("/tags/"))
            || (method == Method::POST
                && query.split('&').any(|kv| kv == "delete" || kv == "delete="))
    })
}
