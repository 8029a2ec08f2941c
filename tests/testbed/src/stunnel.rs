//! Debian's `stunnel4`: a real TLS terminator (OpenSSL) in front of a plaintext service, for
//! brokers that speak only plaintext (tansu). With a client CA it requires and verifies client
//! certificates (mTLS: `requireCert = yes`, `verifyChain = yes`, `CAfile`).
//!
//! It runs in the foreground with its log on stderr (captured in the process log); readiness is
//! its accept port taking connections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{Error, ManagedProcess, Result, locate_on_path};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What stunnel serves.
#[derive(Debug, Clone)]
pub struct StunnelConfig {
    /// The loopback port it accepts TLS on.
    pub accept_port: u16,
    /// Where it forwards the decrypted bytes, `host:port`.
    pub connect: String,
    /// Its certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// With a CA file: clients must present a certificate that chains to it (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// A running stunnel, stopped when dropped.
#[derive(Debug)]
pub struct Stunnel {
    // Declared before `dir` so the process stops before its config is removed.
    process: ManagedProcess,
    address: String,
    dir: tempfile::TempDir,
}

impl Stunnel {
    /// Writes the config and starts `stunnel4` (`$GOV_STUNNEL_BIN`, else `stunnel4` on `PATH`),
    /// waiting until the accept port takes connections.
    pub async fn start(config: &StunnelConfig) -> Result<Stunnel> {
        let program = locate_on_path("stunnel4", "GOV_STUNNEL_BIN")?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-stunnel-")
            .tempdir()
            .map_err(|source| Error::Io {
                service: "stunnel".into(),
                action: "create its directory".into(),
                source,
            })?;
        let address = format!("127.0.0.1:{}", config.accept_port);
        let mut text = format!(
            "foreground = yes\npid =\nsyslog = no\ndebug = notice\n\n[tls]\naccept = {address}\nconnect = {}\ncert = {}\nkey = {}\n",
            config.connect,
            config.cert.display(),
            config.key.display(),
        );
        if let Some(ca) = &config.client_ca {
            text.push_str(&format!(
                "CAfile = {}\nrequireCert = yes\nverifyChain = yes\n",
                ca.display()
            ));
        }
        let path = dir.path().join("stunnel.conf");
        std::fs::write(&path, text).map_err(|source| Error::Io {
            service: "stunnel".into(),
            action: format!("write {}", path.display()),
            source,
        })?;
        let mut process = ManagedProcess::spawn("stunnel", &program, [path.as_os_str()], &[])?;
        // Nothing to flush: a crash-like stop is fine and quick.
        process.set_stop_grace(Duration::ZERO);
        process
            .wait_until("its accept port takes connections", START_TIMEOUT, || {
                let address = address.clone();
                async move { tokio::net::TcpStream::connect(&address).await.map(drop) }
            })
            .await?;
        Ok(Stunnel {
            process,
            address,
            dir,
        })
    }

    /// The `host:port` it accepts TLS on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The underlying process, e.g. for its log.
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }

    /// The directory holding its config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
