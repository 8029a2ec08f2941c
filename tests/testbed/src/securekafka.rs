//! A real broker that refuses plaintext: tansu behind stunnel (TLS, mTLS) and/or our SASL gate.
//!
//! ```text
//! SSL:            client ──TLS──▶ stunnel ──────────────▶ tansu
//! SASL_SSL:       client ──TLS──▶ stunnel ──▶ sasl gate ──▶ tansu
//! SASL_PLAINTEXT: client ───────────────────▶ sasl gate ──▶ tansu
//! ```
//!
//! tansu advertises the outermost port, so clients stay behind the front after bootstrap (with
//! its own port they would leave TLS). Topics are created and read back through the front too,
//! by an admin client ([`SecureKafka::client_props`]): trusting the CA, with the client
//! certificate for mTLS, and for SASL as `testbed-admin` over SCRAM-SHA-512, a user and
//! mechanism the gate always accepts in addition to what the test enables.

use std::path::PathBuf;

use crate::kafka::{Record, Tansu, consume_all_with, create_topic};
use crate::pki::{CertFiles, Pki};
use crate::process::{Result, free_port};
use crate::saslgate::{Gate, GateConfig, GateEvent, Mechanism};
use crate::stunnel::{Stunnel, StunnelConfig};

/// The admin user of the gate (SCRAM-SHA-512).
pub const ADMIN_USER: &str = "testbed-admin";

/// The TLS side of the front.
#[derive(Debug, Clone)]
pub struct TlsFront {
    /// What stunnel presents.
    pub server: CertFiles,
    /// The CA the admin client trusts (the one that signed `server`).
    pub ca: PathBuf,
    /// mTLS: the CA client certificates must chain to, and the admin client's certificate.
    pub mutual: Option<(PathBuf, CertFiles)>,
    /// Let the admin client skip the host name check (for a front serving a certificate for
    /// another name, to test that *our* client refuses it).
    pub admin_skips_name_check: bool,
}

impl TlsFront {
    /// TLS with the PKI's loopback server certificate.
    pub fn new(pki: &Pki) -> Self {
        TlsFront {
            server: pki.server.clone(),
            ca: pki.ca.clone(),
            mutual: None,
            admin_skips_name_check: false,
        }
    }

    /// Requiring client certificates signed by the PKI's CA.
    pub fn mutual(mut self, pki: &Pki) -> Self {
        self.mutual = Some((pki.ca.clone(), pki.client.clone()));
        self
    }

    /// Serving `server` instead (e.g. [`Pki::wrong_name_server`]).
    pub fn serving(mut self, server: &CertFiles) -> Self {
        self.server = server.clone();
        self.admin_skips_name_check = true;
        self
    }
}

/// A tansu broker behind a secured front, all stopped when dropped.
#[derive(Debug)]
pub struct SecureKafka {
    // Fronts first: they stop before the broker behind them.
    stunnel: Option<Stunnel>,
    gate: Option<Gate>,
    tansu: Tansu,
    bootstrap: String,
    admin: Vec<(String, String)>,
}

fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl SecureKafka {
    /// Starts tansu behind `tls` (stunnel) and/or `sasl` (the gate); at least one of them.
    pub async fn start(tls: Option<TlsFront>, sasl: Option<GateConfig>) -> Result<SecureKafka> {
        let outer_port = free_port()?;
        let tansu = Tansu::start_advertising(Some(outer_port)).await?;
        let admin_password = format!("admin-{}", uuid::Uuid::new_v4());
        let gate = match sasl {
            Some(mut config) => {
                config
                    .users
                    .insert(ADMIN_USER.to_string(), admin_password.clone());
                config.mechanisms.insert(Mechanism::ScramSha512);
                // Behind stunnel the gate listens anywhere; alone it is the outer port.
                let port = if tls.is_some() { 0 } else { outer_port };
                Some(Gate::start(port, &tansu.bootstrap(), config).await?)
            }
            None => None,
        };
        let inner = gate
            .as_ref()
            .map_or_else(|| tansu.bootstrap(), |g| g.address().to_string());
        let stunnel = match &tls {
            Some(front) => Some(
                Stunnel::start(&StunnelConfig {
                    accept_port: outer_port,
                    connect: inner,
                    cert: front.server.cert.clone(),
                    key: front.server.key.clone(),
                    client_ca: front.mutual.as_ref().map(|(ca, _)| ca.clone()),
                })
                .await?,
            ),
            None => None,
        };
        let protocol = match (&tls, &gate) {
            (Some(_), Some(_)) => "SASL_SSL",
            (Some(_), None) => "SSL",
            (None, Some(_)) => "SASL_PLAINTEXT",
            (None, None) => "PLAINTEXT",
        };
        let mut admin = props(&[("security.protocol", protocol)]);
        if let Some(front) = &tls {
            admin.extend(props(&[(
                "ssl.ca.location",
                &front.ca.display().to_string(),
            )]));
            if front.admin_skips_name_check {
                admin.extend(props(&[("ssl.endpoint.identification.algorithm", "none")]));
            }
            if let Some((_, cert)) = &front.mutual {
                admin.extend(props(&[
                    ("ssl.certificate.location", &cert.cert.display().to_string()),
                    ("ssl.key.location", &cert.key.display().to_string()),
                ]));
            }
        }
        if gate.is_some() {
            admin.extend(props(&[
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", ADMIN_USER),
                ("sasl.password", &admin_password),
            ]));
        }
        Ok(SecureKafka {
            stunnel,
            gate,
            tansu,
            bootstrap: format!("127.0.0.1:{outer_port}"),
            admin,
        })
    }

    /// The `bootstrap.servers` value of the front, e.g. `127.0.0.1:40123`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// librdkafka properties of a client the front accepts (the admin's).
    pub fn client_props(&self) -> Vec<(String, String)> {
        self.admin.clone()
    }

    /// Creates a topic through the front.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic(&self.bootstrap, &self.admin, name, partitions).await
    }

    /// Reads a topic back through the front ([`crate::kafka::consume_all`]).
    pub async fn consume_all(
        &self,
        topic: &str,
        expected_count: usize,
        timeout: std::time::Duration,
    ) -> Result<Vec<Record>> {
        consume_all_with(&self.bootstrap, &self.admin, topic, expected_count, timeout).await
    }

    /// The gate's decisions (empty without SASL), the admin client's included.
    pub fn gate_events(&self) -> Vec<GateEvent> {
        self.gate.as_ref().map(Gate::events).unwrap_or_default()
    }

    /// The gate's decisions about clients other than the admin.
    pub fn client_events(&self) -> Vec<GateEvent> {
        self.gate_events()
            .into_iter()
            .filter(|e| {
                !matches!(e, GateEvent::Authenticated { principal, .. } if principal == ADMIN_USER)
            })
            .collect()
    }

    /// The broker behind the front, e.g. to stop it.
    pub fn broker(&mut self) -> &mut Tansu {
        &mut self.tansu
    }

    /// stunnel, when the front has TLS (for its log).
    pub fn stunnel(&self) -> Option<&Stunnel> {
        self.stunnel.as_ref()
    }
}
