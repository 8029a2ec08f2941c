//! The usage-reporting job: per-tenant API usage, cloud and cluster resources and Kafka Connect
//! connectors against quotas, with a forecast; one [`report::TenantReport`] per tenant feeds its
//! PDF, its email, its event and its metrics.
//!
//! Codemap: [`config`] (the `job:` section), [`period`] (which days), [`controlplane`]
//! (PostgreSQL: tenants, contacts, quotas), [`prometheus`] (API usage queries) and
//! [`histogram`] (quantiles from summed buckets), [`connect`] (Kafka Connect), [`quota`]
//! (usage vs limit), [`resources`] (the shared inventory → quota usage), [`forecast`], [`report`] (the one value per tenant), [`chart`] + [`pdf`]
//! (plotters SVG, typst PDF), [`output`] (CSV, email, platform summary), [`metrics`], [`job`].

pub mod chart;
pub mod config;
pub mod connect;
pub mod controlplane;
pub mod error;
pub mod forecast;
pub mod histogram;
pub mod iam;
pub mod job;
pub mod metrics;
pub mod output;
pub mod pdf;
pub mod period;
pub mod prometheus;
pub mod quota;
pub mod report;
pub mod resources;

pub use job::UsageReporting;
