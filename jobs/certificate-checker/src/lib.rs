//! The certificate checker job: scan Kubernetes TLS Secrets, HTTPS endpoints and Vault PKI for
//! certificates, and report expiry and weaknesses through the shared harness.
//!
//! Codemap: [`config`] (the `job:` section), [`sources`] (Secrets, Vault), [`tls`] (endpoint
//! handshakes with a recording verifier, trust and hostname checks), [`cert`] (DER → facts),
//! [`rules`] (facts → findings), [`job`] (the `Job` impl, digest, table, metrics).

pub mod cert;
pub mod config;
pub mod job;
pub mod rules;
pub mod sources;
pub mod tls;

pub use job::CertificateChecker;

#[cfg(test)]
#[path = "../tests/support/certs.rs"]
mod testcerts;
