//! Test support for the governance jobs: real local services on free loopback ports, started for a
//! test and stopped when the handle drops, plus the stand-ins this project owns where nothing real
//! can be installed on our machines: a stateful fake Kubernetes API server ([`fakekube`]), a
//! Keycloak honouring its Admin REST shapes ([`keycloak`]), an API-key issuer ([`apikeys`]) and a
//! Kafka Connect REST API ([`kafka_connect`]).
//!
//! For sinks that must refuse plaintext, [`securekafka`] puts tansu behind Debian's stunnel
//! ([`stunnel`]) and/or [`saslgate`], a SASL gate of our own, with certificates from [`pki`].
//!
//! [`faultproxy`] goes in front of any of them to throttle (shaped like the real service), delay,
//! fail, reset or blackhole a seeded share of the requests.
//!
//! A service that cannot start is an error that says which service and why; tests never skip.

pub mod apikeys;
pub mod fakekube;
pub mod faultproxy;
pub mod fixtures;
pub mod kafka;
pub mod kafka_connect;
pub mod keycloak;
pub mod moto;
pub mod openbao;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod pushgateway;
pub mod saslgate;
pub mod securekafka;
pub mod smtp;
pub mod stunnel;
