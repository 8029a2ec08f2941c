//! The fault suite, one binary: each module drives a job binary against real services while
//! something fails, and prints its figures (`cargo test --workspace --test suite -- --nocapture`).

mod broker;
mod kill;
mod sinks;
mod throttling;
mod ttl;

// The AWS seeding of the inventory's provider tests, shared by path (one fixture per tier).
#[path = "../../../../inventory/tests/providers/bed.rs"]
#[allow(dead_code)]
mod seed;
