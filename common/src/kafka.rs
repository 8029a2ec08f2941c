//! One publisher for every event a job emits.
//!
//! With brokers configured it is an idempotent rdkafka producer with `acks=all`, and every
//! [`Publisher::publish`] waits for the broker's acknowledgement (bounded by the delivery
//! timeout): when it returns `Ok`, the event is durably on the topic. Destructive jobs use that as
//! their write-ahead audit, calling it before every destructive step.
//!
//! The connection is secured as `kafka.security_protocol` says: TLS through librdkafka's OpenSSL
//! (the broker's certificate and host name verified, an optional client certificate for mTLS),
//! SASL PLAIN, SCRAM-SHA-256/512, or OAUTHBEARER with Amazon MSK IAM tokens ([`msk_iam`]).
//! When the brokers refuse us, librdkafka says why only in its error callback; the client context
//! ([`context`]) keeps the last such cause so that a failed publish reads "authentication failed:
//! …" or "TLS handshake failed: …" instead of a bare "message timed out". Secrets (the SASL
//! password, the key passphrase) live only in librdkafka's config, which is never logged or put
//! in an error (rdkafka's `ClientConfig` Debug prints some keys, such as `ssl.key.pem`, in the
//! clear; we pass files by location instead).
//!
//! A publisher made for one run ([`Publisher::for_run`]) stops at the first event the brokers did
//! not acknowledge: every later publish fails at once ("the audit sink failed earlier in this
//! run"), so a run whose broker died finishes within one delivery timeout instead of one per
//! remaining event. A long-lived service keeps trying ([`Publisher::from_config`]).
//!
//! With no brokers, events are written as JSON lines to stderr or a file (the demo's default) and
//! the publisher says so; such a publisher is not [durable](Publisher::is_durable), and jobs that
//! need a durable audit refuse `--execute` with it.

mod context;
pub mod msk_iam;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::Error;
use crate::config::{Fallback, KafkaConfig, SaslMechanism, SecurityProtocol, read_secret_file};
use crate::event::ResultEvent;

pub use context::SinkFault;
use context::{Faults, SinkContext};

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
        producer: FutureProducer<SinkContext>,
        brokers: String,
        security: String,
        faults: Arc<Faults>,
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
    /// Set for one run: after the first unacknowledged event, publish nothing more.
    stop_after_failure: bool,
    /// The first Kafka failure of this run (its message), once there was one.
    failed: Mutex<Option<String>>,
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

/// Builds a [`Publisher`] with options beyond the config: for one run or a service, and the AWS
/// credentials MSK IAM tokens are signed with.
#[derive(Debug)]
pub struct PublisherBuilder<'a> {
    config: &'a KafkaConfig,
    stop_after_failure: bool,
    aws_credentials: Option<SharedCredentialsProvider>,
}

impl PublisherBuilder<'_> {
    /// Stop publishing after the first event the brokers did not acknowledge (what a run
    /// wants: [`Publisher::for_run`]); a service keeps trying (the default).
    pub fn stop_after_failure(mut self, stop: bool) -> Self {
        self.stop_after_failure = stop;
        self
    }

    /// Sign MSK IAM tokens with these credentials instead of the AWS default credentials chain
    /// (the environment, the profile, web identity / IRSA, ECS, IMDS).
    pub fn aws_credentials(mut self, provider: SharedCredentialsProvider) -> Self {
        self.aws_credentials = Some(provider);
        self
    }

    /// Creates the publisher. Creating a Kafka producer does not contact the broker; an
    /// unreachable or refusing broker shows up as a delivery error within the timeout, or in
    /// [`Publisher::probe`].
    pub fn build(self) -> Result<Publisher, Error> {
        let config = self.config;
        let problems = config.validate("kafka config");
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
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
            kafka_sink(config, self.aws_credentials)?
        };
        Ok(Publisher {
            sink,
            results_topic: config.topic.clone(),
            topics: config.topics.clone(),
            timeout,
            stop_after_failure: self.stop_after_failure,
            failed: Mutex::new(None),
        })
    }
}

