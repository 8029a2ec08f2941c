//! The producer's client context: what librdkafka tells us outside the delivery reports.
//!
//! librdkafka reports a refused login, a failed TLS handshake or brokers going down only through
//! the client's error callback and its log (`FAIL` lines); the delivery of a message then just
//! times out. [`Faults`] keeps
//! the last such cause (until an acknowledgement proves the connection works again) so that the
//! publisher can say *why*. The context also hands librdkafka OAUTHBEARER tokens when MSK IAM is
//! configured. Both callbacks run on librdkafka's threads (the producer's polling thread), never
//! on the async runtime, and neither blocks on it.

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::msk_iam::TokenSource;

/// Why the brokers could not be used, from librdkafka's error callback. The reasons are
/// librdkafka's (broker address, the broker's own message, how long it took); they carry no
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkFault {
    /// The brokers refused our SASL credentials or token (or no token could be made).
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// The TLS handshake failed: an untrusted or mismatched broker certificate, or the broker
    /// refused our client certificate (or its absence).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// No broker could be connected to, or each closed the connection.
    #[error("no broker reachable: {0}")]
    Unreachable(String),
}

/// The last causes librdkafka reported, one slot per kind.
#[derive(Debug, Default)]
struct Slots {
    authentication: Option<String>,
    tls: Option<String>,
    transport: Option<String>,
    all_brokers_down: Option<String>,
}

/// A shared record of the brokers' last refusal, written by the error callback.
#[derive(Debug)]
pub(crate) struct Faults {
    slots: Mutex<Slots>,
    /// Added to "the broker closed the connection" when our settings may be why.
    disconnect_hint: Option<&'static str>,
}

impl Faults {
    pub(crate) fn new(disconnect_hint: Option<&'static str>) -> Self {
        Faults {
            slots: Mutex::new(Slots::default()),
            disconnect_hint,
        }
    }

    /// Files one error from librdkafka's error callback.
    pub(crate) fn record(&self, error: &KafkaError, reason: &str) {
        let reason = reason.trim().to_string();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                slots.authentication = Some(reason)
            }
            Some(RDKafkaErrorCode::SSL) => slots.tls = Some(reason),
            // A TLS failure after the handshake (TLS 1.3 sends the refusal of a client
            // certificate then) surfaces as a transport error whose reason names SSL.
            Some(RDKafkaErrorCode::BrokerTransportFailure) if is_tls_reason(&reason) => {
                slots.tls = Some(reason)
            }
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve) => {
                slots.transport = Some(reason)
            }
            Some(RDKafkaErrorCode::AllBrokersDown) => slots.all_brokers_down = Some(reason),
            _ => {}
        }
    }

    /// Files a connection failure librdkafka logged (facility `FAIL`), classified by its text:
    /// librdkafka does not raise every one of them through the error callback.
    pub(crate) fn record_failure_line(&self, line: &str) {
        // "[thrd:ssl://b:1/bootstrap]: ssl://b:1/bootstrap: Disconnected …": the thread name
        // repeats the broker.
        let line = line.trim();
        let reason = match line
            .strip_prefix("[thrd:")
            .and_then(|rest| rest.split_once("]: "))
        {
            Some((_, rest)) => rest.to_string(),
            None => line.to_string(),
        };
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if reason.contains("SASL") && reason.contains("uthentication") {
            slots.authentication = Some(reason);
        } else if is_tls_reason(&reason) {
            slots.tls = Some(reason);
        } else {
            slots.transport = Some(reason);
        }
    }

    /// The most telling cause on record: a refused login, else a TLS failure, else why the
    /// brokers were unreachable.
    pub(crate) fn current(&self) -> Option<SinkFault> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = &slots.authentication {
            return Some(SinkFault::Authentication(r.clone()));
        }
        if let Some(r) = &slots.tls {
            return Some(SinkFault::Tls(r.clone()));
        }
        let reason = slots
            .transport
            .as_ref()
            .or(slots.all_brokers_down.as_ref())?;
        Some(SinkFault::Unreachable(match self.disconnect_hint {
            Some(hint) if reason.contains("Disconnected") => format!("{reason} ({hint})"),
            _ => reason.clone(),
        }))
    }

    /// Forgets every cause: an acknowledgement proves the connection works.
    pub(crate) fn clear(&self) {
        *self.slots.lock().unwrap_or_else(PoisonError::into_inner) = Slots::default();
    }
}

/// A TLS failure rather than a plain disconnect: OpenSSL's handshake errors and alerts ("SSL
/// connection closed by peer" alone is a normal close, e.g. a SASL listener hanging up).
fn is_tls_reason(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    ["handshake", "alert", "certificate", "ssl routines"]
        .iter()
        .any(|marker| reason.contains(marker))
}

