//! The Kafka publisher against a real broker that refuses plaintext: tansu behind Debian's
//! stunnel (TLS, mTLS) and our SASL gate (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with Amazon MSK
//! IAM tokens). Every mechanism round-trips an event; every refusal is a clear error within the
//! delivery timeout that never contains the credential.
//!
//! Time bounds here are upper bounds with a wide margin ("within the timeout"), never targets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use common::config::{
    HostPort, HumanDuration, KafkaConfig, KafkaSasl, KafkaTls, MskIamConfig, SaslMechanism,
    SecurityProtocol,
};
use common::event::ResultEvent;
use common::kafka::{Publisher, SinkFault};
use testbed::pki::Pki;
use testbed::saslgate::{GateConfig, GateEvent, Mechanism, TokenCheck};
use testbed::securekafka::{SecureKafka, TlsFront};

use crate::sample_event;

const TOPIC: &str = "security-job-results";
const TIMEOUT: Duration = Duration::from_secs(5);
const USER: &str = "governance-jobs";
const PASSWORD: &str = "Kafka-Pa55w0rd-do-not-leak";
const ACCESS_KEY: &str = "AKIAGOVJOBSTEST0001";
const SECRET_KEY: &str = "msk-iam-S3cret-Access-Key-do-not-leak";
const REGION: &str = "eu-west-1";

fn base(bootstrap: &str, protocol: SecurityProtocol) -> KafkaConfig {
    KafkaConfig {
        brokers: vec![HostPort::parse(bootstrap).expect("host:port")],
        delivery_timeout: HumanDuration(TIMEOUT),
        security_protocol: protocol,
        ..KafkaConfig::default()
    }
}

fn trusting(ca: &Path) -> KafkaTls {
    KafkaTls {
        ca_file: Some(ca.to_path_buf()),
        ..KafkaTls::default()
    }
}

/// A SASL section with the password in a file written to `dir`.
fn password_sasl(dir: &Path, mechanism: SaslMechanism, password: &str) -> KafkaSasl {
    let file = dir.join("kafka-password");
    std::fs::write(&file, format!("{password}\n")).expect("write password");
    KafkaSasl {
        mechanism,
        username: Some(USER.to_string()),
        password_file: Some(file),
        password: None,
        aws_msk_iam: None,
    }
}

fn gate(mechanisms: &[Mechanism]) -> GateConfig {
    GateConfig {
        mechanisms: mechanisms.iter().copied().collect::<BTreeSet<_>>(),
        users: [(USER.to_string(), PASSWORD.to_string())]
            .into_iter()
            .collect(),
        tokens: Some(TokenCheck::MskIam {
            region: REGION.to_string(),
            keys: [(ACCESS_KEY.to_string(), SECRET_KEY.to_string())]
                .into_iter()
                .collect(),
        }),
    }
}

fn static_credentials(secret: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(ACCESS_KEY, secret, None, None, "test"))
}

/// Publishes a result event and reads it back through the front.
async fn round_trip(kafka: &SecureKafka, publisher: &Publisher) {
    kafka.create_topic(TOPIC, 1).await.expect("topic");
    let sent = sample_event("secure-job");
    let delivery = publisher
        .publish_result(&sent)
        .await
        .unwrap_or_else(|e| panic!("acknowledged through {}: {e}", publisher.describe()));
    assert!(delivery.position.is_some());
    let records = kafka
        .consume_all(TOPIC, 1, Duration::from_secs(20))
        .await
        .expect("consume");
    assert_eq!(records.len(), 1);
    let received: ResultEvent = serde_json::from_slice(&records[0].1).expect("result event");
    assert_eq!(received, sent, "field by field");
}

/// Publishes once and returns the error, checking it came within the delivery timeout and
/// names neither secret.
async fn refused(publisher: &Publisher) -> common::Error {
    let started = Instant::now();
    let result = publisher.publish_result(&sample_event("refused-job")).await;
    let elapsed = started.elapsed();
    let err = result.expect_err("the broker refuses us");
    assert!(
        elapsed < TIMEOUT + Duration::from_secs(3),
        "failed after {elapsed:?}, timeout {TIMEOUT:?}: {err}"
    );
    assert_no_secret(&err.to_string());
    assert_no_secret(&format!("{err:?}"));
    err
}

fn assert_no_secret(text: &str) {
    for secret in [PASSWORD, SECRET_KEY] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
}

fn fault(err: &common::Error) -> &SinkFault {
    match err {
        common::Error::KafkaSink { fault, .. } => fault,
        other => panic!("expected the broker's reason, got {other}"),
    }
}

fn pki() -> Pki {
    Pki::generate().expect("pki")
}

