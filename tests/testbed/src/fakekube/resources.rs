//! The kinds the fake API server serves: one `const` table, one line per kind.
//!
//! Adding a kind is adding a line to [`RESOURCES`]; the routes, discovery documents, list kinds and
//! direct-access helpers all read this table. The tests at the bottom hold the table to the rules
//! the rest of the module assumes (unique plurals, unique group/version/kind).

/// How names of a kind are validated, as the real API server does per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`, at most 253 characters.
    Subdomain,
    /// RFC 1123 label: lowercase alphanumerics and `-`, at most 63 characters (namespaces).
    Label,
    /// RFC 1035 label: an RFC 1123 label that starts with a letter (services).
    Label1035,
}

/// One kind served by the fake: where it lives in the URL space and what the server does with it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resource {
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// `kind` of one object.
    pub kind: &'static str,
    /// Plural resource name used in URLs; unique across the table.
    pub plural: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `PUT` on a missing object creates it (true for leases and services upstream).
    pub create_on_update: bool,
    /// Whether the kind has a `status` subresource (`.../{name}/status`).
    pub status_subresource: bool,
    /// Field selector paths accepted besides `metadata.name` and `metadata.namespace`.
    pub fields: &'static [&'static str],
    /// How object names are validated.
    pub names: NameRule,
    /// Short names advertised in discovery (for kubectl).
    pub short_names: &'static [&'static str],
    /// Whether objects carry `metadata.generation` (kinds whose spec a controller acts on).
    pub generation: bool,
    /// Whether the kind is in the `all` category (`kubectl get all`), as upstream.
    pub in_all: bool,
}

impl Resource {
    const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Self {
        Self {
            group,
            version,
            kind,
            plural,
            namespaced,
            create_on_update: false,
            status_subresource: false,
            fields: &[],
            names: NameRule::Subdomain,
            short_names: &[],
            in_all: false,
            generation: false,
        }
    }

    const fn namespaced(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Self {
        Self::new(group, version, kind, plural, true)
    }

    const fn cluster(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Self {
        Self::new(group, version, kind, plural, false)
    }

    const fn create_on_update(mut self) -> Self {
        self.create_on_update = true;
        self
    }

    const fn status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    const fn fields(mut self, fields: &'static [&'static str]) -> Self {
        self.fields = fields;
        self
    }

    const fn names(mut self, names: NameRule) -> Self {
        self.names = names;
        self
    }

    const fn short(mut self, short_names: &'static [&'static str]) -> Self {
        self.short_names = short_names;
        self
    }

    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }

    const fn in_all(mut self) -> Self {
        self.in_all = true;
        self
    }

    /// `apiVersion` of objects of this kind: `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as error details name it upstream: `deployments.apps`, `secrets`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Every kind the fake serves. Order is the order of discovery documents.
pub(crate) const RESOURCES: &[Resource] = &[
    // Core group.
    Resource::cluster("", "v1", "Namespace", "namespaces")
        .names(NameRule::Label)
        .status()
        .fields(&["status.phase"])
        .short(&["ns"]),
    Resource::namespaced("", "v1", "ConfigMap", "configmaps").short(&["cm"]),
    Resource::namespaced("", "v1", "Secret", "secrets").fields(&["type"]),
    Resource::namespaced("", "v1", "Service", "services")
        .names(NameRule::Label1035)
        .create_on_update()
        .status()
        .short(&["svc"])
        .in_all(),
    Resource::namespaced("", "v1", "ServiceAccount", "serviceaccounts").short(&["sa"]),
    Resource::namespaced("", "v1", "Pod", "pods")
        .status()
        .fields(&["status.phase", "spec.nodeName"])
        .short(&["po"])
        .in_all(),
    Resource::namespaced("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
        .status()
        .short(&["pvc"]),
    // apps/v1.
    Resource::namespaced("apps", "v1", "Deployment", "deployments")
        .status()
        .short(&["deploy"])
        .generation()
        .in_all(),
    Resource::namespaced("apps", "v1", "StatefulSet", "statefulsets")
        .status()
        .short(&["sts"])
        .generation()
        .in_all(),
    Resource::namespaced("apps", "v1", "DaemonSet", "daemonsets")
        .status()
        .short(&["ds"])
        .generation()
        .in_all(),
    // batch/v1.
    Resource::namespaced("batch", "v1", "Job", "jobs")
        .status()
        .in_all(),
    Resource::namespaced("batch", "v1", "CronJob", "cronjobs")
        .status()
        .short(&["cj"])
        .generation()
        .in_all(),
    // networking.k8s.io/v1.
    Resource::namespaced("networking.k8s.io", "v1", "Ingress", "ingresses")
        .status()
        .short(&["ing"])
        .generation(),
    // coordination.k8s.io/v1: leader election and run locks.
    Resource::namespaced("coordination.k8s.io", "v1", "Lease", "leases").create_on_update(),
    // external-secrets.io/v1beta1: a custom resource of the External Secrets Operator (served
    // as if its CRD were installed; no operator runs, a test plays it).
    Resource::namespaced(
        "external-secrets.io",
        "v1beta1",
        "ExternalSecret",
        "externalsecrets",
    )
    .status()
    .short(&["es"])
    .generation(),
];

/// The kind served at `group/version/plural`, if any.
pub(crate) fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The kind with this plural name (plurals are unique in the table).
pub(crate) fn by_plural(plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.plural == plural)
}

/// The kind with this `apiVersion` and `kind`.
pub(crate) fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Names of every kind, for error messages that list what is known.
pub(crate) fn known_plurals() -> String {
    RESOURCES
        .iter()
        .map(|r| r.plural)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn plurals_are_unique_because_direct_access_is_keyed_by_plural() {
        let mut seen = HashSet::new();
        for r in RESOURCES {
            assert!(seen.insert(r.plural), "plural {} appears twice", r.plural);
        }
    }

    #[test]
    fn group_version_kind_is_unique() {
        let mut seen = HashSet::new();
        for r in RESOURCES {
            assert!(
                seen.insert((r.api_version(), r.kind)),
                "{} {} appears twice",
                r.api_version(),
                r.kind
            );
        }
    }

    #[test]
    fn lookups_agree_with_the_table() {
        for r in RESOURCES {
            assert_eq!(
                by_path(r.group, r.version, r.plural).map(|x| x.kind),
                Some(r.kind)
            );
            assert_eq!(by_plural(r.plural).map(|x| x.kind), Some(r.kind));
            assert_eq!(
                by_kind(&r.api_version(), r.kind).map(|x| x.plural),
                Some(r.plural)
            );
        }
    }

    #[test]
    fn names_follow_the_api_conventions() {
        let deploy = by_plural("deployments").unwrap();
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.qualified(), "deployments.apps");
        let ns = by_plural("namespaces").unwrap();
        assert_eq!(ns.api_version(), "v1");
        assert_eq!(ns.qualified(), "namespaces");
    }
}
