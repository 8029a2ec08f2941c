//! What the job looks at: one [`Resource`] model for every provider.
//!
//! AWS and Kubernetes resources are read by their providers; the **offline inventory file** is a
//! third provider: a YAML list of resources with their tags. It is the embedded default of the demo
//! and lets a pull request show what a tag change would do, without any cloud access.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use serde::Deserialize;

use crate::kinds;

/// Where a resource lives, for caps and findings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// An AWS account (and region).
    Aws {
        /// Account id.
        account: String,
        /// Region name.
        region: String,
    },
    /// A Kubernetes cluster (by configured name).
    Kubernetes {
        /// Cluster name.
        cluster: String,
    },
}

impl Scope {
    /// The cap key: `aws:<account>` or `k8s:<cluster>` (caps are per account and per cluster).
    pub fn cap_key(&self) -> String {
        match self {
            Scope::Aws { account, .. } => format!("aws:{account}"),
            Scope::Kubernetes { cluster } => format!("k8s:{cluster}"),
        }
    }
}

/// What the cost model needs to price a resource.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostBasis {
    /// EC2 instance type (`t3.large`).
    #[serde(default)]
    pub instance_type: Option<String>,
    /// RDS instance class (`db.t3.medium`).
    #[serde(default)]
    pub db_class: Option<String>,
    /// RDS Multi-AZ deployment.
    #[serde(default)]
    pub multi_az: bool,
    /// EBS volume or snapshot size in GiB.
    #[serde(default)]
    pub size_gb: Option<f64>,
}

/// One resource as every provider describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The ARN for AWS; `k8s:<namespace>` for a namespace, `k8s:<kind>/<namespace>/<name>` else.
    pub id: String,
    /// Registry kind name (`ec2-instance`, `k8s-namespace`, …).
    pub kind: &'static str,
    /// Short name for people (instance id, object name).
    pub name: String,
    /// Account/region or cluster.
    pub scope: Scope,
    /// Kubernetes namespace of a namespaced object (or the namespace itself).
    pub namespace: Option<String>,
    /// Tags (AWS) or annotations under the configured prefix with the prefix removed (Kubernetes).
    pub tags: BTreeMap<String, String>,
    /// Kubernetes labels (for whitelist selectors).
    pub labels: BTreeMap<String, String>,
    /// Labels of the object's namespace.
    pub namespace_labels: BTreeMap<String, String>,
    /// `created_at` to use when the tag is absent (Kubernetes `creationTimestamp`).
    pub created_fallback: Option<Timestamp>,
    /// Provider state (`running`, `shutting-down`, `available`…), when known.
    pub state: Option<String>,
    /// Ids of resources that must be gone before this one can be deleted (per instance: the
    /// instance using this security group, the instance this volume is attached to, …).
    pub wait_for: Vec<String>,
    /// Pricing inputs.
    pub cost: CostBasis,
    /// Set when the provider could not read this resource's tags: it is then protected.
    pub tags_unreadable: Option<String>,
}