#[tokio::test]
async fn tls_verifies_the_broker_certificate_and_round_trips() {
    let pki = pki();
    let kafka = SecureKafka::start(Some(TlsFront::new(&pki)), None)
        .await
        .expect("tansu behind stunnel");
    let config = KafkaConfig {
        tls: trusting(&pki.ca),
        ..base(&kafka.bootstrap(), SecurityProtocol::Ssl)
    };
    let publisher = Publisher::for_run(&config).expect("publisher");
    assert!(
        publisher.describe().ends_with("(SSL)"),
        "{}",
        publisher.describe()
    );
    publisher
        .probe()
        .await
        .expect("the brokers answer over TLS");
    round_trip(&kafka, &publisher).await;
}

#[tokio::test]
async fn tls_refuses_a_broker_signed_by_another_ca_or_named_otherwise() {
    let pki = pki();
    let kafka = SecureKafka::start(Some(TlsFront::new(&pki)), None)
        .await
        .expect("tansu behind stunnel");
    let wrong_ca = KafkaConfig {
        tls: trusting(&pki.other_ca),
        ..base(&kafka.bootstrap(), SecurityProtocol::Ssl)
    };
    let err = refused(&Publisher::for_run(&wrong_ca).expect("publisher")).await;
    assert!(
        matches!(fault(&err), SinkFault::Tls(r) if r.contains("certificate verify failed")),
        "{err}"
    );
    assert!(
        err.to_string().contains(": TLS handshake failed: "),
        "{err}"
    );

    let mismatched = SecureKafka::start(
        Some(TlsFront::new(&pki).serving(&pki.wrong_name_server)),
        None,
    )
    .await
    .expect("stunnel with a certificate for another name");
    let config = KafkaConfig {
        tls: trusting(&pki.ca),
        ..base(&mismatched.bootstrap(), SecurityProtocol::Ssl)
    };
    let err = refused(&Publisher::for_run(&config).expect("publisher")).await;
    assert!(matches!(fault(&err), SinkFault::Tls(_)), "{err}");
    // The admin client (which skips the name check) gets through: the refusal was the name.
    mismatched
        .create_topic("reachable", 1)
        .await
        .expect("the same broker, name check off");
}

#[tokio::test]
async fn mtls_round_trips_with_a_client_certificate_and_refuses_without_or_with_an_untrusted_one() {
    let pki = pki();
    let kafka = SecureKafka::start(Some(TlsFront::new(&pki).mutual(&pki)), None)
        .await
        .expect("tansu behind stunnel requiring client certificates");
    let with_cert = KafkaConfig {
        tls: KafkaTls {
            ca_file: Some(pki.ca.clone()),
            cert_file: Some(pki.client.cert.clone()),
            key_file: Some(pki.client.key.clone()),
            key_password_file: None,
        },
        ..base(&kafka.bootstrap(), SecurityProtocol::Ssl)
    };
    let publisher = Publisher::for_run(&with_cert).expect("publisher");
    assert!(
        publisher.describe().contains("with a client certificate"),
        "{}",
        publisher.describe()
    );
    round_trip(&kafka, &publisher).await;

    let without = KafkaConfig {
        tls: trusting(&pki.ca),
        ..base(&kafka.bootstrap(), SecurityProtocol::Ssl)
    };
    let err = refused(&Publisher::for_run(&without).expect("publisher")).await;
    assert!(matches!(fault(&err), SinkFault::Tls(_)), "{err}");

    let untrusted = KafkaConfig {
        tls: KafkaTls {
            ca_file: Some(pki.ca.clone()),
            cert_file: Some(pki.untrusted_client.cert.clone()),
            key_file: Some(pki.untrusted_client.key.clone()),
            key_password_file: None,
        },
        ..base(&kafka.bootstrap(), SecurityProtocol::Ssl)
    };
    let err = refused(&Publisher::for_run(&untrusted).expect("publisher")).await;
    assert!(matches!(fault(&err), SinkFault::Tls(_)), "{err}");
}

