//! HTTPS endpoints: a handshake that records whatever chain the server presents, then our own
//! trust and hostname evaluation against the configured roots.
//!
//! The handshake uses a *recording verifier*: a rustls `ServerCertVerifier` that stores the
//! presented chain and accepts it (it still checks the handshake signatures, so the peer holds
//! the key). Accepting lets us see expired, self-signed and wrong-host chains, which a normal
//! client would refuse before we could read them; the job then judges the chain itself with
//! webpki ([`Trust`]), so "accepted" never means "trusted".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use crate::config::Endpoint;

/// The trust anchors endpoint chains are judged against.
#[derive(Debug, Clone)]
pub struct Trust {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
}

impl Trust {
    /// Mozilla's roots (when `webpki`) plus the given DER root certificates.
    pub fn new(webpki: bool, extra_roots: &[Vec<u8>]) -> Result<Trust, String> {
        let mut anchors: Vec<TrustAnchor<'static>> = Vec::new();
        if webpki {
            anchors.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (i, der) in extra_roots.iter().enumerate() {
            let der = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| format!("extra root #{i} is not a usable trust anchor: {e}"))?;
            anchors.push(anchor.to_owned());
        }
        Ok(Trust {
            anchors: Arc::new(anchors),
        })
    }

    /// Whether `chain` (leaf first) leads to a configured root, judged at `at`. An error names
    /// webpki's reason (`UnknownIssuer`, `BadSignature`, …).
    pub fn verify(&self, chain: &[Vec<u8>], at: Timestamp) -> Result<(), String> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err("the server presented no certificate".into());
        };
        let leaf = CertificateDer::from(leaf.as_slice());
        let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("{e:?}"))?;
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let time = UnixTime::since_unix_epoch(Duration::from_secs(at.as_second().max(0) as u64));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &intermediates,
            time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
    }
}

/// Whether the leaf certificate is valid for `name` (DNS name or IP address).
pub fn valid_for_name(leaf: &[u8], name: &str) -> Result<(), String> {
    let server_name =
        ServerName::try_from(name).map_err(|e| format!("invalid server name {name:?}: {e}"))?;
    let leaf = CertificateDer::from(leaf);
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("{e:?}"))?;
    ee.verify_is_valid_for_subject_name(&server_name)
        .map_err(|e| format!("{e:?}"))
}

/// What one endpoint handshake produced.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The endpoint probed.
    pub endpoint: Endpoint,
    /// The presented chain, leaf first (empty when the handshake failed before it).
    pub chain: Vec<Vec<u8>>,
    /// Why the connection or handshake failed, if it did.
    pub error: Option<String>,
}

#[derive(Debug)]
struct RecordingVerifier {
    seen: Mutex<Vec<Vec<u8>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.to_vec()];
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        if let Ok(mut seen) = self.seen.lock() {
            *seen = chain;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects to one endpoint and records its chain; never fails, the error is in the probe.
pub async fn probe(endpoint: Endpoint, timeout: Duration) -> Probe {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(RecordingVerifier {
        seen: Mutex::new(Vec::new()),
        provider: provider.clone(),
    });
    let outcome = tokio::time::timeout(timeout, handshake(&endpoint, provider, verifier.clone()))
        .await
        .unwrap_or_else(|_| Err(format!("no handshake within {}", humanize(timeout))));
    let chain = verifier.seen.lock().map(|c| c.clone()).unwrap_or_default();
    Probe {
        endpoint,
        chain,
        error: outcome.err(),
    }
}

fn humanize(d: Duration) -> String {
    format!("{:?}", d)
}

async fn handshake(
    endpoint: &Endpoint,
    provider: Arc<CryptoProvider>,
    verifier: Arc<RecordingVerifier>,
) -> Result<(), String> {
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name = ServerName::try_from(endpoint.server_name().to_string())
        .map_err(|e| format!("invalid server name {:?}: {e}", endpoint.server_name()))?;
    let tcp = tokio::net::TcpStream::connect(endpoint.address.as_str())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls handshake: {e}"))?;
    // Closing politely is not our business; the chain is what we came for.
    drop(stream);
    Ok(())
}

/// Probes every endpoint, at most `concurrency` at a time; results in the endpoints' order.
pub async fn probe_all(
    endpoints: &[Endpoint],
    concurrency: usize,
    timeout: Duration,
) -> Vec<Probe> {
    futures::stream::iter(endpoints.iter().cloned().map(|e| probe(e, timeout)))
        .buffered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcerts::{self, serve};
    use common::config::HostPort;

    fn endpoint(addr: std::net::SocketAddr, sni: &str) -> Endpoint {
        Endpoint {
            address: HostPort::parse(&addr.to_string()).expect("addr"),
            sni: Some(sni.to_string()),
        }
    }

    #[tokio::test]
    async fn records_an_expired_self_signed_chain_and_judges_it_separately() {
        let leaf = testcerts::self_signed("localhost", testcerts::days_from_now(-2));
        let addr = serve(vec![leaf.der().to_vec()], leaf.key.serialize_der()).await;
        let p = probe(endpoint(addr, "localhost"), Duration::from_secs(5)).await;
        assert_eq!(p.error, None);
        assert_eq!(p.chain, vec![leaf.der().to_vec()]);
        let trust = Trust::new(true, &[]).expect("trust");
        let err = trust
            .verify(&p.chain, testcerts::now())
            .expect_err("untrusted");
        assert!(
            err.contains("UnknownIssuer") || err.contains("Expired"),
            "{err}"
        );
        assert_eq!(valid_for_name(&p.chain[0], "localhost"), Ok(()));
        assert!(valid_for_name(&p.chain[0], "other.example").is_err());
    }

    #[tokio::test]
    async fn a_chain_with_an_intermediate_is_trusted_by_its_root() {
        let root = testcerts::ca("Probe Root");
        let inter = testcerts::intermediate(&root, "Probe Intermediate");
        let leaf = testcerts::leaf(&inter, "localhost", testcerts::days_from_now(90));
        let chain = vec![leaf.der().to_vec(), inter.cert.der().to_vec()];
        let addr = serve(chain.clone(), leaf.key.serialize_der()).await;
        let p = probe(endpoint(addr, "localhost"), Duration::from_secs(5)).await;
        assert_eq!(p.chain, chain);
        let trust = Trust::new(false, &[root.cert.der().to_vec()]).expect("trust");
        assert_eq!(trust.verify(&p.chain, testcerts::now()), Ok(()));
        let other = Trust::new(false, &[testcerts::ca("Other").cert.der().to_vec()]).expect("t");
        assert!(other.verify(&p.chain, testcerts::now()).is_err());
    }

    #[tokio::test]
    async fn refused_and_silent_endpoints_are_probe_errors_not_panics() {
        // A bound-then-dropped port refuses connections.
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            l.local_addr().expect("addr")
        };
        // A listener that never answers the ClientHello.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        let probes = probe_all(
            &[
                endpoint(closed, "localhost"),
                endpoint(silent_addr, "localhost"),
            ],
            2,
            Duration::from_millis(300),
        )
        .await;
        assert!(
            probes[0]
                .error
                .as_deref()
                .unwrap_or("")
                .starts_with("connect:"),
            "{:?}",
            probes[0]
        );
        assert!(
            probes[1]
                .error
                .as_deref()
                .unwrap_or("")
                .starts_with("no handshake within"),
            "{:?}",
            probes[1]
        );
        assert!(probes.iter().all(|p| p.chain.is_empty()));
        drop(silent);
    }
}
