//! Kubernetes kinds: namespaced objects selected by label, and namespaces. A namespace goes last:
//! deleting it removes what is left in it, so its own objects are deleted (and audited) first.

use super::{Kind, Platform};

/// `k8s-deployment`.
pub struct Deployment;
/// `k8s-service`.
pub struct Service;
/// `k8s-configmap`.
pub struct ConfigMap;
/// `k8s-namespace`.
pub struct Namespace;

impl Kind for Deployment {
    fn name(&self) -> &'static str {
        "k8s-deployment"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
}

impl Kind for Service {
    fn name(&self) -> &'static str {
        "k8s-service"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
}

impl Kind for ConfigMap {
    fn name(&self) -> &'static str {
        "k8s-configmap"
    }
    // Workloads mount config maps: remove the workload first.
    fn wait_for(&self) -> &'static [&'static str] {
        &["k8s-deployment"]
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
}

impl Kind for Namespace {
    fn name(&self) -> &'static str {
        "k8s-namespace"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &["k8s-deployment", "k8s-service", "k8s-configmap"]
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
}