/// The context of the publisher's producer.
pub(crate) struct SinkContext {
    faults: Arc<Faults>,
    tokens: Option<TokenSource>,
}

impl SinkContext {
    pub(crate) fn new(faults: Arc<Faults>, tokens: Option<TokenSource>) -> Self {
        SinkContext { faults, tokens }
    }
}

// The audit reader (`read_recent`) is a consumer with the same context: the same token source
// and the same record of why the brokers refused us.
impl rdkafka::consumer::ConsumerContext for SinkContext {}

impl ClientContext for SinkContext {
    // Our tokens (MSK IAM), not librdkafka's unsecured JWT builder. librdkafka asks only when
    // sasl.mechanism is OAUTHBEARER.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // librdkafka reports some refusals only here (a broker closing the connection on a
        // client without SASL is a "FAIL" line and no error callback).
        if fac == "FAIL" {
            self.faults.record_failure_line(log_message);
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{log_message}")
            }
            _ => tracing::debug!(target: "librdkafka", facility = fac, "{log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.faults.record(&error, reason);
        tracing::warn!(target: "librdkafka", %error, reason, "kafka client error");
    }

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.tokens {
            Some(tokens) => Ok(tokens.token()?),
            None => Err("no OAUTHBEARER token provider configured (kafka.sasl.aws_msk_iam)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::Global(code)
    }

    #[test]
    fn a_refused_login_outranks_tls_and_transport_and_an_ack_clears_all() {
        let faults = Faults::new(None);
        assert_eq!(faults.current(), None);
        faults.record(
            &global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(
            faults.current(),
            Some(SinkFault::Unreachable("1/1 brokers are down".into()))
        );
        faults.record(
            &global(RDKafkaErrorCode::BrokerTransportFailure),
            "b:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        );
        assert!(
            matches!(faults.current(), Some(SinkFault::Unreachable(r)) if r.contains("Connection refused"))
        );
        faults.record(
            &global(RDKafkaErrorCode::SSL),
            "b:1/bootstrap: SSL handshake failed: certificate verify failed",
        );
        assert!(matches!(faults.current(), Some(SinkFault::Tls(_))));
        faults.record(
            &global(RDKafkaErrorCode::Authentication),
            "b:1/bootstrap: SASL authentication error: Invalid username or password",
        );
        let fault = faults.current().expect("a fault");
        assert_eq!(
            fault.to_string(),
            "authentication failed: b:1/bootstrap: SASL authentication error: Invalid username or password"
        );
        faults.clear();
        assert_eq!(faults.current(), None);
    }

    #[test]
    fn failure_lines_are_classified_and_lose_their_thread_prefix() {
        let faults = Faults::new(Some("the listener may require SASL: see kafka.sasl"));
        faults.record_failure_line(
            "[thrd:ssl://b:1/bootstrap]: ssl://b:1/bootstrap: Disconnected: SSL connection closed by peer (after 0ms in state UP)",
        );
        assert_eq!(
            faults.current().expect("fault").to_string(),
            "no broker reachable: ssl://b:1/bootstrap: Disconnected: SSL connection closed by peer (after 0ms in state UP) (the listener may require SASL: see kafka.sasl)"
        );
        faults.record_failure_line(
            "ssl://b:1/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
        );
        assert!(matches!(faults.current(), Some(SinkFault::Tls(_))));
        faults.record_failure_line(
            "sasl_ssl://b:1/bootstrap: SASL authentication error: Authentication failed (after 5ms in state AUTH_REQ)",
        );
        assert!(matches!(
            faults.current(),
            Some(SinkFault::Authentication(_))
        ));
    }

    #[test]
    fn a_tls_alert_after_the_handshake_is_a_tls_fault_and_a_disconnect_gets_the_hint() {
        let faults = Faults::new(Some("the listener may require SASL: see kafka.sasl"));
        faults.record(
            &global(RDKafkaErrorCode::BrokerTransportFailure),
            "b:1/bootstrap: SSL transport error: tlsv13 alert certificate required",
        );
        assert!(matches!(faults.current(), Some(SinkFault::Tls(_))));
        let faults = Faults::new(Some("the listener may require SASL: see kafka.sasl"));
        faults.record(
            &global(RDKafkaErrorCode::BrokerTransportFailure),
            "b:1/bootstrap: Disconnected (after 3ms in state UP)",
        );
        assert_eq!(
            faults.current().expect("fault").to_string(),
            "no broker reachable: b:1/bootstrap: Disconnected (after 3ms in state UP) (the listener may require SASL: see kafka.sasl)"
        );
    }
}
