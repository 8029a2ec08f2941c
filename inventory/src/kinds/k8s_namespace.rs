//! Kubernetes namespaces. A namespace goes last: deleting it removes what is left in it, so its
//! managed objects are deleted (and audited) first, and it waits for them. Namespaces count
//! against the tenant quota `k8s_namespaces`.

use kube::api::ApiResource;

use crate::kind::{Kind, KubeKind, Measure, Platform, Quota};

/// `k8s-namespace`.
pub struct K8sNamespace;

/// Registry name.
pub const NAME: &str = "k8s-namespace";

impl Kind for K8sNamespace {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[
            super::k8s_deployment::NAME,
            super::k8s_service::NAME,
            super::k8s_configmap::NAME,
        ]
    }
    fn quota(&self) -> Option<Quota> {
        Some(Quota {
            dimension: "k8s_namespaces",
            measure: Measure::Count,
        })
    }
    fn kube(&self) -> Option<&dyn KubeKind> {
        Some(self)
    }
}

impl KubeKind for K8sNamespace {
    fn kube_kind(&self) -> &'static str {
        "Namespace"
    }
    fn id_segment(&self) -> Option<&'static str> {
        None
    }
    fn api_resource(&self) -> ApiResource {
        ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&())
    }
}
