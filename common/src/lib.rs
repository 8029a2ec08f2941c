//! The run harness every governance job shares.
//!
//! A job binary is a thin `main` over [`harness::main`]: the harness parses the command line, loads
//! and validates the YAML config (before any side effect), makes a run id, hands the job body a
//! [`harness::RunContext`] (dry-run flag, run id, [`clock::Clock`], sinks and clients), and then
//! *always* publishes one [`event::ResultEvent`] and pushes the run's metrics, in dry-run too.
//!
//! Exit codes are the same for every job: 0 success (dry-run included), 1 finished with failures
//! or could not publish its results, 2 fatal before any side effect (bad config, a sink that the
//! requested mode needs is missing, a safety cap refused the run).

pub mod clients;
pub mod clock;
pub mod config;
pub mod event;
pub mod harness;
pub mod iam;
pub mod kafka;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod rollup;
pub mod shard;

mod error;

pub use error::Error;
pub use secrecy::{ExposeSecret, SecretString};
