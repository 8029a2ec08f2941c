//! `--execute` against an audit sink that wants SASL over TLS (tansu behind stunnel and the
//! project's SASL gate): refused before any side effect when the brokers refuse our
//! credentials, and a normal run with the right ones — with neither password in any output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use serde_json::Value;
use testbed::pki::Pki;
use testbed::saslgate::{GateConfig, GateEvent, Mechanism};
use testbed::securekafka::{SecureKafka, TlsFront};

use crate::execute::{Bed, TOPICS, tags};
use crate::{run, text};

const USER: &str = "ttl-teardown";
const PASSWORD: &str = "Audit-Sink-Pa55w0rd-do-not-leak";
const WRONG: &str = "Wr0ng-Audit-Password-do-not-leak";

/// The Bed's config with its plaintext `kafka:` section replaced by SASL_SSL + SCRAM-SHA-512,
/// the password in a file next to it.
fn secure_config(bed: &Bed, pki: &Pki, password: &str) -> PathBuf {
    let plain = std::fs::read_to_string(bed.config("")).expect("config");
    let password_file = bed.dir.path().join("kafka-password");
    std::fs::write(&password_file, format!("{password}\n")).expect("password file");
    let kafka = format!(
        "kafka:\n  delivery_timeout: 5s\n  security_protocol: SASL_SSL\n  tls:\n    ca_file: {}\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: {USER}\n    password_file: kafka-password\n",
        pki.ca.display()
    );
    let secured = plain.replace("kafka:\n  delivery_timeout: 5s\n", &kafka);
    assert_ne!(secured, plain, "the Bed's kafka section was replaced");
    let path = bed.dir.path().join("config-sasl.yaml");
    std::fs::write(&path, secured).expect("write config");
    path
}

async fn execute(bed: &Bed, kafka: &SecureKafka, config: &Path) -> std::process::Output {
    let mut env: Vec<(&str, String)> = bed
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "GOV_KAFKA_BROKERS")
        .collect();
    env.push(("GOV_KAFKA_BROKERS", kafka.bootstrap()));
    env.push(("RUST_LOG", "debug".into()));
    let args = [
        "--config",
        config.to_str().expect("utf-8"),
        "--now",
        "2026-11-23T12:00:00Z",
        "--output",
        "json",
        "--execute",
    ];
    run(bed.dir.path(), &args, &env).await
}

fn assert_no_password(what: &str, text: &str) {
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "a password leaked into {what}");
    }
}

#[tokio::test]
async fn execute_is_refused_when_the_audit_sink_refuses_our_credentials() {
    let bed = Bed::start().await;
    let pki = Pki::generate().expect("pki");
    let kafka = SecureKafka::start(
        Some(TlsFront::new(&pki)),
        Some(GateConfig {
            mechanisms: [Mechanism::ScramSha512].into_iter().collect(),
            users: [(USER.to_string(), PASSWORD.to_string())]
                .into_iter()
                .collect(),
            tokens: None,
        }),
    )
    .await
    .expect("tansu behind stunnel and the gate");
    for topic in TOPICS {
        kafka.create_topic(topic, 1).await.expect("topic");
    }
    let expired = bed.instance(&tags(-5, true), &[]).await;

    // The wrong password: exit 2 before anything happened, saying why.
    let out = execute(&bed, &kafka, &secure_config(&bed, &pki, WRONG)).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("audit sink unavailable"), "{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(stdout.is_empty(), "no report for a refused run: {stdout}");
    assert_no_password(
        "stdout/stderr of the refused run",
        &format!("{stdout}{stderr}"),
    );
    assert_eq!(
        bed.instance_state(&expired).await,
        Some(InstanceStateName::Running)
    );
    assert!(
        bed.kube
            .get("leases", Some("governance-jobs"), "ttl-teardown")
            .is_none(),
        "refused before the run lock was taken"
    );
    assert!(
        kafka.client_events().iter().any(
            |e| matches!(e, GateEvent::Refused { reason } if reason.contains("invalid credentials"))
        ),
        "{:?}",
        kafka.client_events()
    );

    // The right password: the run goes ahead and its audit is on the secured topic.
    let out = execute(&bed, &kafka, &secure_config(&bed, &pki, PASSWORD)).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_password("stdout/stderr of the run", &format!("{stdout}{stderr}"));
    assert!(
        matches!(
            bed.instance_state(&expired).await,
            Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
        ),
        "deleted"
    );
    let audit = kafka
        .consume_all("resource-deleted", 1000, Duration::from_secs(10))
        .await
        .expect("consume through the front");
    let audit: Vec<Value> = audit
        .iter()
        .map(|(_, p)| serde_json::from_slice(p).expect("json"))
        .collect();
    assert!(
        audit.iter().any(|e| e.to_string().contains(&expired)),
        "the deletion was audited: {audit:?}"
    );
    let results = kafka
        .consume_all("security-job-results", 2, Duration::from_secs(10))
        .await
        .expect("consume");
    assert_eq!(results.len(), 1, "one result event, from the run that ran");
    let payloads = audit.iter().map(Value::to_string).chain(
        results
            .iter()
            .map(|(_, p)| String::from_utf8_lossy(p).into_owned()),
    );
    for payload in payloads {
        assert_no_password("an event", &payload);
    }
}
