//! The test bed of the binary tests: the services, a config that points at them, seeds, and
//! the leak scan every test ends with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testbed::apikeys::ApiKeyIssuer;
use testbed::fakekube::{FakeKube, Rollout};
use testbed::kafka::{Tansu, consume_all};
use testbed::keycloak::Keycloak;
use testbed::openbao::OpenBao;
use testbed::postgres::Postgres;
use testbed::pushgateway::Pushgateway;
use testbed::smtp::SmtpSink;

use crate::{NOW, run, text};

/// Every event topic the job publishes to.
pub const TOPICS: [&str; 5] = [
    "security-job-results",
    "secret-rotation",
    "secret-rotated",
    "secret-rotation-failed",
    "secret-rotation-due",
];

/// Which optional services a test needs.
#[derive(Default, Clone, Copy)]
pub struct Needs {
    pub pushgateway: bool,
    pub smtp: bool,
    pub issuer: bool,
    pub keycloak: bool,
    pub postgres: bool,
}

pub struct Bed {
    pub dir: tempfile::TempDir,
    pub bao: OpenBao,
    pub kube: FakeKube,
    pub broker: Tansu,
    pub pgw: Option<Pushgateway>,
    pub smtp: Option<SmtpSink>,
    pub issuer: Option<ApiKeyIssuer>,
    pub keycloak: Option<Keycloak>,
    pub postgres: Option<Postgres>,
    kubeconfig: PathBuf,
}

/// `days` before [`NOW`], as Vault metadata writes it.
pub fn days_ago(days: i64) -> String {
    (NOW.parse::<Timestamp>().expect("now") - SignedDuration::from_hours(24 * days)).to_string()
}

/// A value no other test uses (a seeded "old" secret).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

