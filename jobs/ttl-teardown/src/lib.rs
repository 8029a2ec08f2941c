//! TTL teardown: finds non-production resources whose `created_at + ttl (+ extensions)` has
//! passed, warns their owners before, and deletes them in dependency order — only with
//! `--execute`, never production, restricted data or anything the whitelist protects.
//!
//! The crate is a library with a thin binary so that tests drive the same code: `plan` decides,
//! `job` wires the decision into the shared run harness (`common::harness`).

pub mod aws;
pub mod config;
pub mod cost;
pub mod execute;
pub mod inventory;
pub mod job;
pub mod kinds;
pub mod kube;
pub mod live;
pub mod notices;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod report;
pub mod snooze;
pub mod tags;

pub use job::TtlTeardown;
