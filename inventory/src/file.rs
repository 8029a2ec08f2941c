//! The offline inventory: a YAML list of resources with their tags, standing in for the
//! providers. It is the embedded default of the demo and lets a pull request show what a tag
//! change would do, without any cloud access. See `examples/inventory.yaml`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use jiff::Timestamp;
use serde::Deserialize;

use crate::error::FileError;
use crate::kind::Platform;
use crate::resource::{Attributes, Resource, Scope, short_name};

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
    part_of: Option<String>,
    /// Pricing and quota inputs (`cost:` is the older name).
    #[serde(default, alias = "cost")]
    attributes: Attributes,
}

/// Reads an offline inventory file.
pub fn load_file(path: &Path) -> Result<Vec<Resource>, FileError> {
    let origin = path.display().to_string();
    // A data file, not a config: its parser budget grows with it (100,000 resources and more).
    let file: FileInventory =
        common::config::load_data_file(path).map_err(|source| FileError::Load {
            file: origin.clone(),
            source,
        })?;
    let mut out = Vec::with_capacity(file.resources.len());
    let mut seen = HashSet::new();
    for (index, r) in file.resources.into_iter().enumerate() {
        let entry_err = |message: String| FileError::Entry {
            file: origin.clone(),
            index,
            id: r.id.clone(),
            message,
        };
        let kind = crate::kinds::by_name(&r.kind).ok_or_else(|| {
            entry_err(format!(
                "unknown kind {:?}; known kinds: {}",
                r.kind,
                crate::kinds::names().join(", ")
            ))
        })?;
        let scope = match kind.platform() {
            Platform::Kubernetes => Scope::Kubernetes {
                cluster: r.cluster.clone().unwrap_or_else(|| "default".to_string()),
            },
            Platform::Aws => {
                let account = r
                    .account
                    .clone()
                    .or_else(|| arn_part(&r.id, 4))
                    .ok_or_else(|| {
                        entry_err("no account (set `account` or use a full ARN)".into())
                    })?;
                let region = r
                    .region
                    .clone()
                    .or_else(|| arn_part(&r.id, 3))
                    .unwrap_or_default();
                Scope::Aws { account, region }
            }
        };
        if !seen.insert(r.id.clone()) {
            return Err(entry_err("duplicate id".into()));
        }
        let name = r.name.clone().unwrap_or_else(|| short_name(&r.id));
        let mut resource = Resource::new(kind.name(), r.id, name, scope);
        resource.namespace = r.namespace;
        resource.tags = r.tags;
        resource.labels = r.labels;
        resource.namespace_labels = r.namespace_labels;
        resource.created_fallback = r.created;
        resource.state = r.state;
        resource.wait_for = r.wait_for;
        resource.part_of = r.part_of;
        resource.attributes = r.attributes;
        out.push(resource);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Resource>, FileError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inventory.yaml");
        std::fs::write(&path, text).expect("write");
        load_file(&path)
    }

    #[test]
    fn reads_aws_and_kubernetes_entries() {
        let r = load(
            "resources:\n  - kind: ec2-instance\n    id: arn:aws:ec2:us-east-1:111111111111:instance/i-1\n    tags: {owner: a@b.io}\n    cost: {instance_type: t3.large}\n  - kind: k8s-namespace\n    id: k8s:preview-1\n    cluster: dev\n    created: 2026-11-01T00:00:00Z\n  - kind: s3-bucket\n    id: arn:aws:s3:::logs\n    account: \"111111111111\"\n    region: us-east-1\n    attributes: {size_gb: 12.5}\n",
        )
        .expect("valid inventory");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].kind, "ec2-instance");
        assert_eq!(r[0].name, "i-1");
        assert_eq!(
            r[0].scope,
            Scope::Aws {
                account: "111111111111".into(),
                region: "us-east-1".into()
            }
        );
        assert_eq!(r[0].attributes.instance_type.as_deref(), Some("t3.large"));
        assert_eq!(r[1].scope.cap_key(), "k8s:dev");
        assert_eq!(r[1].name, "preview-1");
        assert_eq!(r[2].attributes.size_gb, Some(12.5));
    }

    #[test]
    fn unknown_kind_and_duplicates_are_errors() {
        let e = load("resources:\n  - kind: s3-object\n    id: arn:aws:s3:::b/k\n")
            .expect_err("unknown kind");
        assert!(e.to_string().contains("unknown kind \"s3-object\""), "{e}");
        let e = load("resources:\n  - {kind: k8s-namespace, id: k8s:a}\n  - {kind: k8s-namespace, id: k8s:a}\n").expect_err("duplicate");
        assert!(
            e.to_string().contains("resources[1] (k8s:a): duplicate id"),
            "{e}"
        );
    }

    #[test]
    fn a_file_of_the_wrong_shape_says_what_was_expected_once() {
        let e = load("- kind: k8s-namespace\n").expect_err("a list, not a mapping");
        let shown = format!("{:#}", anyhow_like(&e));
        assert!(
            shown.contains("expected a mapping with `resources:`"),
            "{shown}"
        );
        let location = shown.matches(":1:").count();
        assert_eq!(location, 1, "the location is said once: {shown}");
    }

    #[test]
    fn unknown_field_names_line() {
        let e = load("resources:\n  - kind: k8s-namespace\n    id: k8s:a\n    colour: red\n")
            .expect_err("unknown field");
        let shown = anyhow_like(&e);
        assert!(shown.contains(":4:"), "{shown}");
        assert!(shown.contains("colour"), "{shown}");
    }

    /// The error and its sources, as `anyhow`'s `{:#}` prints them.
    fn anyhow_like(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}