#[tokio::test]
async fn sasl_plain_and_scram_sha_512_over_tls_round_trip_and_refuse_a_wrong_password() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = SecureKafka::start(
        Some(TlsFront::new(&pki)),
        Some(gate(&[Mechanism::Plain, Mechanism::ScramSha512])),
    )
    .await
    .expect("tansu behind stunnel and the gate");
    kafka.create_topic("sasl-check", 1).await.expect("topic");
    for (mechanism, name) in [
        (SaslMechanism::Plain, "PLAIN"),
        (SaslMechanism::ScramSha512, "SCRAM-SHA-512"),
    ] {
        let config = |password: &str| KafkaConfig {
            tls: trusting(&pki.ca),
            sasl: Some(password_sasl(dir.path(), mechanism, password)),
            ..base(&kafka.bootstrap(), SecurityProtocol::SaslSsl)
        };
        let publisher = Publisher::for_run(&config(PASSWORD)).expect("publisher");
        assert!(
            publisher.describe().contains(&format!("SASL {name}")),
            "{}",
            publisher.describe()
        );
        publisher
            .publish("sasl-check", "k", &serde_json::json!({"mechanism": name}))
            .await
            .unwrap_or_else(|e| panic!("{name}: acknowledged: {e}"));
        assert_no_secret(&format!("{publisher:?} {}", publisher.describe()));

        let wrong = Publisher::for_run(&config("not-the-password")).expect("publisher");
        let err = refused(&wrong).await;
        assert!(
            matches!(fault(&err), SinkFault::Authentication(r) if r.contains("Authentication failed")),
            "{name}: {err}"
        );
        assert!(!err.to_string().contains("not-the-password"), "{err}");
    }
    let events = kafka.client_events();
    for name in ["PLAIN", "SCRAM-SHA-512"] {
        assert!(
            events.contains(&GateEvent::Authenticated {
                mechanism: name.to_string(),
                principal: USER.to_string()
            }),
            "{name} authenticated at the gate: {events:?}"
        );
    }
    assert!(
        events.iter().any(
            |e| matches!(e, GateEvent::Refused { reason } if reason.contains("SCRAM-SHA-512"))
        ),
        "the wrong SCRAM proof was refused by the gate: {events:?}"
    );
    let checks = kafka
        .consume_all("sasl-check", 2, Duration::from_secs(20))
        .await
        .expect("consume");
    assert_eq!(checks.len(), 2, "one event per mechanism");
}

#[tokio::test]
async fn scram_sha_256_over_sasl_plaintext_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = SecureKafka::start(None, Some(gate(&[Mechanism::ScramSha256])))
        .await
        .expect("tansu behind the gate");
    let config = KafkaConfig {
        sasl: Some(password_sasl(
            dir.path(),
            SaslMechanism::ScramSha256,
            PASSWORD,
        )),
        ..base(&kafka.bootstrap(), SecurityProtocol::SaslPlaintext)
    };
    let publisher = Publisher::for_run(&config).expect("publisher");
    round_trip(&kafka, &publisher).await;
    assert!(
        kafka.client_events().contains(&GateEvent::Authenticated {
            mechanism: "SCRAM-SHA-256".into(),
            principal: USER.into()
        }),
        "{:?}",
        kafka.client_events()
    );
}

fn msk_iam_config(kafka: &SecureKafka, pki: &Pki) -> KafkaConfig {
    KafkaConfig {
        tls: trusting(&pki.ca),
        sasl: Some(KafkaSasl {
            mechanism: SaslMechanism::OauthBearer,
            username: None,
            password_file: None,
            password: None,
            aws_msk_iam: Some(MskIamConfig {
                region: REGION.into(),
            }),
        }),
        ..base(&kafka.bootstrap(), SecurityProtocol::SaslSsl)
    }
}

