//! The `ttl-teardown` binary as an operator runs it: the demo, the harness contract (exit codes,
//! result event on Kafka equal to the printed one, metrics in the Pushgateway), fail-closed
//! refusals, and secrets kept out of every output.

mod demo;
mod execute;
mod harness;
mod kafka_auth;
mod lock;
mod notices;
mod platform;
mod shards;

// The AWS seeding of the inventory's provider tests (one client per service, one maker per
// kind), shared by path rather than rewritten per tier; this tier uses part of it.
#[path = "../../../../inventory/tests/providers/bed.rs"]
#[allow(dead_code)]
mod seed;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The demo config shipped in `examples/`.
pub fn demo_config() -> PathBuf {
    repo_root().join("examples/ttl-teardown.yaml")
}

/// Copies the demo (config, inventory, whitelist) into `dir` and returns the config's path
/// there, so its fallback event file is written in `dir`, never into the source tree.
pub fn demo_copy(dir: &Path) -> PathBuf {
    for f in ["ttl-teardown.yaml", "whitelist.yaml", "inventory.yaml"] {
        std::fs::copy(repo_root().join("examples").join(f), dir.join(f)).expect("copy demo file");
    }
    dir.join("ttl-teardown.yaml")
}

/// The instant the demo inventory is written for.
pub const DEMO_NOW: &str = "2026-11-23T12:00:00Z";

/// Runs the binary in `cwd` with `args` and extra environment; no inherited GOV_* settings.
pub async fn run(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ttl-teardown"));
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GOV_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run ttl-teardown")
}

/// Stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
