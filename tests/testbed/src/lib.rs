//! Test support for the governance jobs: real local services on free loopback ports, started for a
//! test and stopped when the handle drops, plus a stateful fake Kubernetes API server that this
//! project owns (no real kube-apiserver can be installed on our machines), and a Kafka Connect REST
//! stand-in (no Connect worker can be installed either).
//!
//! A service that cannot start is an error that says which service and why; tests never skip.

pub mod fakekube;
pub mod fixtures;
pub mod kafka;
pub mod kafka_connect;
pub mod moto;
pub mod openbao;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod pushgateway;
pub mod smtp;
