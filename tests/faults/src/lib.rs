//! The fault suite (`tests/faults`): the job binaries run as an operator runs them, against the
//! test bed's real services, while [`testbed::faultproxy`] throttles, delays, fails or cuts a
//! seeded share of their calls; each test compares the end state with a run without faults and
//! prints the figures (requests, faults injected, retries).
//!
//! The binaries are the workspace's own, found next to the test executable in the target
//! directory: `cargo test --workspace` builds them before any test runs. Sizes are small here
//! (CI); `tests/faults/figures.sh` runs the suite at full size and prints the figures.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The workspace binary `name` (`ttl-teardown`, …) of the build this test belongs to.
///
/// Panics with what to run when it has not been built (e.g. after `cargo test -p faults`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{} is not built: run the suite with `cargo test --workspace` (or `cargo build --workspace --bins` first)",
        bin.display()
    );
    bin
}

/// Runs binary `name` in `cwd` with `args` and extra environment; no inherited GOV_* settings
/// or RUST_LOG.
pub async fn run(name: &str, cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    spawn(name, cwd, args, env)
        .wait_with_output()
        .await
        .unwrap_or_else(|e| panic!("run {name}: {e}"))
}

/// Starts binary `name` as [`run`] does, with stdout and stderr captured, and returns at once
/// (for a test that breaks something while it runs). Killed when dropped.
pub fn spawn(
    name: &str,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(binary(name));
    cmd.current_dir(cwd)
        .args(args)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("GOV_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// Stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The share of calls to fault: `GOV_FAULTS_RATE` (0 to 1), default `default`.
pub fn rate(default: f64) -> f64 {
    std::env::var("GOV_FAULTS_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|r| (0.0..=1.0).contains(r))
        .unwrap_or(default)
}

/// The proxy's seed: `GOV_FAULTS_SEED`, default `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("GOV_FAULTS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
