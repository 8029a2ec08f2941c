//! Test certificates, shared by the crate's unit tests and the binary-level tests: a root CA,
//! intermediates and leaves expiring a given number of days after [`NOW`], made with rcgen.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The instant tests evaluate at (`--now`).
pub const NOW: &str = "2026-12-01T00:00:00Z";

/// RSA-1024 self-signed leaf, made with the openssl CLI (see tests/fixtures/README.md).
pub const RSA1024_PEM: &str = include_str!("../fixtures/rsa1024.pem");
/// SHA-1-signed RSA-2048 leaf, made with the openssl CLI (see tests/fixtures/README.md).
pub const SHA1_PEM: &str = include_str!("../fixtures/sha1.pem");

/// [`NOW`] as a timestamp.
pub fn now() -> jiff::Timestamp {
    NOW.parse().expect("NOW")
}

/// `days` after [`NOW`] (negative: before).
pub fn days_from_now(days: i64) -> jiff::Timestamp {
    now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .expect("in range")
}

fn odt(t: jiff::Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).expect("in range")
}

/// A CA (root or intermediate) that can sign further certificates.
pub struct Ca {
    /// Its certificate.
    pub cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = odt(days_from_now(-365));
    params.not_after = odt(days_from_now(3650));
    params
}

/// A self-signed root CA valid for ten years around [`NOW`].
pub fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let cert = ca_params(name).self_signed(&key).expect("self-signed");
    Ca {
        cert,
        issuer: Issuer::new(ca_params(name), key),
    }
}

/// An intermediate CA signed by `parent`.
pub fn intermediate(parent: &Ca, name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let cert = ca_params(name)
        .signed_by(&key, &parent.issuer)
        .expect("signed");
    Ca {
        cert,
        issuer: Issuer::new(ca_params(name), key),
    }
}

/// A leaf with its key.
pub struct Leaf {
    /// The certificate.
    pub cert: rcgen::Certificate,
    /// Its private key.
    pub key: KeyPair,
}

impl Leaf {
    /// DER bytes.
    pub fn der(&self) -> &[u8] {
        self.cert.der()
    }
    /// PEM text.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn leaf_params(host: &str, not_after: jiff::Timestamp) -> CertificateParams {
    let mut params = CertificateParams::new(vec![host.to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, host);
    params.not_before = odt(days_from_now(-400));
    params.not_after = odt(not_after);
    params
}

/// A leaf for `host`, signed by `ca`, valid until `not_after`.
pub fn leaf(ca: &Ca, host: &str, not_after: jiff::Timestamp) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let cert = leaf_params(host, not_after)
        .signed_by(&key, &ca.issuer)
        .expect("signed");
    Leaf { cert, key }
}

/// A self-signed leaf for `host`, valid until `not_after`.
pub fn self_signed(host: &str, not_after: jiff::Timestamp) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let cert = leaf_params(host, not_after)
        .self_signed(&key)
        .expect("self-signed");
    Leaf { cert, key }
}

/// Serves `chain` (leaf first) with `key_der` on a free loopback port until the runtime ends: a
/// TLS server that completes the handshake and closes.
pub async fn serve(chain: Vec<Vec<u8>>, key_der: Vec<u8>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_on(listener, chain, key_der));
    addr
}

/// Accepts TLS connections on `listener` with `chain` and `key_der`, forever.
pub async fn serve_on(listener: tokio::net::TcpListener, chain: Vec<Vec<u8>>, key_der: Vec<u8>) {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = chain
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::try_from(key_der).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = acceptor.accept(tcp).await;
        });
    }
}
