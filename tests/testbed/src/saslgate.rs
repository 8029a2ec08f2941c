//! A SASL gate of our own in front of a plaintext Kafka broker (tansu 0.6 has no working SASL):
//! a TCP proxy that speaks just enough of the Kafka protocol to authenticate a client the way a
//! SASL listener does, then splices bytes to the broker.
//!
//! Before authentication it answers, per connection:
//! - `ApiVersions`: forwarded to the broker, the answer amended to advertise `SaslHandshake`
//!   v0–1 and `SaslAuthenticate` v0–2 (what librdkafka needs to see to start SASL);
//! - `SaslHandshake` v0/v1: the mechanism must be enabled, else `UNSUPPORTED_SASL_MECHANISM`
//!   with the enabled list, and the connection is closed;
//! - `SaslAuthenticate` v0–v2 (after a v1 handshake), or raw size-prefixed SASL tokens (after a
//!   v0 handshake, as Kafka did before KIP-152): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with real
//!   server-side SCRAM, OAUTHBEARER with a fixed token or Amazon MSK IAM tokens whose signature
//!   it recomputes ([`mechanism`]). A failure answers `SASL_AUTHENTICATION_FAILED` with Kafka's
//!   wording and closes the connection;
//! - anything else (Metadata, Produce, …) is refused by closing the connection, as a Kafka
//!   broker does with a request it gets "during SASL handshake".
//!
//! Once authenticated, the connection is a plain byte splice to the broker. Put it behind
//! stunnel for `SASL_SSL`, or expose it directly for `SASL_PLAINTEXT`. It runs on a thread and
//! runtime of its own, so a test that blocks its own runtime cannot stall it. What it decided is
//! logged in [`Gate::events`] for tests to assert on.

pub mod mechanism;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use mechanism::{Exchange, Step};
pub use mechanism::{Mechanism, TokenCheck};
use wire::{Reader, Writer, code};

use crate::process::{Error, Result};

/// What the gate accepts.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    /// The mechanisms it enables, in the order it lists them.
    pub mechanisms: BTreeSet<Mechanism>,
    /// Users and passwords for PLAIN and SCRAM.
    pub users: BTreeMap<String, String>,
    /// How OAUTHBEARER tokens are checked.
    pub tokens: Option<TokenCheck>,
}

/// One decision of the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    /// A client authenticated.
    Authenticated {
        /// The mechanism.
        mechanism: String,
        /// The user, the access key id (MSK IAM), or `token`.
        principal: String,
    },
    /// A client was refused and disconnected.
    Refused {
        /// Why, e.g. "Metadata before authentication" or the failure sent to the client.
        reason: String,
    },
}

