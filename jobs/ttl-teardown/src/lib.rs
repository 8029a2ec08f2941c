//! TTL teardown: finds non-production resources whose `created_at + ttl (+ extensions)` has
//! passed, warns their owners before, and deletes them in dependency order — only with
//! `--execute`, never production, restricted data or anything the whitelist protects.
//!
//! The crate is a library with a thin binary so that tests drive the same code: `plan` decides,
//! `execute` acts, `job` wires both into the shared run harness (`common::harness`). What exists
//! and how to remove it is the shared `inventory` crate's; the TTL rules — the tagging standard
//! (`tags`), the deadline and stage (`policy`), eligibility (`plan::decide`) and the re-check
//! just before a removal (`guard`) — are here, and the snooze service (`services/ttl-snooze`)
//! applies the very same functions.

pub mod archive;
pub mod config;
pub mod execute;
pub mod guard;
pub mod iam;
pub mod job;
pub mod notices;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod snooze;
pub mod stage;
pub mod tags;

pub use job::TtlTeardown;
