use std::path::PathBuf;

use crate::config::ConfigError;

/// Everything that can go wrong in the shared harness, one variant per cause.
///
/// Messages are lowercase, without a trailing period, and name the file, field, topic or endpoint
/// at fault so that an operator can act on the log line alone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file (or an environment override) is invalid; every problem is listed.
    #[error("{}", display_config_errors(.0))]
    Config(Vec<ConfigError>),

    /// A file the job needs could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file at fault.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The Kafka producer could not be created from the configured properties.
    #[error("kafka producer for {brokers}: {source}")]
    KafkaClient {
        /// The bootstrap servers we tried.
        brokers: String,
        /// The librdkafka error (boxed: it is large).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },

    /// The broker did not acknowledge an event within the delivery timeout.
    #[error("kafka did not acknowledge {event_type} on topic {topic}: {source}")]
    KafkaDelivery {
        /// The event type being published.
        event_type: String,
        /// The topic it was sent to.
        topic: String,
        /// The librdkafka error (for example `MessageTimedOut`; boxed: it is large).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },

    /// The brokers did not acknowledge an event, and librdkafka said why: they refused our
    /// credentials or certificate, the TLS handshake failed, or none could be reached.
    #[error("kafka did not acknowledge {event_type} on topic {topic}: {fault}")]
    KafkaSink {
        /// The event type being published.
        event_type: String,
        /// The topic it was sent to.
        topic: String,
        /// Why, from the client's error callback.
        #[source]
        fault: crate::kafka::SinkFault,
    },

    /// Not sent: an earlier event of this run was not acknowledged, so the publisher stopped
    /// (a run finishes within one delivery timeout instead of one per remaining event).
    #[error(
        "{event_type} not published on topic {topic}: the audit sink failed earlier in this run ({earlier})"
    )]
    KafkaFailedEarlier {
        /// The event type that was not sent.
        event_type: String,
        /// The topic it would have gone to.
        topic: String,
        /// The first failure of the run.
        earlier: String,
    },

    /// The brokers did not answer the check made before a run acts ([`crate::kafka::Publisher::probe`]).
    #[error("kafka brokers {brokers} are not usable: {fault}")]
    KafkaUnusable {
        /// The bootstrap servers.
        brokers: String,
        /// Why: refused credentials, a failed TLS handshake, unreachable.
        #[source]
        fault: crate::kafka::SinkFault,
    },

    /// Events could not be read back from a topic (the audit trail a job reconciles).
    #[error("cannot read topic {topic}: {message}")]
    KafkaRead {
        /// The topic.
        topic: String,
        /// What went wrong (librdkafka's reason, or the cause the client context recorded).
        message: String,
    },

    /// The local JSONL fallback sink could not be written.
    #[error("cannot write event to {sink}: {source}")]
    EventSink {
        /// Where events were going (`stderr` or a file path).
        sink: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An event could not be serialised to JSON.
    #[error("cannot encode {what} as json: {source}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The Pushgateway rejected or did not answer the metrics push.
    #[error("pushgateway {url}: {message}")]
    Push {
        /// The grouping-key URL pushed to.
        url: String,
        /// What went wrong (status and body, or the transport error).
        message: String,
    },

    /// An email could not be built or sent.
    #[error("smtp {server}: {message}")]
    Smtp {
        /// The SMTP server, `host:port`.
        server: String,
        /// What went wrong.
        message: String,
    },

    /// A webhook (chat or PagerDuty) did not accept a notification.
    #[error("{channel} notification: {message}")]
    Webhook {
        /// `chat` or `pager`.
        channel: &'static str,
        /// What went wrong; never contains the webhook URL or routing key.
        message: String,
    },

    /// The Kubernetes client could not be configured.
    #[error("kubernetes client: {source}")]
    Kube {
        /// The kube-rs error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn display_config_errors(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// An error and its sources on one line, for messages: some libraries' own Display omits the
/// cause (reqwest's says "error sending request" without the TLS verifier's complaint, the AWS
/// SDK's says "an error occurred" without the provider's reason).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
