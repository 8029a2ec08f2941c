//! The `certificate-checker` binary as an operator runs it, against real local services: TLS
//! endpoints (tokio-rustls on loopback), the fake Kubernetes API, OpenBao's PKI engine (and a
//! Vault-shaped stand-in for the one case OpenBao cannot produce),
//! tansu (Kafka), the Pushgateway and an SMTP sink.

#[path = "../support/certs.rs"]
mod certs;
mod run;
mod sinks_down;
mod vault;

use std::path::Path;
use std::process::Output;

/// Runs the binary in `cwd` with `args` and extra environment; no inherited GOV_* settings.
pub async fn run(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_certificate-checker"));
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GOV_") || k == "RUST_LOG" || k == "VAULT_TOKEN" || k == "KUBECONFIG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run certificate-checker")
}

/// Stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
