//! What the job needs to know about one certificate, read from its DER bytes.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// Signature algorithms that use SHA-1 (RSA, ECDSA, DSA).
const SHA1_SIGNATURES: [&str; 4] = [
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
];

/// The facts about one certificate the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Lowercase hex SHA-256 of the DER encoding: the certificate's identity across locations.
    pub fingerprint: String,
    /// Subject distinguished name (RFC 4514 style).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, colon-separated hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// RSA modulus size in bits; `None` for other key types.
    pub rsa_bits: Option<usize>,
    /// Dotted OID of the signature algorithm.
    pub signature_oid: String,
    /// Subject equals issuer and the certificate is a CA: a trust anchor, whose own signature
    /// nobody verifies (so a SHA-1 self-signature is not a finding).
    pub self_signed_ca: bool,
    /// Subject equals issuer.
    pub self_issued: bool,
}

/// Why bytes were not a certificate.
#[derive(Debug, thiserror::Error)]
#[error("not an X.509 certificate: {0}")]
pub struct ParseError(String);

impl CertInfo {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, ParseError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| ParseError(e.to_string()))?;
        let ts = |t: ASN1Time| {
            Timestamp::from_second(t.timestamp()).map_err(|e| ParseError(e.to_string()))
        };
        let rsa_bits = match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => Some(rsa.key_size()),
            _ => None,
        };
        let self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
        Ok(CertInfo {
            fingerprint: fingerprint(der),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before: ts(cert.validity().not_before)?,
            not_after: ts(cert.validity().not_after)?,
            rsa_bits,
            signature_oid: cert.signature_algorithm.algorithm.to_id_string(),
            self_signed_ca: self_issued && cert.is_ca(),
            self_issued,
        })
    }

    /// Whether the signature uses SHA-1.
    pub fn sha1_signature(&self) -> bool {
        SHA1_SIGNATURES.contains(&self.signature_oid.as_str())
    }

    /// A short name for tables and digests: the subject's CN, else the whole subject.
    pub fn short_subject(&self) -> &str {
        self.subject
            .split(", ")
            .find_map(|part| part.strip_prefix("CN="))
            .unwrap_or(&self.subject)
    }
}

/// Lowercase hex SHA-256 of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every certificate in a PEM bundle, in order. Non-certificate PEM blocks (keys) are skipped;
/// an error means the text held no readable certificate block at all, or a broken one.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<Vec<u8>>, _> = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect();
    let certs = certs.map_err(|e| ParseError(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ParseError("no CERTIFICATE block in the PEM text".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcerts;

    #[test]
    fn reads_the_fields_of_a_generated_certificate() {
        let ca = testcerts::ca("Test Root");
        let leaf = testcerts::leaf(&ca, "web.example", testcerts::days_from_now(45));
        let info = CertInfo::from_der(leaf.der()).expect("parse");
        assert_eq!(info.short_subject(), "web.example");
        assert!(info.issuer.contains("Test Root"), "{}", info.issuer);
        assert_eq!(info.not_after, testcerts::days_from_now(45));
        assert_eq!(info.rsa_bits, None, "rcgen makes ECDSA keys");
        assert!(!info.sha1_signature());
        assert!(!info.self_issued);
        assert_eq!(info.fingerprint.len(), 64);
        let root = CertInfo::from_der(ca.cert.der()).expect("parse");
        assert!(root.self_signed_ca);
    }

    #[test]
    fn fixtures_show_a_weak_key_and_a_sha1_signature() {
        let weak = pem_certificates(testcerts::RSA1024_PEM.as_bytes()).expect("pem");
        let info = CertInfo::from_der(&weak[0]).expect("parse");
        assert_eq!(info.rsa_bits, Some(1024));
        let sha1 = pem_certificates(testcerts::SHA1_PEM.as_bytes()).expect("pem");
        let info = CertInfo::from_der(&sha1[0]).expect("parse");
        assert!(info.sha1_signature(), "{}", info.signature_oid);
        assert_eq!(info.rsa_bits, Some(2048));
        assert!(!info.self_signed_ca, "the fixture is a leaf (CA:FALSE)");
    }

    #[test]
    fn pem_bundles_keep_order_and_reject_garbage() {
        let ca = testcerts::ca("Bundle Root");
        let leaf = testcerts::leaf(&ca, "a.example", testcerts::days_from_now(3));
        let bundle = format!("{}{}", leaf.pem(), ca.cert.pem());
        let ders = pem_certificates(bundle.as_bytes()).expect("bundle");
        assert_eq!(ders, vec![leaf.der().to_vec(), ca.cert.der().to_vec()]);
        assert!(pem_certificates(b"hello").is_err());
        assert!(CertInfo::from_der(b"\x30\x03\x02\x01\x01").is_err());
    }
}
