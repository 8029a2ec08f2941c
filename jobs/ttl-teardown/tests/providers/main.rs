//! The providers against real local services: moto for AWS, the fake API server for Kubernetes.

mod aws;
mod kube;
