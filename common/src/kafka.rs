//! One publisher for every event a job emits.
//!
//! With brokers configured it is an idempotent rdkafka producer with `acks=all`, and every
//! [`Publisher::publish`] waits for the broker's acknowledgement (bounded by the delivery
//! timeout): when it returns `Ok`, the event is durably on the topic. Destructive jobs use that as
//! their write-ahead audit, calling it before every destructive step.
//!
//! With no brokers, events are written as JSON lines to stderr or a file (the demo's default) and
//! the publisher says so; such a publisher is not [durable](Publisher::is_durable), and jobs that
//! need a durable audit refuse `--execute` with it.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::Error;
use crate::config::{Fallback, KafkaConfig};
use crate::event::ResultEvent;

/// Where an acknowledged event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic (or, for the fallback, the topic it would have gone to).
    pub topic: String,
    /// Partition and offset for Kafka; `None` for the fallback.
    pub position: Option<(i32, i64)>,
}

enum Sink {
    Kafka {
        producer: FutureProducer,
        brokers: String,
    },
    Stderr,
    File {
        path: std::path::PathBuf,
        file: Mutex<std::fs::File>,
    },
}

/// Publishes JSON events by type, keyed, to Kafka or the local fallback.
pub struct Publisher {
    sink: Sink,
    results_topic: String,
    topics: std::collections::BTreeMap<String, String>,
    timeout: Duration,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("sink", &self.describe())
            .finish()
    }
}

/// The event type of the result event, for topic lookup and headers.
pub const RESULT_EVENT_TYPE: &str = "job-result";

impl Publisher {
    /// Builds the publisher the config asks for. Creating a Kafka producer does not contact the
    /// broker; an unreachable broker shows up as a delivery error within the timeout.
    pub fn from_config(config: &KafkaConfig) -> Result<Self, Error> {
        let timeout = config.delivery_timeout.0;
        let sink = if config.brokers.is_empty() {
            match &config.fallback {
                Fallback::Stderr => Sink::Stderr,
                Fallback::File(path) => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| Error::EventSink {
                            sink: path.display().to_string(),
                            source,
                        })?;
                    Sink::File {
                        path: path.clone(),
                        file: Mutex::new(file),
                    }
                }
            }
        } else {
            let brokers: Vec<&str> = config.brokers.iter().map(|b| b.as_str()).collect();
            let brokers = brokers.join(",");
            let mut cc = ClientConfig::new();
            cc.set("bootstrap.servers", &brokers)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("message.timeout.ms", timeout.as_millis().to_string())
                .set(
                    "socket.timeout.ms",
                    timeout.as_millis().max(1000).to_string(),
                )
                .set("linger.ms", "5")
                .set("client.id", "governance-jobs");
            for (k, v) in &config.properties {
                cc.set(k, v);
            }
            let producer: FutureProducer = cc.create().map_err(|source| Error::KafkaClient {
                brokers: brokers.clone(),
                source: Box::new(source),
            })?;
            Sink::Kafka { producer, brokers }
        };
        Ok(Publisher {
            sink,
            results_topic: config.topic.clone(),
            topics: config.topics.clone(),
            timeout,
        })
    }

    /// True when a successful publish means a broker acknowledged the event (`acks=all`).
    pub fn is_durable(&self) -> bool {
        matches!(self.sink, Sink::Kafka { .. })
    }

    /// Where events go, for logs: `kafka brokers …`, `stderr (no brokers configured)`, ….
    pub fn describe(&self) -> String {
        match &self.sink {
            Sink::Kafka { brokers, .. } => format!("kafka brokers {brokers}"),
            Sink::Stderr => "stderr as json lines (no kafka brokers configured)".to_string(),
            Sink::File { path, .. } => format!(
                "{} as json lines (no kafka brokers configured)",
                path.display()
            ),
        }
    }

    /// The topic an event type goes to.
    pub fn topic_for(&self, event_type: &str) -> String {
        if event_type == RESULT_EVENT_TYPE {
            return self.results_topic.clone();
        }
        self.topics
            .get(event_type)
            .cloned()
            .unwrap_or_else(|| event_type.to_string())
    }

    /// Publishes one event and waits until it is acknowledged (or the delivery timeout passes).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        key: &str,
        event: &T,
    ) -> Result<Delivery, Error> {
        let topic = self.topic_for(event_type);
        let payload = serde_json::to_vec(event).map_err(|source| Error::Encode {
            what: format!("{event_type} event"),
            source,
        })?;
        match &self.sink {
            Sink::Kafka { producer, .. } => {
                let headers = OwnedHeaders::new().insert(Header {
                    key: "event_type",
                    value: Some(event_type),
                });
                let record = FutureRecord::to(&topic)
                    .key(key)
                    .payload(&payload)
                    .headers(headers);
                // librdkafka's own timeouts (queue, message.timeout.ms) do not bound the wait once
                // the broker is gone and the idempotent producer is re-acquiring its id, so the
                // whole call gets a hard deadline: an unacknowledged event is an error on time.
                // A message abandoned this way may still be delivered later; for the audit that
                // is an intent without an outcome, which readers treat as "not done".
                let send = producer.send(record, Timeout::After(self.timeout));
                let failed = |source| Error::KafkaDelivery {
                    event_type: event_type.to_string(),
                    topic: topic.clone(),
                    source: Box::new(source),
                };
                match tokio::time::timeout(self.timeout, send).await {
                    Ok(Ok(d)) => Ok(Delivery {
                        topic: topic.clone(),
                        position: Some((d.partition, d.offset)),
                    }),
                    Ok(Err((source, _))) => Err(failed(source)),
                    Err(_) => Err(failed(KafkaError::MessageProduction(
                        RDKafkaErrorCode::MessageTimedOut,
                    ))),
                }
            }
            Sink::Stderr => {
                let mut line = payload;
                line.push(b'\n');
                std::io::stderr()
                    .lock()
                    .write_all(&line)
                    .map_err(|source| Error::EventSink {
                        sink: "stderr".to_string(),
                        source,
                    })?;
                Ok(Delivery {
                    topic,
                    position: None,
                })
            }
            Sink::File { path, file } => {
                let mut line = payload;
                line.push(b'\n');
                let mut f = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                f.write_all(&line)
                    .and_then(|()| f.flush())
                    .map_err(|source| Error::EventSink {
                        sink: path.display().to_string(),
                        source,
                    })?;
                Ok(Delivery {
                    topic,
                    position: None,
                })
            }
        }
    }

    /// Publishes the run's result event on the results topic, keyed by job name.
    pub async fn publish_result(&self, event: &ResultEvent) -> Result<Delivery, Error> {
        self.publish(RESULT_EVENT_TYPE, &event.job_name, event)
            .await
    }

    /// Waits for anything still queued (bounded by the delivery timeout).
    pub fn flush(&self) {
        if let Sink::Kafka { producer, .. } = &self.sink
            && let Err(e) = producer.flush(Timeout::After(self.timeout))
        {
            tracing::warn!(error = %e, "kafka flush did not complete");
        }
    }
}
