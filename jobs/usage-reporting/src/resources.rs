//! The thin adapter over the shared inventory: list what exists (every (account, region) of
//! the `aws:` section and the `kubernetes:` cluster), and reduce each resource to what quotas
//! need — its `project` tag, its kind's quota dimension and how much it counts
//! ([`crate::quota::Measured`]). Everything else about quotas lives in [`crate::quota`].
//!
//! A kind that could not be listed in some scope, or a resource of it whose tags could not be
//! read, makes its dimension *unknown* for every tenant (a count that misses a region or a
//! resource would be a wrong number): the dimension is left out of the usage, noted in every
//! report, and the failure is an error of the run. A dimension whose kinds
//! the source does not list at all (AWS kinds with `aws: false`, a namespaced kind not in
//! `kubernetes.kinds`) is not shown either: nobody counted it, so it is not 0.

use std::collections::{BTreeMap, BTreeSet};

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

/// The registry names of the kinds `source` lists: every AWS kind with `aws`, and what its
/// `kubernetes` section lists.
pub fn listed_kinds(source: &InventorySource) -> BTreeSet<&'static str> {
    let aws = inventory::kinds::KINDS
        .iter()
        .filter(|k| source.aws && k.aws().is_some())
        .map(|k| k.name());
    let kube = source
        .kubernetes
        .iter()
        .flat_map(inventory::KubeSource::listed_kinds);
    aws.chain(kube).collect()
}

