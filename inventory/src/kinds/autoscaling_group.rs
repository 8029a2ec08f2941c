//! EC2 Auto Scaling groups: tags inline; removal is DeleteAutoScalingGroup with ForceDelete,
//! which terminates the group's instances with it (`Delete in progress` until AWS no longer
//! knows the group).
//!
//! The group's instances are part of it (they say so from their `aws:autoscaling:groupName`
//! tag): they are deleted through the group, never alone, or the group would replace them. A
//! managed node group's Auto Scaling group (tags `eks:cluster-name`, `eks:nodegroup-name`) is in
//! turn part of its node group.

use aws_sdk_autoscaling::types::{AutoScalingGroup as Group, Tag};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::error::failed;
use crate::aws::{AwsScope, tag_map};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Phase, Platform, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `autoscaling-group`.
pub struct AutoscalingGroup;

/// Registry name.
pub const NAME: &str = "autoscaling-group";

/// The status of a group being deleted.
const DELETING: &str = "Delete in progress";

const SHAPE: ArnShape = ArnShape {
    service: "autoscaling",
    prefix: "autoScalingGroup:",
    regional: true,
    has_account: true,
};

impl Kind for AutoscalingGroup {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[super::eks_nodegroup::NAME]
    }
    fn part_kinds(&self) -> &'static [&'static str] {
        &[super::ec2_instance::NAME]
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for AutoscalingGroup {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    // `autoScalingGroup:<uuid>:autoScalingGroupName/<name>` → the name.
    fn native_id(&self, resource_part: &str) -> Option<String> {
        let rest = resource_part.strip_prefix(SHAPE.prefix)?;
        let (_, name) = rest.split_once(":autoScalingGroupName/")?;
        (!name.is_empty()).then(|| name.to_string())
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "autoscaling:CreateOrUpdateTags",
            "autoscaling:DeleteAutoScalingGroup",
            "autoscaling:DeleteTags",
            "autoscaling:DescribeAutoScalingGroups",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut pages = aws
                .clients
                .autoscaling
                .describe_auto_scaling_groups()
                .max_records(aws.page(1, 100))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page =
                    page.map_err(|e| failed(e, "list autoscaling-group", &aws.scope_label()))?;
                out.extend(
                    page.auto_scaling_groups()
                        .iter()
                        .filter_map(|g| resource(aws, g)),
                );
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
            aws.throttle().await;
            let out = aws
                .clients
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(native)
                .send()
                .await
                .map_err(|e| failed(e, "describe", arn))?;
            // An unknown name is an empty answer, not an error.
            let group = out
                .auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(native));
            Ok(group.map(|g| Current {
                attributes: None,
                state: state_of(g).to_string(),
                tags: Ok(tags(g)),
                never: g
                    .deletion_protection()
                    .filter(|p| p.as_str() != "none")
                    .map(|p| format!("deletion protection is {}", p.as_str())),
            }))
        }
        .boxed()
    }

    fn write_tags<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
        set: &'a [(String, String)],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            let tag = |key: &str, value: Option<&str>| {
                Tag::builder()
                    .resource_id(native)
                    .resource_type("auto-scaling-group")
                    .key(key)
                    .set_value(value.map(str::to_string))
                    .propagate_at_launch(false)
                    .build()
            };
            let client = &aws.clients.autoscaling;
            if !set.is_empty() {
                let tags = set.iter().map(|(k, v)| tag(k, Some(v))).collect();
                aws.throttle().await;
                client
                    .create_or_update_tags()
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| failed(e, "tag", arn))?;
            }
            if !remove.is_empty() {
                let tags = remove.iter().map(|k| tag(k, None)).collect();
                aws.throttle().await;
                client
                    .delete_tags()
                    .set_tags(Some(tags))
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
            aws.throttle().await;
            let sent = aws
                .clients
                .autoscaling
                .delete_auto_scaling_group()
                .auto_scaling_group_name(native)
                .force_delete(true)
                .send()
                .await;
            match sent {
                Ok(_) => Ok(Removal::Pending {
                    state: DELETING.to_string(),
                }),
                // Auto Scaling answers a missing group with a ValidationError naming it.
                Err(e) => {
                    let f = crate::aws::error::Failure::of(&e);
                    if f.is(&["ValidationError"]) && f.message.contains("not found") {
                        Ok(Removal::Done)
                    } else {
                        Err(f.into_provider_error("delete", arn))
                    }
                }
            }
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        if state == DELETING {
            Phase::Removing(Removal::Pending {
                state: state.to_string(),
            })
        } else {
            Phase::Live
        }
    }
}

fn state_of(g: &Group) -> &str {
    g.status().unwrap_or("active")
}

fn tags(g: &Group) -> std::collections::BTreeMap<String, String> {
    tag_map(g.tags().iter().map(|t| (t.key(), t.value())))
}

fn resource(aws: &AwsScope, g: &Group) -> Option<Resource> {
    let (Some(name), Some(arn)) = (g.auto_scaling_group_name(), g.auto_scaling_group_arn()) else {
        return None;
    };
    let mut r = aws.resource(NAME, arn.to_string(), name.to_string());
    r.tags = tags(g);
    r.state = Some(state_of(g).to_string());
    r.attributes.created = g
        .created_time()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    if let (Some(cluster), Some(nodegroup)) = (
        r.tags.get("eks:cluster-name"),
        r.tags.get("eks:nodegroup-name"),
    ) {
        r.refs.push(Ref::new(
            Relation::PartOf,
            super::eks_nodegroup::NAME,
            super::eks_nodegroup::key(cluster, nodegroup),
        ));
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_read_from_the_arn() {
        let k = AutoscalingGroup;
        assert_eq!(
            k.native_id(
                "autoScalingGroup:8f2b9c1e-0000-4a4a-9c9c-123456789abc:autoScalingGroupName/web"
            ),
            Some("web".into())
        );
        assert_eq!(k.native_id("autoScalingGroup:uuid"), None);
    }
}
