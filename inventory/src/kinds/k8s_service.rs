//! Kubernetes Services carrying TTL annotations; deleted before their namespace.

use kube::api::ApiResource;

use crate::kind::{Kind, KubeKind, Platform};

/// `k8s-service`.
pub struct K8sService;

/// Registry name.
pub const NAME: &str = "k8s-service";

impl Kind for K8sService {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn kube(&self) -> Option<&dyn KubeKind> {
        Some(self)
    }
}

impl KubeKind for K8sService {
    fn kube_kind(&self) -> &'static str {
        "Service"
    }
    fn id_segment(&self) -> Option<&'static str> {
        Some("service")
    }
    fn api_resource(&self) -> ApiResource {
        ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&())
    }
}