/// Reduces a listing of the kinds `listed` to quota usage. A dimension is shown only when every
/// kind counting towards it was listed, everywhere: one not listed at all is left out silently
/// (not configured), one whose listing failed somewhere is left out, recorded in
/// [`ResourceUsage::missing`], and its failures come back as the run's errors.
pub fn usage(
    listing: &Listing,
    project_tag: &str,
    listed: &BTreeSet<&'static str>,
) -> (ResourceUsage, Vec<String>) {
    // What a tenant's report says about a dimension left out: the kind and what happened, never
    // a resource id (it may be another tenant's) or an API's error text (the run's errors,
    // which the platform team reads, carry those).
    let mut missing: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut errors = Vec::new();
    for f in &listing.failures {
        if let Some(q) = inventory::kinds::by_name(f.kind).and_then(|k| k.quota()) {
            missing
                .entry(q.dimension)
                .or_insert_with(|| format!("{} could not be listed", f.kind));
        }
        errors.push(format!(
            "inventory: {} in {} not listed: {}",
            f.kind,
            f.scope.label(),
            f.error
        ));
    }
    // A resource whose tags could not be read cannot be given to a tenant: its dimension is
    // unknown, like a kind not listed (counting it nowhere would make a tenant's figure low).
    // One error per kind (an account denying every bucket's tags must not make thousands).
    let mut unreadable: BTreeMap<&'static str, (usize, String)> = BTreeMap::new();
    for r in &listing.resources {
        let Some(why) = &r.tags_unreadable else {
            continue;
        };
        let entry = unreadable
            .entry(r.kind)
            .or_insert_with(|| (0, format!("{}: {why}", r.id)));
        entry.0 += 1;
    }
    for (kind, (n, first)) in unreadable {
        let Some(q) = inventory::kinds::by_name(kind).and_then(|k| k.quota()) else {
            continue;
        };
        missing
            .entry(q.dimension)
            .or_insert_with(|| format!("the tags of {n} {kind} resource(s) could not be read"));
        errors.push(format!(
            "inventory: {kind}: tags unreadable on {n} resource(s), the first {first}"
        ));
    }
    let unlisted: BTreeSet<&'static str> = inventory::kinds::KINDS
        .iter()
        .filter(|k| !listed.contains(k.name()))
        .filter_map(|k| k.quota().map(|q| q.dimension))
        .collect();
    let shown = |dimension: &str| !missing.contains_key(dimension) && !unlisted.contains(dimension);
    let items = listing.resources.iter().filter_map(|r| {
        let q = inventory::kinds::by_name(r.kind)?.quota()?;
        if !shown(q.dimension) {
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
        .filter(|(d, _)| shown(d))
        .collect();
    let mut usage = sum_resources(items, &known);
    usage.missing = missing;
    (usage, errors)
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
    Ok(usage(&listing, &source.project_tag, &listed_kinds(source)))
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
        let all = inventory::kinds::KINDS.iter().map(|k| k.name()).collect();
        let (u, errors) = usage(&listing, "project", &all);
        assert!(errors.is_empty());
        assert_eq!(u.used["acme"]["ec2_instances"], 2.0);
        assert_eq!(u.used["acme"]["ebs_volume_gb"], 120.0);
        assert_eq!(u.unknown_size["acme"], ["vol-2"]);
        assert_eq!(u.used["bravo"]["s3_buckets"], 1.0);
        assert_eq!(u.used["acme"].len(), 2, "security groups have no quota");
    }

    fn kube_only() -> InventorySource {
        InventorySource {
            aws: false,
            kubernetes: Some(inventory::KubeSource {
                kinds: Vec::new(),
                ..inventory::KubeSource::default()
            }),
            project_tag: "project".into(),
        }
    }

    fn namespace(name: &str, project: &str) -> Resource {
        let mut r = Resource::new(
            "k8s-namespace",
            format!("k8s:{name}"),
            name.to_string(),
            Scope::Kubernetes {
                cluster: "test".into(),
            },
        );
        r.tags.insert("project".into(), project.into());
        r
    }

    #[test]
    fn only_the_dimensions_of_listed_kinds_are_shown() {
        let listed = listed_kinds(&kube_only());
        assert!(listed.contains("k8s-namespace"), "{listed:?}");
        assert!(!listed.contains("ec2-instance"), "{listed:?}");
        let listing = Listing {
            resources: vec![namespace("a-1", "acme"), namespace("a-2", "acme")],
            failures: Vec::new(),
        };
        let (u, errors) = usage(&listing, "project", &listed);
        assert!(errors.is_empty());
        assert_eq!(u.used["acme"]["k8s_namespaces"], 2.0);
        let dims: Vec<&str> = u.dimensions.keys().copied().collect();
        assert_eq!(
            dims,
            ["k8s_namespaces"],
            "AWS was not listed: not 0, absent"
        );
        assert!(u.missing.is_empty());
    }

    #[test]
    fn a_kind_that_failed_somewhere_leaves_its_dimension_out_with_the_reason() {
        let listing = Listing {
            resources: vec![namespace("a-1", "acme")],
            failures: vec![inventory::ListFailure {
                scope: Scope::Kubernetes {
                    cluster: "test".into(),
                },
                kind: "k8s-namespace",
                error: inventory::ProviderError::refusal(
                    "list k8s-namespace",
                    "k8s:test",
                    "503 Service Unavailable",
                ),
            }],
        };
        let (u, errors) = usage(&listing, "project", &listed_kinds(&kube_only()));
        assert!(u.dimensions.is_empty(), "{:?}", u.dimensions);
        assert!(
            u.used.is_empty(),
            "nothing counted for a dimension left out"
        );
        assert_eq!(
            u.missing["k8s_namespaces"], "k8s-namespace could not be listed",
            "what a tenant reads: no error text"
        );
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("inventory: k8s-namespace in "),
            "{errors:?}"
        );
    }

    #[test]
    fn a_resource_with_unreadable_tags_leaves_its_dimension_out_with_the_reason() {
        let mut unreadable = namespace("a-2", "acme");
        unreadable.tags.clear();
        unreadable.tags_unreadable = Some("403 Forbidden".into());
        let listing = Listing {
            resources: vec![namespace("a-1", "acme"), unreadable],
            failures: Vec::new(),
        };
        let (u, errors) = usage(&listing, "project", &listed_kinds(&kube_only()));
        assert!(u.dimensions.is_empty(), "{:?}", u.dimensions);
        assert!(u.used.is_empty(), "acme's 1 would be a wrong figure");
        assert_eq!(
            u.missing["k8s_namespaces"],
            "the tags of 1 k8s-namespace resource(s) could not be read",
            "what a tenant reads: no resource id"
        );
        assert_eq!(
            errors,
            [
                "inventory: k8s-namespace: tags unreadable on 1 resource(s), the first k8s:a-2: 403 Forbidden"
            ]
        );
    }
}