/// The connection half of a client's config (brokers, security, secrets, the user's
/// properties), shared by the producer and the audit [`read_recent`] consumer; with the
/// description of the security for messages, and the MSK IAM token source when one is needed.
/// Reads the secret files first, so an unreadable one is a config error before anything is sent.
fn client_config(
    config: &KafkaConfig,
    aws_credentials: Option<SharedCredentialsProvider>,
) -> Result<(ClientConfig, String, Option<msk_iam::TokenSource>), Error> {
    let timeout = config.delivery_timeout.0;
    let brokers: Vec<&str> = config.brokers.iter().map(|b| b.as_str()).collect();
    let brokers = brokers.join(",");
    let protocol = config.security_protocol;
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &brokers)
        .set(
            "socket.timeout.ms",
            timeout.as_millis().max(1000).to_string(),
        )
        .set("client.id", "governance-jobs")
        .set("security.protocol", protocol.as_str());
    let mut security = protocol.as_str().to_string();
    if protocol.uses_tls() {
        // librdkafka's default since 2.0, set anyway: the broker's name is always verified.
        cc.set("ssl.endpoint.identification.algorithm", "https");
        let tls = &config.tls;
        for (key, path) in [
            ("ssl.ca.location", &tls.ca_file),
            ("ssl.certificate.location", &tls.cert_file),
            ("ssl.key.location", &tls.key_file),
        ] {
            if let Some(path) = path {
                // librdkafka reads the files itself (so the key never sits in our config); we
                // check they are readable so that a missing Secret is named, before any send.
                std::fs::File::open(path).map_err(|source| Error::ReadFile {
                    path: path.clone(),
                    source,
                })?;
                cc.set(key, path.display().to_string());
            }
        }
        if let Some(file) = &tls.key_password_file {
            cc.set("ssl.key.password", read_secret_file(file)?.expose_secret());
        }
        if tls.cert_file.is_some() {
            security.push_str(" with a client certificate");
        }
    }
    let mut tokens = None;
    if let Some(sasl) = &config.sasl {
        cc.set("sasl.mechanism", sasl.mechanism.as_str());
        security.push_str(&format!(", SASL {}", sasl.mechanism.as_str()));
        match (sasl.mechanism, &sasl.aws_msk_iam) {
            (SaslMechanism::OauthBearer, Some(iam)) => {
                security.push_str(" (Amazon MSK IAM)");
                tokens = Some(msk_iam::TokenSource::start(
                    &iam.region,
                    aws_credentials,
                    timeout,
                ));
            }
            _ => {
                let password: SecretString = match (&sasl.password, &sasl.password_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(file)) => read_secret_file(file)?,
                    // validate() refuses this; kept as an error rather than a panic.
                    (None, None) => {
                        return Err(Error::Config(vec![crate::config::ConfigError::field(
                            "kafka config",
                            "kafka.sasl.password_file",
                            "no password",
                        )]));
                    }
                };
                cc.set("sasl.username", sasl.username.clone().unwrap_or_default());
                cc.set("sasl.password", password.expose_secret());
            }
        }
    }
    for (k, v) in &config.properties {
        cc.set(k, v);
    }
    // Connection failures are logged at info; the context keeps them (and logs them at debug).
    cc.set_log_level(RDKafkaLogLevel::Info);
    Ok((cc, security, tokens))
}

