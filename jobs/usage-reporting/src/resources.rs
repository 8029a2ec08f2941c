//! The thin adapter over the shared inventory: list what exists (every (account, region) of
//! the `aws:` section and the `kubernetes:` cluster), and reduce each resource to what quotas
//! need — its `project` tag, its kind's quota dimension and how much it counts
//! ([`crate::quota::Measured`]). Everything else about quotas lives in [`crate::quota`].
//!
//! A kind that could not be listed in some scope makes its dimension *unknown* for every tenant
//! (a count that misses a region would be a wrong number): the dimension is left out of the
//! usage and the failure is an error of the run.

use std::collections::BTreeSet;

use common::config::JobConfig;
use inventory::{Listing, Measure as InvMeasure, Providers};

use crate::config::{InventorySource, UsageConfig};
use crate::error::Error;
use crate::quota::{Measure, Measured, ResourceUsage, sum_resources};

/// Every quota dimension of the inventory's kind registry, with how it measures.
pub fn known_dimensions() -> Vec<(&'static str, Measure)> {
    let mut out: Vec<(&'static str, Measure)> = inventory::kinds::KINDS
        .iter()
        .filter_map(|k| k.quota())
        .map(|q| (q.dimension, measure(q.measure)))
        .collect();
    out.sort_by_key(|(d, _)| *d);
    out.dedup_by_key(|(d, _)| *d);
    out
}

fn measure(m: InvMeasure) -> Measure {
    match m {
        InvMeasure::Count => Measure::Count,
        InvMeasure::SizeGb => Measure::SizeGb,
    }
}

/// Reduces a listing to quota usage; `failed` names the dimensions whose kind was not listed
/// everywhere (left out, not counted low) and the errors saying so.
pub fn usage(listing: &Listing, project_tag: &str) -> (ResourceUsage, Vec<String>) {
    let mut failed: BTreeSet<&'static str> = BTreeSet::new();
    let mut errors = Vec::new();
    for f in &listing.failures {
        if let Some(q) = inventory::kinds::by_name(f.kind).and_then(|k| k.quota()) {
            failed.insert(q.dimension);
        }
        errors.push(format!(
            "inventory: {} in {} not listed: {}",
            f.kind,
            f.scope.label(),
            f.error
        ));
    }
    let items = listing.resources.iter().filter_map(|r| {
        let q = inventory::kinds::by_name(r.kind)?.quota()?;
        if failed.contains(q.dimension) {
            return None;
        }
        let project = r.tags.get(project_tag)?.trim();
        if project.is_empty() {
            return None;
        }
        let measure = measure(q.measure);
        Some(Measured {
            resource: r.id.clone(),
            project: project.to_string(),
            dimension: q.dimension,
            measure,
            amount: match measure {
                Measure::Count => Some(1.0),
                Measure::SizeGb => r.attributes.size_gb,
            },
        })
    });
    let known: Vec<(&'static str, Measure)> = known_dimensions()
        .into_iter()
        .filter(|(d, _)| !failed.contains(d))
        .collect();
    (sum_resources(items, &known), errors)
}

/// Lists the configured scopes and returns the usage and the listing errors.
pub async fn collect(
    source: &InventorySource,
    config: &JobConfig<UsageConfig>,
) -> Result<(ResourceUsage, Vec<String>), Error> {
    let providers = Providers::connect(
        source.aws.then_some(&config.aws),
        source.kubernetes.as_ref().map(|k| (&config.kubernetes, k)),
    )
    .await
    .map_err(|e| Error::Inventory {
        message: error_chain(&e),
    })?;
    let listing = providers.list().await;
    Ok(usage(&listing, &source.project_tag))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::{Resource, Scope};

    fn r(kind: &'static str, id: &str, project: Option<&str>, size: Option<f64>) -> Resource {
        let mut r = Resource::new(
            kind,
            id.to_string(),
            id.to_string(),
            Scope::Aws {
                account: "111111111111".into(),
                region: "us-east-1".into(),
            },
        );
        if let Some(p) = project {
            r.tags.insert("project".into(), p.into());
        }
        r.attributes.size_gb = size;
        r
    }

    #[test]
    fn every_quota_dimension_of_the_registry_is_known() {
        let dims: Vec<&str> = known_dimensions().into_iter().map(|(d, _)| d).collect();
        for d in [
            "ebs_volume_gb",
            "ec2_instances",
            "eks_node_groups",
            "k8s_namespaces",
            "lambda_functions",
            "rds_instances",
            "s3_buckets",
        ] {
            assert!(dims.contains(&d), "{d} missing from {dims:?}");
        }
    }

    #[test]
    fn resources_count_per_project_tag_and_untagged_ones_do_not() {
        let listing = Listing {
            resources: vec![
                r("ec2-instance", "i-1", Some("acme"), None),
                r("ec2-instance", "i-2", Some("acme"), None),
                r("ec2-instance", "i-3", None, None),
                r("ebs-volume", "vol-1", Some("acme"), Some(120.0)),
                r("ebs-volume", "vol-2", Some("acme"), None),
                r("s3-bucket", "b-1", Some("bravo"), None),
                r("security-group", "sg-1", Some("acme"), None),
            ],
            failures: Vec::new(),
        };
        let (u, errors) = usage(&listing, "project");
        assert!(errors.is_empty());
        assert_eq!(u.used["acme"]["ec2_instances"], 2.0);
        assert_eq!(u.used["acme"]["ebs_volume_gb"], 120.0);
        assert_eq!(u.unknown_size["acme"], ["vol-2"]);
        assert_eq!(u.used["bravo"]["s3_buckets"], 1.0);
        assert_eq!(u.used["acme"].len(), 2, "security groups have no quota");
    }
}