#[tokio::test]
async fn oauthbearer_with_msk_iam_tokens_round_trips_and_a_wrong_secret_key_is_refused() {
    let pki = pki();
    let kafka = SecureKafka::start(
        Some(TlsFront::new(&pki)),
        Some(gate(&[Mechanism::OAuthBearer])),
    )
    .await
    .expect("tansu behind stunnel and the gate");
    let config = msk_iam_config(&kafka, &pki);
    let publisher = Publisher::builder(&config)
        .stop_after_failure(true)
        .aws_credentials(static_credentials(SECRET_KEY))
        .build()
        .expect("publisher");
    assert!(
        publisher
            .describe()
            .contains("OAUTHBEARER (Amazon MSK IAM)"),
        "{}",
        publisher.describe()
    );
    round_trip(&kafka, &publisher).await;
    assert!(
        kafka.client_events().contains(&GateEvent::Authenticated {
            mechanism: "OAUTHBEARER".into(),
            principal: ACCESS_KEY.into()
        }),
        "the gate checked the token's signature: {:?}",
        kafka.client_events()
    );

    let wrong = Publisher::builder(&config)
        .aws_credentials(static_credentials("a-wrong-secret-key"))
        .build()
        .expect("publisher");
    let err = refused(&wrong).await;
    assert!(
        matches!(fault(&err), SinkFault::Authentication(r) if r.contains("signature does not match")),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_without_sasl_is_refused_by_the_gate_with_a_hint() {
    let pki = pki();
    let kafka = SecureKafka::start(
        Some(TlsFront::new(&pki)),
        Some(gate(&[Mechanism::ScramSha512])),
    )
    .await
    .expect("tansu behind stunnel and the gate");
    let config = KafkaConfig {
        tls: trusting(&pki.ca),
        ..base(&kafka.bootstrap(), SecurityProtocol::Ssl)
    };
    let publisher = Publisher::for_run(&config).expect("publisher");
    let err = refused(&publisher).await;
    assert!(
        matches!(fault(&err), SinkFault::Unreachable(r) if r.contains("the listener may require SASL")),
        "{err}"
    );
    let events = kafka.client_events();
    assert!(
        events.iter().any(|e| matches!(e, GateEvent::Refused { reason } if reason.ends_with("before authentication"))),
        "the gate refused a request before authentication: {events:?}"
    );
}

#[tokio::test]
async fn the_probe_names_the_refusal_before_anything_is_published() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = SecureKafka::start(
        Some(TlsFront::new(&pki)),
        Some(gate(&[Mechanism::ScramSha512])),
    )
    .await
    .expect("tansu behind stunnel and the gate");
    let config = KafkaConfig {
        tls: trusting(&pki.ca),
        sasl: Some(password_sasl(
            dir.path(),
            SaslMechanism::ScramSha512,
            "not-the-password",
        )),
        ..base(&kafka.bootstrap(), SecurityProtocol::SaslSsl)
    };
    let publisher = Publisher::for_run(&config).expect("publisher");
    let started = Instant::now();
    let err = publisher.probe().await.expect_err("refused");
    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(3));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "kafka brokers {} are not usable: authentication failed: ",
            kafka.bootstrap()
        )),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
}

#[tokio::test]
async fn an_unreadable_secret_file_is_named_before_anything_is_sent() {
    let config = KafkaConfig {
        sasl: Some(KafkaSasl {
            mechanism: SaslMechanism::ScramSha512,
            username: Some(USER.into()),
            password_file: Some(PathBuf::from("/nonexistent/kafka-password")),
            password: None,
            aws_msk_iam: None,
        }),
        tls: trusting(Path::new("/nonexistent/ca.pem")),
        ..base("127.0.0.1:9", SecurityProtocol::SaslSsl)
    };
    let err = Publisher::for_run(&config).expect_err("refused");
    assert!(
        err.to_string().starts_with("cannot read /nonexistent/"),
        "{err}"
    );
}

/// The gate's MSK IAM check against the publisher's signer, message by message: two
/// implementations of SigV4 that must agree, and every way a token can be wrong.
#[test]
fn msk_iam_tokens_from_the_signer_pass_the_gate_s_check_and_tampering_fails_it() {
    use testbed::saslgate::mechanism::check_msk_iam_token;
    let keys: BTreeMap<String, String> = [(ACCESS_KEY.to_string(), SECRET_KEY.to_string())]
        .into_iter()
        .collect();
    let now = SystemTime::now();
    let sign = |secret: &str, region: &str, at: SystemTime| {
        let credentials = Credentials::new(ACCESS_KEY, secret, None, None, "test");
        common::kafka::msk_iam::presign(&credentials, region, at)
            .expect("signed")
            .token
    };
    assert_eq!(
        check_msk_iam_token(&sign(SECRET_KEY, REGION, now), REGION, &keys, now),
        Ok(ACCESS_KEY.to_string())
    );
    let session = Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some("FwoGZXIvYXdzE/session+token=".into()),
        None,
        "test",
    );
    let with_session = common::kafka::msk_iam::presign(&session, REGION, now)
        .expect("signed")
        .token;
    assert_eq!(
        check_msk_iam_token(&with_session, REGION, &keys, now),
        Ok(ACCESS_KEY.to_string()),
        "the session token is part of what is signed"
    );
    let cases = [
        (sign("wrong", REGION, now), now, "signature does not match"),
        (
            sign(SECRET_KEY, "us-east-1", now),
            now,
            "not a presigned https://kafka.eu-west-1.amazonaws.com/ url",
        ),
        (
            sign(SECRET_KEY, REGION, now - Duration::from_secs(901)),
            now,
            "expired",
        ),
        ("bm90IGEgdXJs".to_string(), now, "not a presigned"),
    ];
    for (token, at, why) in cases {
        let err = check_msk_iam_token(&token, REGION, &keys, at).expect_err(why);
        assert!(err.contains(why), "{why}: {err}");
    }
    let unknown: BTreeMap<String, String> = BTreeMap::new();
    assert!(
        check_msk_iam_token(&sign(SECRET_KEY, REGION, now), REGION, &unknown, now)
            .is_err_and(|e| e.contains("unknown access key"))
    );
}
