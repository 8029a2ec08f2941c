//! The secret rotation job: staged, verified, resumable rotation of secrets whose source of
//! truth is Vault KV v2, set in the systems that own them (PostgreSQL, RDS, Keycloak, an API-key
//! issuer), carried to Kubernetes Secrets, and proven by restarting and verifying every consumer.
//!
//! Codemap: [`config`] (the `job:` section, policies, validation), [`locate`] (file:line of a
//! field), [`policy`] (step 1: classify), [`inventory`] (declared, discovered and offline
//! secrets), [`plan`] (one action per secret, caps), [`journal`] (the write-ahead journal in
//! `custom_metadata`), [`value`] (new values from the OS RNG), [`vault`] (KV v2, check-and-set),
//! [`targets`] (one file per credential owner), [`kube`] (Secrets, consumers, restarts),
//! [`rollout`] (kubectl's rollout-status rules), [`rotate`] (steps 2–9, failure and rollback),
//! [`notices`] (owner mails), [`job`] (the `Job` impl, findings, metrics, table).

pub mod config;
pub mod iam;
pub mod inventory;
pub mod job;
pub mod journal;
pub mod kube;
pub mod locate;
pub mod notices;
pub mod plan;
pub mod policy;
pub mod rollout;
pub mod rotate;
pub mod targets;
pub mod value;
pub mod vault;

pub use job::SecretRotation;
