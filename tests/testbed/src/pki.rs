//! Certificates for TLS tests, generated with rcgen and written as PEM files: a CA, a server
//! certificate for the loopback address, a client certificate for mTLS, and the wrong ones —
//! another CA and a server certificate for another name.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM, which OpenSSL (stunnel, librdkafka), the Go TLS stack
//! (the Pushgateway) and rustls all read.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::process::{Error, Result};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// The files of one generated PKI, in a temporary directory removed on drop.
#[derive(Debug)]
pub struct Pki {
    /// The CA every good certificate is signed by (PEM).
    pub ca: PathBuf,
    /// Another CA, which signed nothing we serve: trusting only it must fail.
    pub other_ca: PathBuf,
    /// Server certificate for `127.0.0.1` and `localhost`, signed by [`Pki::ca`].
    pub server: CertFiles,
    /// Server certificate for `kafka.other.example` only, signed by [`Pki::ca`]: trusted, but
    /// the wrong name for a loopback server.
    pub wrong_name_server: CertFiles,
    /// Client certificate (`CN=governance-jobs`), signed by [`Pki::ca`].
    pub client: CertFiles,
    /// Client certificate signed by [`Pki::other_ca`]: an mTLS server must refuse it.
    pub untrusted_client: CertFiles,
    dir: tempfile::TempDir,
}

fn rcgen_error(action: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Unexpected {
        service: "pki".into(),
        action: action.into(),
        detail: e.to_string(),
    }
}

fn ca_params(name: &str) -> Result<CertificateParams> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error("ca params"))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Result<Ca> {
    let key = KeyPair::generate().map_err(rcgen_error("ca key"))?;
    let cert = ca_params(name)?
        .self_signed(&key)
        .map_err(rcgen_error("self-sign the ca"))?;
    Ok(Ca {
        pem: cert.pem(),
        issuer: Issuer::new(ca_params(name)?, key),
    })
}

fn leaf(
    ca: &Ca,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String)> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).map_err(rcgen_error("leaf params"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().map_err(rcgen_error("leaf key"))?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(rcgen_error("sign a leaf"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl Pki {
    /// Generates every certificate and writes the files into a new temporary directory.
    pub fn generate() -> Result<Pki> {
        let dir = tempfile::Builder::new()
            .prefix("testbed-pki-")
            .tempdir()
            .map_err(|source| Error::Io {
                service: "pki".into(),
                action: "create its directory".into(),
                source,
            })?;
        let ca = new_ca("testbed CA")?;
        let other = new_ca("testbed other CA")?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|source| Error::Io {
                service: "pki".into(),
                action: format!("write {}", path.display()),
                source,
            })?;
            Ok(path)
        };
        let pair = |name: &str, (cert, key): (String, String)| -> Result<CertFiles> {
            Ok(CertFiles {
                cert: write(&format!("{name}.pem"), &cert)?,
                key: write(&format!("{name}-key.pem"), &key)?,
            })
        };
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        Ok(Pki {
            ca: write("ca.pem", &ca.pem)?,
            other_ca: write("other-ca.pem", &other.pem)?,
            server: pair(
                "server",
                leaf(
                    &ca,
                    "testbed server",
                    &["127.0.0.1", "localhost"],
                    server.clone(),
                )?,
            )?,
            wrong_name_server: pair(
                "wrong-name-server",
                leaf(&ca, "kafka.other.example", &["kafka.other.example"], server)?,
            )?,
            client: pair("client", leaf(&ca, "governance-jobs", &[], client.clone())?)?,
            untrusted_client: pair(
                "untrusted-client",
                leaf(&other, "governance-jobs", &[], client)?,
            )?,
            dir,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
