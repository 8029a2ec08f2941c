//! The inventory's kinds against real components: a moto server for AWS (every AWS kind of the
//! registry), the project's fake Kubernetes API for the Kubernetes kinds.
//!
//! One binary, one module per area: [`bed`] starts moto and seeds it with the SDK directly;
//! [`guard`] is the test's [`inventory::Guard`], which records what it was asked. Each test starts
//! its own server (under a second) and seeds tens of resources at most.
//!
//! What changed on purpose since these tests covered the TTL job's own providers: security groups
//! no longer list network interfaces (no `in-use-by-eni` state), a root volume attached with
//! DeleteOnTermination is `part_of` its instance, `Resource.cost` is `Resource.attributes`,
//! `set_tags` is `write_tags(r, set, remove)`, and removal asks a caller's guard about the
//! re-read tags instead of applying the TTL job's rules itself.

mod actions;
mod autoscaling;
mod aws;
mod bed;
mod eks;
mod elb;
mod guard;
mod iam;
mod kube;
mod lambda;
mod partial;
mod routing;
mod s3;
mod tags;
