//! Kubernetes ConfigMaps carrying TTL annotations. Workloads mount them: the deployments of the
//! run go first.

use kube::api::ApiResource;

use crate::kind::{Kind, KubeKind, Platform};

/// `k8s-configmap`.
pub struct K8sConfigMap;

/// Registry name.
pub const NAME: &str = "k8s-configmap";

impl Kind for K8sConfigMap {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[super::k8s_deployment::NAME]
    }
    fn kube(&self) -> Option<&dyn KubeKind> {
        Some(self)
    }
}

impl KubeKind for K8sConfigMap {
    fn kube_kind(&self) -> &'static str {
        "ConfigMap"
    }
    fn id_segment(&self) -> Option<&'static str> {
        Some("configmap")
    }
    fn api_resource(&self) -> ApiResource {
        ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
    }
}