/// The producer for `config` (which has brokers).
fn kafka_sink(
    config: &KafkaConfig,
    aws_credentials: Option<SharedCredentialsProvider>,
) -> Result<Sink, Error> {
    let timeout = config.delivery_timeout.0;
    let brokers = config
        .brokers
        .iter()
        .map(|b| b.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let (mut cc, security, tokens) = client_config(config, aws_credentials)?;
    cc.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .set("linger.ms", "5");
    let faults = Arc::new(Faults::new(disconnect_hint(config)));
    let context = SinkContext::new(faults.clone(), tokens);
    // The error names the brokers and librdkafka's reason, never `cc` (it holds the password).
    let producer: FutureProducer<SinkContext> =
        cc.create_with_context(context)
            .map_err(|source| Error::KafkaClient {
                brokers: brokers.clone(),
                source: Box::new(source),
            })?;
    Ok(Sink::Kafka {
        producer,
        brokers,
        security,
        faults,
    })
}

/// Every message of `topic` written at or after `since` (by the broker's timestamps), read
/// without a consumer group (nothing is committed), each partition to its end as of the call;
/// the payloads, in partition and offset order. For a job that reconciles its own audit trail.
/// Bounded by `timeout` for the whole read: what was not read by then is an error, never a
/// silently shorter list.
pub async fn read_recent(
    config: &KafkaConfig,
    topic: &str,
    since: jiff::Timestamp,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, Error> {
    let config = config.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_recent_blocking(&config, &topic, since, timeout))
        .await
        .map_err(|e| Error::KafkaRead {
            topic: String::new(),
            message: format!("the reader task failed: {e}"),
        })?
}

fn read_recent_blocking(
    config: &KafkaConfig,
    topic: &str,
    since: jiff::Timestamp,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, Error> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let fail = |message: String| Error::KafkaRead {
        topic: topic.to_string(),
        message,
    };
    let started = std::time::Instant::now();
    let left = || timeout.saturating_sub(started.elapsed());
    let (mut cc, _, tokens) = client_config(config, None)?;
    cc.set("enable.auto.commit", "false")
        .set("group.id", "governance-jobs-audit-reader")
        .set("enable.partition.eof", "false");
    let faults = Arc::new(Faults::new(disconnect_hint(config)));
    let consumer: BaseConsumer<SinkContext> = cc
        .create_with_context(SinkContext::new(faults.clone(), tokens))
        .map_err(|e| fail(format!("cannot create a reader: {e}")))?;
    let why = |e: KafkaError| match faults.current() {
        Some(fault) => format!("{fault} ({e})"),
        None => e.to_string(),
    };
    let metadata = consumer
        .fetch_metadata(Some(topic), left())
        .map_err(|e| fail(why(e)))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for &p in &partitions {
        wanted
            .add_partition_offset(topic, p, Offset::Offset(since.as_millisecond()))
            .map_err(|e| fail(e.to_string()))?;
    }
    let start = consumer
        .offsets_for_times(wanted, left())
        .map_err(|e| fail(why(e)))?;
    let mut ends = std::collections::HashMap::new();
    let mut assign = TopicPartitionList::new();
    for e in start.elements() {
        let (_, high) = consumer
            .fetch_watermarks(topic, e.partition(), left())
            .map_err(|e| fail(why(e)))?;
        // `End`: nothing written since then in this partition.
        let first = match e.offset() {
            Offset::Offset(o) => o,
            _ => high,
        };
        if first < high {
            ends.insert(e.partition(), high);
            assign
                .add_partition_offset(topic, e.partition(), Offset::Offset(first))
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    let mut out: Vec<(i32, i64, Vec<u8>)> = Vec::new();
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&assign).map_err(|e| fail(why(e)))?;
    while !ends.is_empty() {
        if left().is_zero() {
            return Err(fail(format!(
                "not read to the end within {timeout:?} ({} partitions left)",
                ends.len()
            )));
        }
        match consumer.poll(left().min(Duration::from_millis(500))) {
            Some(Ok(m)) => {
                if let Some(payload) = m.payload() {
                    out.push((m.partition(), m.offset(), payload.to_vec()));
                }
                if ends
                    .get(&m.partition())
                    .is_some_and(|end| m.offset() + 1 >= *end)
                {
                    ends.remove(&m.partition());
                }
            }
            Some(Err(e)) => return Err(fail(why(e))),
            None => {}
        }
    }
    out.sort_by_key(|(p, o, _)| (*p, *o));
    Ok(out.into_iter().map(|(_, _, payload)| payload).collect())
}

/// What to suggest when the brokers close the connection on us: most often a listener that
/// wants more security than we speak.
fn disconnect_hint(config: &KafkaConfig) -> Option<&'static str> {
    match config.security_protocol {
        SecurityProtocol::Plaintext => Some(
            "the listener may require TLS or SASL: see kafka.security_protocol, kafka.tls, kafka.sasl",
        ),
        SecurityProtocol::Ssl => Some("the listener may require SASL: see kafka.sasl"),
        SecurityProtocol::SaslPlaintext => Some("the listener may require TLS: use SASL_SSL"),
        SecurityProtocol::SaslSsl => None,
    }
}

impl Publisher {
    /// Builds the publisher the config asks for, for a long-lived service: a failed publish
    /// does not stop later ones. Runs use [`Publisher::for_run`].
    pub fn from_config(config: &KafkaConfig) -> Result<Self, Error> {
        Publisher::builder(config).build()
    }

    /// Builds the publisher of one run: after the first event the brokers did not acknowledge,
    /// every later publish fails at once, so the run ends within one delivery timeout.
    pub fn for_run(config: &KafkaConfig) -> Result<Self, Error> {
        Publisher::builder(config).stop_after_failure(true).build()
    }

    /// A builder, for options beyond the config.
    pub fn builder(config: &KafkaConfig) -> PublisherBuilder<'_> {
        PublisherBuilder {
            config,
            stop_after_failure: false,
            aws_credentials: None,
        }
    }

    /// True when a successful publish means a broker acknowledged the event (`acks=all`).
    pub fn is_durable(&self) -> bool {
        matches!(self.sink, Sink::Kafka { .. })
    }

    /// Where events go, for logs: `kafka brokers … (SASL_SSL, SASL SCRAM-SHA-512)`,
    /// `stderr (no brokers configured)`, …. Never a credential.
    pub fn describe(&self) -> String {
        match &self.sink {
            Sink::Kafka {
                brokers, security, ..
            } => format!("kafka brokers {brokers} ({security})"),
            Sink::Stderr => "stderr as json lines (no kafka brokers configured)".to_string(),
            Sink::File { path, .. } => format!(
                "{} as json lines (no kafka brokers configured)",
                path.display()
            ),
        }
    }

    /// Checks, before a run acts, that the brokers answer us: a metadata request, which needs a
    /// completed TLS handshake and SASL authentication. Bounded by the delivery timeout. A
    /// fallback sink has nothing to check.
    pub async fn probe(&self) -> Result<(), Error> {
        let Sink::Kafka {
            producer,
            brokers,
            faults,
            ..
        } = &self.sink
        else {
            return Ok(());
        };
        let client = producer.clone();
        let timeout = self.timeout;
        // A blocking librdkafka call: off the async runtime.
        let result =
            tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, timeout))
                .await;
        let unusable = |fault| Error::KafkaUnusable {
            brokers: brokers.clone(),
            fault,
        };
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unusable(
                faults
                    .current()
                    .unwrap_or_else(|| SinkFault::Unreachable(e.to_string())),
            )),
            Err(join) => Err(unusable(SinkFault::Unreachable(format!(
                "metadata request did not complete: {join}"
            )))),
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

    /// The first failure of this run, if the publisher stops after one and there was one.
    pub fn failed_earlier(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
            Sink::Kafka {
                producer, faults, ..
            } => {
                if let Some(earlier) = self.failed_earlier() {
                    return Err(Error::KafkaFailedEarlier {
                        event_type: event_type.to_string(),
                        topic,
                        earlier,
                    });
                }
                let result = self
                    .send(producer, faults, event_type, &topic, key, &payload)
                    .await;
                if let Err(e) = &result
                    && self.stop_after_failure
                {
                    let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
                    failed.get_or_insert_with(|| e.to_string());
                }
                result
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
                let mut f = file.lock().unwrap_or_else(PoisonError::into_inner);
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

    async fn send(
        &self,
        producer: &FutureProducer<SinkContext>,
        faults: &Faults,
        event_type: &str,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<Delivery, Error> {
        let headers = OwnedHeaders::new().insert(Header {
            key: "event_type",
            value: Some(event_type),
        });
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        // librdkafka's own timeouts (queue, message.timeout.ms) do not bound the wait once the
        // broker is gone and the idempotent producer is re-acquiring its id, so the whole call
        // gets a hard deadline: an unacknowledged event is an error on time. A message abandoned
        // this way may still be delivered later; for the audit that is an intent without an
        // outcome, which readers treat as "not done".
        let send = producer.send(record, Timeout::After(self.timeout));
        let source = match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(d)) => {
                // An acknowledgement proves the connection works: older causes are stale.
                faults.clear();
                return Ok(Delivery {
                    topic: topic.to_string(),
                    position: Some((d.partition, d.offset)),
                });
            }
            Ok(Err((source, _))) => source,
            Err(_) => KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        };
        // Why the brokers did not take it, if librdkafka told us (refused credentials, a
        // certificate, no broker up); else librdkafka's own error.
        Err(match faults.current() {
            Some(fault) => Error::KafkaSink {
                event_type: event_type.to_string(),
                topic: topic.to_string(),
                fault,
            },
            None => Error::KafkaDelivery {
                event_type: event_type.to_string(),
                topic: topic.to_string(),
                source: Box::new(source),
            },
        })
    }

    /// Publishes the run's result event on the results topic, keyed by job name.
    pub async fn publish_result(&self, event: &ResultEvent) -> Result<Delivery, Error> {
        self.publish(RESULT_EVENT_TYPE, &event.job_name, event)
            .await
    }

    /// Waits for anything still queued (bounded by the delivery timeout). After a failure that
    /// stopped the publisher there is no point waiting: it says so and returns at once.
    pub fn flush(&self) {
        let Sink::Kafka { producer, .. } = &self.sink else {
            return;
        };
        if let Some(earlier) = self.failed_earlier() {
            tracing::warn!(%earlier, "kafka not flushed: the audit sink failed earlier in this run");
            return;
        }
        if let Err(e) = producer.flush(Timeout::After(self.timeout)) {
            tracing::warn!(error = %e, "kafka flush did not complete");
        }
    }
}