/// A problem in the offline inventory file.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be read or parsed.
    #[error("{0}")]
    Load(#[from] common::Error),
    /// A resource entry is inconsistent.
    #[error("{file}: resources[{index}] ({id}): {message}")]
    Entry {
        /// The inventory file.
        file: String,
        /// Index of the entry.
        index: usize,
        /// The entry's id.
        id: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInventory {
    resources: Vec<FileResource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResource {
    kind: String,
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    namespace_labels: BTreeMap<String, String>,
    #[serde(default)]
    created: Option<Timestamp>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    wait_for: Vec<String>,
    #[serde(default)]
    cost: CostBasis,
}

/// Reads an offline inventory file (see `examples/inventory.yaml`).
pub fn load_file(path: &Path) -> Result<Vec<Resource>, InventoryError> {
    let file: FileInventory = common::config::load_file(path)?;
    let origin = path.display().to_string();
    let mut out = Vec::with_capacity(file.resources.len());
    let mut seen = std::collections::HashSet::new();
    for (index, r) in file.resources.into_iter().enumerate() {
        let entry_err = |message: String| InventoryError::Entry {
            file: origin.clone(),
            index,
            id: r.id.clone(),
            message,
        };
        let kind = kinds::by_name(&r.kind).ok_or_else(|| {
            entry_err(format!(
                "unknown kind {:?}; known kinds: {}",
                r.kind,
                kinds::names().join(", ")
            ))
        })?;
        let scope = if kind.is_kubernetes() {
            Scope::Kubernetes {
                cluster: r.cluster.clone().unwrap_or_else(|| "default".to_string()),
            }
        } else {
            let account = r
                .account
                .clone()
                .or_else(|| arn_part(&r.id, 4))
                .ok_or_else(|| entry_err("no account (set `account` or use a full ARN)".into()))?;
            let region = r
                .region
                .clone()
                .or_else(|| arn_part(&r.id, 3))
                .unwrap_or_default();
            Scope::Aws { account, region }
        };
        if !seen.insert(r.id.clone()) {
            return Err(entry_err("duplicate id".into()));
        }
        let name = r.name.clone().unwrap_or_else(|| short_name(&r.id));
        out.push(Resource {
            id: r.id,
            kind: kind.name(),
            name,
            scope,
            namespace: r.namespace,
            tags: r.tags,
            labels: r.labels,
            namespace_labels: r.namespace_labels,
            created_fallback: r.created,
            state: r.state,
            wait_for: r.wait_for,
            cost: r.cost,
            tags_unreadable: None,
        });
    }
    Ok(out)
}

/// Part `n` (0-based) of an ARN, when non-empty.
fn arn_part(arn: &str, n: usize) -> Option<String> {
    arn.splitn(6, ':')
        .nth(n)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The last path segment of an id (`i-0abc` from an instance ARN, `web` from `k8s:…/web`).
pub fn short_name(id: &str) -> String {
    id.rsplit(['/', ':']).next().unwrap_or(id).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Resource>, InventoryError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inventory.yaml");
        std::fs::write(&path, text).expect("write");
        load_file(&path)
    }

    #[test]
    fn reads_aws_and_kubernetes_entries() {
        let r = load(
            "resources:\n  - kind: ec2-instance\n    id: arn:aws:ec2:us-east-1:111111111111:instance/i-1\n    tags: {owner: a@b.io}\n    cost: {instance_type: t3.large}\n  - kind: k8s-namespace\n    id: k8s:preview-1\n    cluster: dev\n    created: 2026-11-01T00:00:00Z\n",
        )
        .expect("valid inventory");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].kind, "ec2-instance");
        assert_eq!(r[0].name, "i-1");
        assert_eq!(
            r[0].scope,
            Scope::Aws {
                account: "111111111111".into(),
                region: "us-east-1".into()
            }
        );
        assert_eq!(r[0].cost.instance_type.as_deref(), Some("t3.large"));
        assert_eq!(r[1].scope.cap_key(), "k8s:dev");
        assert_eq!(r[1].name, "preview-1");
    }

    #[test]
    fn unknown_kind_and_duplicates_are_errors() {
        let e = load("resources:\n  - kind: s3-bucket\n    id: arn:aws:s3:::b\n")
            .expect_err("unknown kind");
        assert!(e.to_string().contains("unknown kind \"s3-bucket\""), "{e}");
        let e = load("resources:\n  - {kind: k8s-namespace, id: k8s:a}\n  - {kind: k8s-namespace, id: k8s:a}\n").expect_err("duplicate");
        assert!(
            e.to_string().contains("resources[1] (k8s:a): duplicate id"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_names_line() {
        let e = load("resources:\n  - kind: k8s-namespace\n    id: k8s:a\n    colour: red\n")
            .expect_err("unknown field");
        assert!(e.to_string().contains(":4:"), "{e}");
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
