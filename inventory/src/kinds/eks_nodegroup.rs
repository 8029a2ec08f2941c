//! EKS managed node groups: listed per cluster (ListClusters, ListNodegroups, DescribeNodegroup,
//! which carries the tags); removal is DeleteNodegroup, after which the group is `DELETING`
//! until EKS no longer knows it. Deleting a node group deletes its Auto Scaling group and
//! instances, which are part of it (they are tagged `eks:nodegroup-name`); its node role waits
//! for it. The cluster itself is not removed here.

use std::collections::BTreeMap;

use aws_sdk_eks::types::Nodegroup;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::AwsScope;
use crate::aws::error::{failed, found};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Measure, Phase, Platform, Quota, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `eks-nodegroup`.
pub struct EksNodegroup;

/// Registry name.
pub const NAME: &str = "eks-nodegroup";

/// What EKS says when the node group (or its cluster) does not exist (any more).
const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

const SHAPE: ArnShape = ArnShape {
    service: "eks",
    prefix: "nodegroup/",
    regional: true,
    has_account: true,
};

/// The key other resources find a node group by: `<cluster>/<node group>`.
pub fn key(cluster: &str, nodegroup: &str) -> String {
    format!("{cluster}/{nodegroup}")
}

impl Kind for EksNodegroup {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn part_kinds(&self) -> &'static [&'static str] {
        &[super::autoscaling_group::NAME]
    }
    fn quota(&self) -> Option<Quota> {
        Some(Quota {
            dimension: "eks_node_groups",
            measure: Measure::Count,
        })
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for EksNodegroup {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    // `nodegroup/<cluster>/<name>/<uuid>` → `<cluster>/<name>`.
    fn native_id(&self, resource_part: &str) -> Option<String> {
        let rest = resource_part.strip_prefix(SHAPE.prefix)?;
        let mut parts = rest.split('/');
        let (cluster, name, _uuid) = (parts.next()?, parts.next()?, parts.next()?);
        (parts.next().is_none() && !cluster.is_empty() && !name.is_empty())
            .then(|| key(cluster, name))
    }
    // `<cluster>/<name>` → `<name>`, as DescribeNodegroup names it.
    fn name_of(&self, native: &str) -> String {
        native
            .split_once('/')
            .map_or(native, |(_, name)| name)
            .to_string()
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "eks:DeleteNodegroup",
            "eks:DescribeNodegroup",
            "eks:ListClusters",
            "eks:ListNodegroups",
            "eks:TagResource",
            "eks:UntagResource",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let label = aws.scope_label();
            let eks = &aws.clients.eks;
            let mut clusters = Vec::new();
            let mut pages = eks
                .list_clusters()
                .max_results(aws.page(1, 100))
                .into_paginator()
                .send();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list eks-nodegroup (clusters)", &label))?;
                clusters.extend(page.clusters().iter().cloned());
            }
            let mut out = Vec::new();
            for cluster in clusters {
                let mut pages = eks
                    .list_nodegroups()
                    .cluster_name(&cluster)
                    .max_results(aws.page(1, 100))
                    .into_paginator()
                    .send();
                let mut names = Vec::new();
                loop {
                    aws.throttle().await;
                    let Some(page) = pages.next().await else {
                        break;
                    };
                    match found(page, NOT_FOUND, "list eks-nodegroup", &label)? {
                        Some(page) => names.extend(page.nodegroups().iter().cloned()),
                        None => break, // the cluster went away meanwhile
                    }
                }
                for name in names {
                    if let Some(g) = describe_one(aws, &cluster, &name, &label).await?
                        && let Some(r) = resource(aws, &g)
                    {
                        out.push(r);
                    }
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn describe<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Option<Current>, ProviderError>> {
        async move {
            let Some((cluster, name)) = native.split_once('/') else {
                return Ok(None);
            };
            Ok(describe_one(aws, cluster, name, arn)
                .await?
                .map(|g| Current {
                    attributes: None,
                    state: status(&g).to_string(),
                    tags: Ok(tags(&g)),
                    never: None,
                }))
        }
        .boxed()
    }

    fn write_tags<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        _native: &'a str,
        set: &'a [(String, String)],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            let eks = &aws.clients.eks;
            if !set.is_empty() {
                aws.throttle().await;
                eks.tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(set.iter().cloned().collect()))
                    .send()
                    .await
                    .map_err(|e| failed(e, "tag", arn))?;
            }
            if !remove.is_empty() {
                aws.throttle().await;
                eks.untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(remove.to_vec()))
                    .send()
                    .await
                    .map_err(|e| failed(e, "untag", arn))?;
            }
            Ok(())
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Removal, ProviderError>> {
        async move {
            let Some((cluster, name)) = native.split_once('/') else {
                return Err(ProviderError::refusal("delete", arn, "not a node group id"));
            };
            aws.throttle().await;
            let sent = aws
                .clients
                .eks
                .delete_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await;
            Ok(match found(sent, NOT_FOUND, "delete", arn)? {
                None => Removal::Done,
                Some(out) => Removal::Pending {
                    state: out.nodegroup().map_or("DELETING", status).to_string(),
                },
            })
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        match state {
            "DELETING" => Phase::Removing(Removal::Pending {
                state: state.to_string(),
            }),
            _ => Phase::Live,
        }
    }
}

async fn describe_one(
    aws: &AwsScope,
    cluster: &str,
    name: &str,
    subject: &str,
) -> Result<Option<Nodegroup>, ProviderError> {
    aws.throttle().await;
    let sent = aws
        .clients
        .eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await;
    Ok(found(sent, NOT_FOUND, "describe", subject)?.and_then(|o| o.nodegroup().cloned()))
}

fn status(g: &Nodegroup) -> &str {
    g.status().map_or("unknown", |s| s.as_str())
}

fn tags(g: &Nodegroup) -> BTreeMap<String, String> {
    g.tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn resource(aws: &AwsScope, g: &Nodegroup) -> Option<Resource> {
    let (Some(arn), Some(cluster), Some(name)) =
        (g.nodegroup_arn(), g.cluster_name(), g.nodegroup_name())
    else {
        return None;
    };
    let mut r = aws.resource(NAME, arn.to_string(), name.to_string());
    r.keys = vec![key(cluster, name)];
    r.tags = tags(g);
    r.state = Some(status(g).to_string());
    r.attributes.instance_type = g.instance_types().first().cloned();
    r.attributes.created = g
        .created_at()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    if let Some(role) = g.node_role().and_then(|arn| arn.rsplit('/').next()) {
        r.refs
            .push(Ref::new(Relation::Blocks, super::iam_role::NAME, role));
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cluster_and_name() {
        let k = EksNodegroup;
        assert_eq!(
            k.native_id("nodegroup/dev/workers/8ec0c8e6-0000-4e1a-9f00-0123456789ab"),
            Some("dev/workers".into())
        );
        assert_eq!(k.native_id("nodegroup/dev/workers"), None);
        assert_eq!(k.native_id("cluster/dev"), None);
        assert_eq!(k.name_of("dev/workers"), "workers");
    }
}