/// A running gate, stopped when dropped.
#[derive(Debug)]
pub struct Gate {
    address: String,
    events: Arc<Mutex<Vec<GateEvent>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gate {
    /// Listens on `127.0.0.1:port` (0: any free port) and gates clients to `upstream`
    /// (`host:port` of the plaintext broker).
    pub async fn start(port: u16, upstream: &str, config: GateConfig) -> Result<Gate> {
        let io_error = |action: &str| {
            let action = action.to_string();
            move |source| Error::Io {
                service: "sasl gate".into(),
                action,
                source,
            }
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(io_error(&format!("bind 127.0.0.1:{port}")))?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("make the listener non-blocking"))?;
        let address = listener
            .local_addr()
            .map_err(io_error("read the listener's address"))?
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io_error("start its runtime"))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            config,
            events: events.clone(),
        });
        let thread = std::thread::Builder::new()
            .name("sasl-gate".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            shared.log(GateEvent::Refused {
                                reason: format!("gate cannot listen: {e}"),
                            });
                            return;
                        }
                    };
                    accept(listener, shared, stopped).await;
                });
                // Dropping the runtime here cancels every connection still open.
            })
            .map_err(io_error("start its thread"))?;
        Ok(Gate {
            address,
            events,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The `host:port` it listens on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Every decision so far, in order.
    pub fn events(&self) -> Vec<GateEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    upstream: String,
    config: GateConfig,
    events: Arc<Mutex<Vec<GateEvent>>>,
}

impl Shared {
    fn log(&self, event: GateEvent) {
        tracing::debug!(?event, "sasl gate");
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    fn refuse(&self, reason: impl Into<String>) {
        self.log(GateEvent::Refused {
            reason: reason.into(),
        });
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let shared = shared.clone();
                    tokio::spawn(async move { serve(client, &shared).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sasl gate: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Where a connection's authentication stands.
enum Auth {
    /// No handshake yet.
    Start,
    /// Handshake done: SaslAuthenticate requests carry the exchange.
    Framed(Mechanism, Exchange),
    /// Handshake v0 done: raw SASL tokens follow.
    Raw(Mechanism, Exchange),
}

async fn serve(mut client: TcpStream, shared: &Shared) {
    let mut upstream: Option<TcpStream> = None;
    let mut auth = Auth::Start;
    loop {
        let frame = match wire::read_frame(&mut client, wire::MAX_FRAME_BEFORE_AUTH).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                shared.refuse(format!("unreadable frame before authentication: {e}"));
                return;
            }
        };
        if let Auth::Raw(mechanism, exchange) = &mut auth {
            // After a v0 handshake the frame is a bare SASL token, and so is our answer; a
            // failure just closes the connection (there is no error field).
            let mechanism = *mechanism;
            match exchange.step(
                &frame,
                &shared.config.users,
                shared.config.tokens.as_ref(),
                SystemTime::now(),
            ) {
                Step::Continue(out) => {
                    if wire::write_frame(&mut client, &out).await.is_err() {
                        return;
                    }
                }
                Step::Done {
                    final_message,
                    principal,
                } => {
                    if wire::write_frame(&mut client, &final_message)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    shared.log(GateEvent::Authenticated {
                        mechanism: mechanism.as_str().into(),
                        principal,
                    });
                    break;
                }
                Step::Fail(reason) => {
                    shared.refuse(reason);
                    close(client).await;
                    return;
                }
            }
            continue;
        }
        let (header, body) = match wire::parse_request(&frame) {
            Ok(parsed) => parsed,
            Err(e) => {
                shared.refuse(format!("unparsable request before authentication: {e}"));
                return;
            }
        };
        let outcome = match header.api_key {
            wire::API_VERSIONS => {
                api_versions(&mut client, &mut upstream, &frame, &header, body, shared).await
            }
            wire::SASL_HANDSHAKE => handshake(&mut client, &mut auth, &header, body, shared).await,
            wire::SASL_AUTHENTICATE => {
                authenticate(&mut client, &mut auth, &header, body, shared).await
            }
            other => {
                shared.refuse(format!("{} before authentication", wire::api_name(other)));
                Outcome::Close
            }
        };
        match outcome {
            Outcome::Continue => {}
            Outcome::Authenticated => break,
            Outcome::Close => {
                close(client).await;
                return;
            }
        }
    }
    let mut upstream = match upstream {
        Some(u) => u,
        None => match TcpStream::connect(&shared.upstream).await {
            Ok(u) => u,
            Err(e) => {
                shared.refuse(format!("broker {} unreachable: {e}", shared.upstream));
                return;
            }
        },
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

enum Outcome {
    Continue,
    Authenticated,
    Close,
}

/// Sends FIN and waits briefly for the client to close, so that our last answer is read
/// rather than discarded by a reset.
async fn close(mut client: TcpStream) {
    let _ = client.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        loop {
            match tokio::io::AsyncReadExt::read(&mut client, &mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

async fn answer(client: &mut TcpStream, correlation_id: i32, flexible: bool, body: &[u8]) -> bool {
    let frame = wire::response(correlation_id, flexible, body);
    wire::write_frame(client, &frame).await.is_ok()
}

async fn api_versions(
    client: &mut TcpStream,
    upstream: &mut Option<TcpStream>,
    frame: &[u8],
    header: &wire::RequestHeader,
    _body: &[u8],
    shared: &Shared,
) -> Outcome {
    if upstream.is_none() {
        match TcpStream::connect(&shared.upstream).await {
            Ok(u) => *upstream = Some(u),
            Err(e) => {
                shared.refuse(format!("broker {} unreachable: {e}", shared.upstream));
                return Outcome::Close;
            }
        }
    }
    let Some(broker) = upstream.as_mut() else {
        return Outcome::Close;
    };
    if wire::write_frame(broker, frame).await.is_err() {
        shared.refuse("broker closed the connection during ApiVersions");
        return Outcome::Close;
    }
    let response = match wire::read_frame(broker, usize::MAX >> 1).await {
        Ok(Some(r)) if r.len() >= 4 => r,
        _ => {
            shared.refuse("broker did not answer ApiVersions");
            return Outcome::Close;
        }
    };
    // ApiVersions responses always have header v0 (just the correlation id).
    let (correlation, body) = response.split_at(4);
    match wire::amend_api_versions(header.api_version, body) {
        Ok(amended) => {
            let mut out = correlation.to_vec();
            out.extend_from_slice(&amended);
            if wire::write_frame(client, &out).await.is_err() {
                return Outcome::Close;
            }
            Outcome::Continue
        }
        Err(e) => {
            shared.refuse(format!(
                "unparsable ApiVersions answer from the broker: {e}"
            ));
            Outcome::Close
        }
    }
}

async fn handshake(
    client: &mut TcpStream,
    auth: &mut Auth,
    header: &wire::RequestHeader,
    body: &[u8],
    shared: &Shared,
) -> Outcome {
    let requested = match Reader::new(body).string() {
        Ok(m) => m,
        Err(e) => {
            shared.refuse(format!("unparsable SaslHandshake: {e}"));
            return Outcome::Close;
        }
    };
    let enabled = &shared.config.mechanisms;
    let mechanism = Mechanism::parse(&requested).filter(|m| enabled.contains(m));
    let mut w = Writer::default();
    w.i16(if mechanism.is_some() {
        0
    } else {
        code::UNSUPPORTED_SASL_MECHANISM
    });
    w.i32(i32::try_from(enabled.len()).unwrap_or(i32::MAX));
    for m in enabled {
        w.string(m.as_str());
    }
    if !answer(client, header.correlation_id, false, &w.0).await {
        return Outcome::Close;
    }
    match mechanism {
        Some(m) => {
            *auth = if header.api_version == 0 {
                Auth::Raw(m, Exchange::new(m))
            } else {
                Auth::Framed(m, Exchange::new(m))
            };
            Outcome::Continue
        }
        None => {
            shared.refuse(format!("unsupported SASL mechanism {requested}"));
            Outcome::Close
        }
    }
}

async fn authenticate(
    client: &mut TcpStream,
    auth: &mut Auth,
    header: &wire::RequestHeader,
    body: &[u8],
    shared: &Shared,
) -> Outcome {
    let version = header.api_version;
    let flexible = wire::is_flexible(wire::SASL_AUTHENTICATE, version);
    let respond = |error: i16, message: Option<&str>, bytes: &[u8]| {
        let mut w = Writer::default();
        w.i16(error);
        if flexible {
            w.compact_nullable_string(message);
            w.compact_bytes(bytes);
        } else {
            w.nullable_string(message);
            w.bytes(bytes);
        }
        if version >= 1 {
            w.i64(0); // session_lifetime_ms: no re-authentication
        }
        if flexible {
            w.uvarint(0);
        }
        w.0
    };
    let Auth::Framed(mechanism, exchange) = auth else {
        let body = respond(
            code::ILLEGAL_SASL_STATE,
            Some("SaslAuthenticate before SaslHandshake"),
            &[],
        );
        answer(client, header.correlation_id, flexible, &body).await;
        shared.refuse("SaslAuthenticate before SaslHandshake");
        return Outcome::Close;
    };
    let mut r = Reader::new(body);
    let input = if flexible {
        r.compact_bytes()
    } else {
        r.bytes()
    };
    let input = match input {
        Ok(i) => i,
        Err(e) => {
            shared.refuse(format!("unparsable SaslAuthenticate: {e}"));
            return Outcome::Close;
        }
    };
    let mechanism = *mechanism;
    match exchange.step(
        &input,
        &shared.config.users,
        shared.config.tokens.as_ref(),
        SystemTime::now(),
    ) {
        Step::Continue(out) => {
            if answer(
                client,
                header.correlation_id,
                flexible,
                &respond(0, None, &out),
            )
            .await
            {
                Outcome::Continue
            } else {
                Outcome::Close
            }
        }
        Step::Done {
            final_message,
            principal,
        } => {
            if !answer(
                client,
                header.correlation_id,
                flexible,
                &respond(0, None, &final_message),
            )
            .await
            {
                return Outcome::Close;
            }
            shared.log(GateEvent::Authenticated {
                mechanism: mechanism.as_str().into(),
                principal,
            });
            Outcome::Authenticated
        }
        Step::Fail(reason) => {
            let body = respond(code::SASL_AUTHENTICATION_FAILED, Some(&reason), &[]);
            answer(client, header.correlation_id, flexible, &body).await;
            shared.refuse(reason);
            Outcome::Close
        }
    }
}