impl Bed {
    pub async fn start(needs: Needs) -> Bed {
        let bao = OpenBao::start().await.expect("openbao");
        let kube = FakeKube::start().await.expect("fake kube");
        for ns in ["governance-jobs", "shop"] {
            kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .expect("namespace");
        }
        let broker = Tansu::start().await.expect("tansu");
        for t in TOPICS {
            broker.create_topic(t, 1).await.expect("topic");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kube.write_kubeconfig(dir.path()).expect("kubeconfig");
        Bed {
            pgw: match needs.pushgateway {
                true => Some(Pushgateway::start().await.expect("pushgateway")),
                false => None,
            },
            smtp: match needs.smtp {
                true => Some(SmtpSink::start().await.expect("smtp")),
                false => None,
            },
            issuer: match needs.issuer {
                true => Some(ApiKeyIssuer::start().await.expect("issuer")),
                false => None,
            },
            keycloak: match needs.keycloak {
                true => Some(Keycloak::start().await.expect("keycloak")),
                false => None,
            },
            postgres: match needs.postgres {
                true => Some(Postgres::start().await.expect("postgres")),
                false => None,
            },
            dir,
            bao,
            kube,
            broker,
            kubeconfig,
        }
    }

    /// Writes `config.yaml`: the shared sections for this bed, then `job:` with Vault, fast
    /// rollout polling, the servers of the bed, and `job_body` (indented two spaces already).
    pub fn config(&self, job_body: &str) -> PathBuf {
        self.config_named("config.yaml", job_body)
    }

    pub fn config_named(&self, name: &str, job_body: &str) -> PathBuf {
        let mut shared = format!(
            "kafka:\n  delivery_timeout: 5s\n  fallback: {{file: events.jsonl}}\nkubernetes:\n  kubeconfig: {}\n",
            self.kubeconfig.display()
        );
        if let Some(smtp) = &self.smtp {
            shared.push_str(&format!(
                "notify:\n  smtp: {{host: {}, port: {}, tls: none, from: rotation@example.com}}\n  email_to: [oncall@example.com]\n",
                smtp.host(),
                smtp.port()
            ));
        }
        let mut targets = String::new();
        if let Some(issuer) = &self.issuer {
            std::fs::write(self.dir.path().join("issuer-token"), issuer.admin_token())
                .expect("token");
            targets.push_str(&format!(
                "    api_key_issuers:\n      partners: {{url: \"{}\", admin_token: {{file: issuer-token}}}}\n",
                issuer.url()
            ));
        }
        if let Some(kc) = &self.keycloak {
            let (id, secret) = kc.admin_credentials();
            std::fs::write(self.dir.path().join("keycloak-secret"), secret).expect("secret");
            targets.push_str(&format!(
                "    keycloak:\n      sso: {{url: \"{}\", realm: apps, admin_client_id: {id}, admin_secret: {{file: keycloak-secret}}}}\n",
                kc.url()
            ));
        }
        if let Some(pg) = &self.postgres {
            std::fs::write(self.dir.path().join("pg-admin"), pg.superuser_password()).expect("pw");
            targets.push_str(&format!(
                "    postgres:\n      orders: {{host: 127.0.0.1, port: {}, database: postgres, admin_user: postgres, admin_password: {{file: pg-admin}}}}\n",
                pg.port()
            ));
        }
        if !targets.is_empty() {
            targets = format!("  targets:\n{targets}");
        }
        let text = format!(
            "{shared}job:\n  vault: {{address: \"{}\", token_env: BAO_TOKEN}}\n  rollout: {{timeout: 15s, poll_interval: 100ms, sync_timeout: 10s}}\n{targets}{job_body}",
            self.bao.address()
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("config");
        path
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("BAO_TOKEN", self.bao.token().to_string()),
            ("GOV_KAFKA_BROKERS", self.broker.bootstrap()),
        ];
        if let Some(p) = &self.pgw {
            env.push(("GOV_PUSHGATEWAY_URL", p.url()));
        }
        env
    }

    /// [`Bed::env`] with `key` set to `value` instead (a scoped token, a proxy's address).
    pub fn env_with(&self, key: &str, value: &str) -> Vec<(&'static str, String)> {
        let env = self.env();
        assert!(
            env.iter().any(|(k, _)| *k == key),
            "{key} is not in the bed's environment"
        );
        env.into_iter()
            .map(|(k, v)| (k, if k == key { value.to_string() } else { v }))
            .collect()
    }

    /// `--config`, then `--now NOW --output json --log-format json` unless `extra` sets them.
    pub fn args<'a>(config: &'a Path, execute: bool, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--config", config.to_str().expect("utf-8")];
        for (flag, value) in [
            ("--now", NOW),
            ("--output", "json"),
            ("--log-format", "json"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        if execute {
            args.push("--execute");
        }
        args.extend_from_slice(extra);
        args
    }

    pub async fn run(&self, config: &Path, execute: bool, extra: &[&str]) -> Output {
        run(
            self.dir.path(),
            &Self::args(config, execute, extra),
            &self.env(),
        )
        .await
    }

    /// Runs and parses the printed result event; asserts the exit code.
    pub async fn run_ok(
        &self,
        config: &Path,
        execute: bool,
        extra: &[&str],
        code: i32,
    ) -> (Value, Output) {
        let out = self.run(config, execute, extra).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        let event: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (event, out)
    }

    /// The run lock of a killed run expires by itself; tests free it at once.
    pub fn free_lock(&self) {
        self.kube
            .remove("leases", Some("governance-jobs"), "secret-rotation");
    }

    async fn vault(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.bao
            .request(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Seeds `secret/<path>` with `data` and custom metadata (last rotated `age_days` ago).
    pub async fn seed(&self, path: &str, data: Value, age_days: i64, custom: Value) {
        self.vault(
            reqwest::Method::POST,
            &format!("secret/data/{path}"),
            Some(json!({ "data": data })),
        )
        .await;
        let mut meta = json!({"last_rotated": days_ago(age_days)});
        if let Some(extra) = custom.as_object() {
            for (k, v) in extra {
                meta[k] = v.clone();
            }
        }
        self.vault(
            reqwest::Method::POST,
            &format!("secret/metadata/{path}"),
            Some(json!({ "custom_metadata": meta })),
        )
        .await;
    }

    /// The latest data of `secret/<path>` and its version.
    pub async fn data(&self, path: &str) -> (Value, u64) {
        let v = self
            .vault(reqwest::Method::GET, &format!("secret/data/{path}"), None)
            .await;
        (
            v["data"]["data"].clone(),
            v["data"]["metadata"]["version"].as_u64().expect("version"),
        )
    }

    pub async fn custom(&self, path: &str) -> Value {
        self.vault(
            reqwest::Method::GET,
            &format!("secret/metadata/{path}"),
            None,
        )
        .await["data"]["custom_metadata"]
            .clone()
    }

    /// Every string value of every version of `secret/<path>` (what the leak scan looks for).
    pub async fn all_values(&self, path: &str) -> Vec<String> {
        let meta = self
            .vault(
                reqwest::Method::GET,
                &format!("secret/metadata/{path}"),
                None,
            )
            .await;
        let current = meta["data"]["current_version"].as_u64().unwrap_or(0);
        let mut out = Vec::new();
        for v in 1..=current {
            if let Ok(d) = self
                .bao
                .request(
                    reqwest::Method::GET,
                    &format!("secret/data/{path}?version={v}"),
                    None,
                )
                .await
            {
                for (k, value) in d["data"]["data"].as_object().into_iter().flatten() {
                    if let Some(s) = value.as_str()
                        && !matches!(k.as_str(), "username" | "key_id" | "client_id")
                    {
                        out.push(s.to_string());
                    }
                }
            }
        }
        out
    }

    /// The pending value of the rotation journaled on `path`, if it exists.
    pub async fn pending(&self, path: &str) -> Option<Value> {
        let id = self.custom(path).await["rotation_id"].as_str()?.to_string();
        self.bao
            .request(
                reqwest::Method::GET,
                &format!("secret/data/_rotation/{path}/{id}"),
                None,
            )
            .await
            .ok()
            .map(|v| v["data"]["data"].clone())
    }

    /// Every event on `topic`, as JSON.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        consume_all(
            &self.broker.bootstrap(),
            topic,
            10_000,
            Duration::from_secs(3),
        )
        .await
        .expect("consume")
        .into_iter()
        .map(|(_, payload)| serde_json::from_slice(&payload).expect("json event"))
        .collect()
    }

    /// Everything published, as raw text, for the leak scan.
    pub async fn all_event_text(&self) -> String {
        let mut all = String::new();
        for t in TOPICS {
            for (_, payload) in
                consume_all(&self.broker.bootstrap(), t, 10_000, Duration::from_secs(2))
                    .await
                    .expect("consume")
            {
                all.push_str(&String::from_utf8_lossy(&payload));
                all.push('\n');
            }
        }
        if let Ok(local) = std::fs::read_to_string(self.dir.path().join("events.jsonl")) {
            all.push_str(&local);
        }
        all
    }

    /// A Kubernetes Secret in `shop`.
    pub fn kube_secret(&self, name: &str, data: &[(&str, &str)], owner: Option<&str>) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let mut meta = json!({"name": name, "namespace": "shop"});
        if let Some(es) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": "external-secrets.io/v1beta1",
                "kind": "ExternalSecret", "name": es, "uid": "u-es", "controller": true}]);
        }
        self.kube
            .insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}))
            .expect("secret");
    }

    /// The decoded data of Secret `shop/<name>`.
    pub fn kube_secret_data(&self, name: &str) -> BTreeMap<String, String> {
        let s = self
            .kube
            .get("secrets", Some("shop"), name)
            .expect("secret");
        s["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default())
                    .expect("base64");
                (k.clone(), String::from_utf8(bytes).expect("utf-8"))
            })
            .collect()
    }

    /// A workload in `shop` whose pods read Secret `secret` (through `env` or a volume), with a
    /// settled status and the given rollout behaviour.
    pub fn workload(
        &self,
        kind: &str,
        name: &str,
        secret: &str,
        via_volume: bool,
        rollout: Rollout,
    ) {
        let mut pod = json!({"containers": [{"name": "app", "image": "app:1"}]});
        if via_volume {
            pod["volumes"] = json!([{"name": "creds", "secret": {"secretName": secret}}]);
        } else {
            pod["containers"][0]["env"] = json!([{"name": "CREDENTIAL",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "api_key"}}}]);
        }
        let mut spec = json!({
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        });
        if kind != "DaemonSet" {
            spec["replicas"] = json!(2);
        }
        self.kube
            .insert(json!({"apiVersion": "apps/v1", "kind": kind,
                "metadata": {"name": name, "namespace": "shop"}, "spec": spec}))
            .expect("workload");
        let plural = match kind {
            "Deployment" => "deployments",
            "StatefulSet" => "statefulsets",
            _ => "daemonsets",
        };
        self.kube
            .complete_rollout(plural, "shop", name)
            .expect("settled");
        self.kube.set_rollout(plural, "shop", name, rollout);
    }

    /// The pod-template annotations of a workload.
    pub fn template_annotations(&self, plural: &str, name: &str) -> Value {
        self.kube.get(plural, Some("shop"), name).expect("workload")["spec"]["template"]["metadata"]
            ["annotations"]
            .clone()
    }

    /// Asserts that no value in `values` appears in anything captured: the runs' stdout and
    /// stderr, every event (Kafka and the local fallback file), the Pushgateway's metrics, every
    /// mail.
    pub async fn leak_scan(&self, outputs: &[&Output], values: &[String]) {
        assert!(!values.is_empty(), "a leak scan needs values to look for");
        let mut captured = Vec::new();
        for o in outputs {
            let (stdout, stderr) = text(o);
            captured.push(("stdout".to_string(), stdout));
            captured.push(("stderr".to_string(), stderr));
        }
        captured.push(("events".into(), self.all_event_text().await));
        if let Some(p) = &self.pgw {
            let metrics = reqwest::get(format!("{}/metrics", p.url()))
                .await
                .expect("pushgateway")
                .text()
                .await
                .expect("metrics");
            assert!(
                metrics.contains("secret_age_seconds"),
                "the scan reads the real metrics"
            );
            captured.push(("metrics".into(), metrics));
        }
        if let Some(s) = &self.smtp {
            for m in s.messages().expect("mails") {
                captured.push(("mail".into(), m.raw().to_string()));
            }
        }
        for v in values {
            assert!(
                v.len() >= 16,
                "scan for real secrets, not short words: {v:?}"
            );
            for (what, text) in &captured {
                assert!(
                    !text.contains(v.as_str()),
                    "a secret value leaked into {what}"
                );
            }
        }
    }
}

/// The finding of `secret` in a result event (panics with the event when there is none).
pub fn finding<'a>(event: &'a Value, secret: &str) -> &'a Value {
    event["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["secret"] == secret)
        .unwrap_or_else(|| panic!("no finding for {secret}: {event:#}"))
}
