//! Kubernetes Deployments carrying TTL annotations; deleted before their namespace (and before the
//! config maps they mount).

use kube::api::ApiResource;

use crate::kind::{Kind, KubeKind, Platform};

/// `k8s-deployment`.
pub struct K8sDeployment;

/// Registry name.
pub const NAME: &str = "k8s-deployment";

impl Kind for K8sDeployment {
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

impl KubeKind for K8sDeployment {
    fn kube_kind(&self) -> &'static str {
        "Deployment"
    }
    fn id_segment(&self) -> Option<&'static str> {
        Some("deployment")
    }
    fn api_resource(&self) -> ApiResource {
        ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&())
    }
}
