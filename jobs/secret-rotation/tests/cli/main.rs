//! The `secret-rotation` binary as an operator runs it, against real local services: OpenBao
//! (Vault KV v2), PostgreSQL 15, moto (RDS), tansu (Kafka), the Pushgateway and an SMTP sink;
//! and our stand-ins where nothing real can be installed: the fake Kubernetes API (with
//! rollouts the tests drive), Keycloak and an API-key issuer.

mod bed;
mod config;
mod execute;
mod failures;
mod kill;
mod sinks_down;
mod targets;

use std::path::Path;
use std::process::Output;

/// The instant every test evaluates at (`--now`).
pub const NOW: &str = "2026-12-01T00:00:00Z";

/// Runs the binary in `cwd` with `args` and extra environment; no inherited settings.
pub async fn run(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    command(cwd, args, env)
        .output()
        .await
        .expect("run secret-rotation")
}

/// The command, for tests that drive the process themselves.
pub fn command(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_secret-rotation"));
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GOV_")
            || k.starts_with("AWS_")
            || k == "RUST_LOG"
            || k == "VAULT_TOKEN"
            || k == "KUBECONFIG"
        {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
