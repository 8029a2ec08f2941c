use std::time::{Duration, Instant};

use common::config::{HostPort, KafkaConfig};
use common::event::ResultEvent;
use common::kafka::Publisher;
use testbed::kafka::{Tansu, consume_all, mock_cluster};

use crate::sample_event;

fn config(bootstrap: &str, timeout: Duration) -> KafkaConfig {
    KafkaConfig {
        brokers: bootstrap
            .split(',')
            .map(|b| HostPort::parse(b).expect("host:port"))
            .collect(),
        delivery_timeout: common::config::HumanDuration(timeout),
        ..KafkaConfig::default()
    }
}

#[tokio::test]
async fn result_event_round_trips_through_the_mock_cluster() {
    let cluster = mock_cluster(&[("security-job-results", 3)]).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let publisher =
        Publisher::from_config(&config(&bootstrap, Duration::from_secs(10))).expect("publisher");
    assert!(publisher.is_durable());

    let sent = sample_event("mock-job");
    let delivery = publisher.publish_result(&sent).await.expect("acknowledged");
    assert_eq!(delivery.topic, "security-job-results");
    assert!(
        delivery.position.is_some(),
        "a kafka delivery has a partition and offset"
    );

    let records = consume_all(
        &bootstrap,
        "security-job-results",
        1,
        Duration::from_secs(20),
    )
    .await
    .expect("consume");
    assert_eq!(records.len(), 1);
    let (key, payload) = &records[0];
    assert_eq!(
        key.as_deref(),
        Some(b"mock-job".as_slice()),
        "keyed by job name"
    );
    let received: ResultEvent = serde_json::from_slice(payload).expect("a result event");
    assert_eq!(received, sent, "field by field");
}

#[tokio::test]
async fn durable_publish_against_tansu_then_broker_stopped_fails_within_the_timeout() {
    let mut broker = Tansu::start().await.expect("tansu");
    broker
        .create_topic("security-job-results", 3)
        .await
        .expect("topic");
    broker
        .create_topic("resource-deleted", 1)
        .await
        .expect("topic");
    let timeout = Duration::from_secs(3);
    let publisher =
        Publisher::from_config(&config(&broker.bootstrap(), timeout)).expect("publisher");

    let sent = sample_event("tansu-job");
    publisher
        .publish_result(&sent)
        .await
        .expect("acknowledged by tansu");
    let intent = serde_json::json!({"resource": "arn:aws:ec2:us-east-1:111111111111:instance/i-1", "phase": "intent"});
    publisher
        .publish(
            "resource-deleted",
            "arn:aws:ec2:us-east-1:111111111111:instance/i-1",
            &intent,
        )
        .await
        .expect("acknowledged");

    let records = consume_all(
        &broker.bootstrap(),
        "security-job-results",
        1,
        Duration::from_secs(20),
    )
    .await
    .expect("consume");
    let received: ResultEvent = serde_json::from_slice(&records[0].1).expect("a result event");
    assert_eq!(received, sent);
    let audit = consume_all(
        &broker.bootstrap(),
        "resource-deleted",
        1,
        Duration::from_secs(20),
    )
    .await
    .expect("consume");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&audit[0].1).expect("json"),
        intent
    );

    // The broker goes away mid-run: the next durable publish must fail, and within the timeout.
    broker.stop();
    let started = Instant::now();
    let result = publisher.publish("resource-deleted", "k", &intent).await;
    let elapsed = started.elapsed();
    let err = result.expect_err("no broker, no acknowledgement");
    assert!(
        matches!(
            err,
            common::Error::KafkaDelivery { .. }
                | common::Error::KafkaSink {
                    fault: common::kafka::SinkFault::Unreachable(_),
                    ..
                }
        ),
        "a delivery error, got {err}"
    );
    assert!(err.to_string().contains("resource-deleted"), "{err}");
    assert!(
        elapsed < timeout + Duration::from_secs(3),
        "failed after {elapsed:?}, timeout {timeout:?}"
    );
}

#[tokio::test]
async fn without_brokers_events_go_to_the_fallback_file_and_are_not_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let config = KafkaConfig {
        fallback: common::config::Fallback::File(path.clone()),
        ..KafkaConfig::default()
    };
    let publisher = Publisher::from_config(&config).expect("publisher");
    assert!(!publisher.is_durable());
    assert!(
        publisher.describe().contains("no kafka brokers configured"),
        "{}",
        publisher.describe()
    );
    let sent = sample_event("file-job");
    publisher.publish_result(&sent).await.expect("written");
    publisher
        .publish("tag-violation", "k", &serde_json::json!({"x": 1}))
        .await
        .expect("written");
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        serde_json::from_str::<ResultEvent>(lines[0]).expect("event"),
        sent
    );
}

/// Issue 16, "broker loss is slow to give up": once one event of a run was not acknowledged,
/// the run's publisher sends nothing more, so N publishes after the broker died cost about one
/// delivery timeout, not N.
#[tokio::test]
async fn after_the_broker_dies_a_run_stops_publishing_within_one_timeout() {
    let mut broker = Tansu::start().await.expect("tansu");
    broker
        .create_topic("resource-deleted", 1)
        .await
        .expect("topic");
    let timeout = Duration::from_secs(2);
    let run = Publisher::for_run(&config(&broker.bootstrap(), timeout)).expect("publisher");
    let service = Publisher::from_config(&config(&broker.bootstrap(), timeout)).expect("publisher");
    let intent = serde_json::json!({"phase": "intent"});
    for publisher in [&run, &service] {
        publisher
            .publish("resource-deleted", "k", &intent)
            .await
            .expect("acknowledged while the broker is up");
    }

    broker.stop();
    const N: usize = 6;
    let started = Instant::now();
    let mut results = Vec::new();
    for i in 0..N {
        results.push(
            run.publish("resource-deleted", &format!("k{i}"), &intent)
                .await,
        );
    }
    let result_event = run.publish_result(&sample_event("dead-broker")).await;
    run.flush();
    let elapsed = started.elapsed();

    // The first publish waits for the broker and fails; every later one fails at once, naming
    // the first failure.
    let first = results[0].as_ref().expect_err("no broker");
    assert!(
        matches!(
            first,
            common::Error::KafkaDelivery { .. } | common::Error::KafkaSink { .. }
        ),
        "{first}"
    );
    for later in results[1..].iter().chain([&result_event]) {
        let err = later.as_ref().expect_err("not sent");
        assert!(
            matches!(err, common::Error::KafkaFailedEarlier { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("the audit sink failed earlier in this run"),
            "{text}"
        );
        assert!(
            text.contains(&first.to_string()),
            "names the first failure: {text}"
        );
    }
    assert!(run.failed_earlier().is_some());
    // An upper bound with a wide margin, not a timing target: N + 1 publishes and a flush in
    // far less than the N + 1 timeouts they took before.
    assert!(
        elapsed < timeout * 3,
        "{} publishes took {elapsed:?} with a {timeout:?} delivery timeout",
        N + 1
    );

    // A long-lived service's publisher keeps trying instead: each publish waits again.
    let err = service
        .publish("resource-deleted", "k", &intent)
        .await
        .expect_err("no broker");
    assert!(
        !matches!(err, common::Error::KafkaFailedEarlier { .. }),
        "{err}"
    );
    let err = service
        .publish("resource-deleted", "k", &intent)
        .await
        .expect_err("no broker");
    assert!(
        !matches!(err, common::Error::KafkaFailedEarlier { .. }),
        "a service never stops trying: {err}"
    );
    assert!(service.failed_earlier().is_none());
}
