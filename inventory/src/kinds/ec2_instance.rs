//! EC2 instances. Every state but `terminated` is listed; removal is TerminateInstances, after
//! which the instance is `shutting-down` until it is `terminated` (gone).
//!
//! An instance tells, from the same DescribeInstances answer, what depends on it: the security
//! groups it and its network interfaces use wait for it, and so does the IAM role of its
//! instance profile; its EBS volumes deleted on termination are parts of it, the others wait
//! for it (so a teardown listing needs DescribeVolumes only for volumes no instance holds, and
//! for those this listing names). An instance launched by an Auto Scaling group (tag
//! `aws:autoscaling:groupName`) is part of its group: removed only through the group (which
//! would otherwise replace it), never on its own.

use aws_sdk_ec2::types::{Filter, Instance};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::error::{failed, found};
use crate::aws::{AwsScope, ec2_tags, ec2_write_tags};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Measure, Phase, Platform, Quota, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `ec2-instance`.
pub struct Ec2Instance;

/// Registry name.
pub const NAME: &str = "ec2-instance";

/// Every instance state but `terminated`. A state AWS adds later is not listed, so not deleted.
const LIVE_STATES: &[&str] = &["pending", "running", "shutting-down", "stopping", "stopped"];

/// What AWS says when the instance does not exist (any more).
const NOT_FOUND: &[&str] = &["InvalidInstanceID.NotFound"];

/// The tag AWS puts on instances an Auto Scaling group launched.
pub const AUTOSCALING_GROUP_TAG: &str = "aws:autoscaling:groupName";

const SHAPE: ArnShape = ArnShape {
    service: "ec2",
    prefix: "instance/",
    regional: true,
    has_account: true,
};

impl Kind for Ec2Instance {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    // Members of a group go after the group's deletion; nothing else holds an instance.
    fn wait_for(&self) -> &'static [&'static str] {
        &[super::autoscaling_group::NAME]
    }
    fn part_kinds(&self) -> &'static [&'static str] {
        &[super::ebs_volume::NAME]
    }
    fn quota(&self) -> Option<Quota> {
        Some(Quota {
            dimension: "ec2_instances",
            measure: Measure::Count,
        })
    }
    fn cost(&self, r: &Resource, p: &Pricing) -> Cost {
        Pricing::lookup(
            &p.instance_hourly,
            r.attributes.instance_type.as_deref(),
            "instance type",
        )
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for Ec2Instance {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    fn native_id(&self, resource_part: &str) -> Option<String> {
        simple_id(resource_part, SHAPE.prefix)
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:DescribeInstances",
            "ec2:TerminateInstances",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let state_filter = Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                .build();
            let mut pages = aws
                .clients
                .ec2
                .describe_instances()
                .filters(state_filter)
                .max_results(aws.page(5, 1000))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                // The paginator sends the next request only when asked for the next page.
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list ec2-instance", &aws.scope_label()))?;
                for reservation in page.reservations() {
                    if let Some(owner) = reservation.owner_id() {
                        aws.check_account(owner, "an EC2 reservation")?;
                    }
                    for i in reservation.instances() {
                        if let Some(r) = resource(aws, i) {
                            out.push(r);
                        }
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
            aws.throttle().await;
            let sent = aws
                .clients
                .ec2
                .describe_instances()
                .instance_ids(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let instance = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find(|i| i.instance_id() == Some(native));
            Ok(instance.map(|i| {
                let tags = ec2_tags(i.tags());
                let never = tags.get(AUTOSCALING_GROUP_TAG).map(|group| {
                    format!(
                        "it belongs to Auto Scaling group {group}: removed only with its group (alone, the group would replace it)"
                    )
                });
                Current {
                    attributes: Some(crate::Attributes {
                        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
                        ..crate::Attributes::default()
                    }),
                    state: state_of(i).to_string(),
                    tags: Ok(tags),
                    never,
                }
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
        ec2_write_tags(aws, arn, native, set, remove).boxed()
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
                .ec2
                .terminate_instances()
                .instance_ids(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "terminate", arn)? else {
                return Ok(Removal::Done);
            };
            let state = out
                .terminating_instances()
                .iter()
                .find(|c| c.instance_id() == Some(native))
                .and_then(|c| c.current_state())
                .and_then(|s| s.name())
                .map_or("shutting-down", |n| n.as_str());
            Ok(if state == "terminated" {
                Removal::Done
            } else {
                Removal::Pending {
                    state: state.to_string(),
                }
            })
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        match state {
            "terminated" => Phase::Gone,
            "shutting-down" => Phase::Removing(Removal::Pending {
                state: state.to_string(),
            }),
            _ => Phase::Live,
        }
    }
}

fn state_of(i: &Instance) -> &str {
    i.state()
        .and_then(|s| s.name())
        .map_or("unknown", |n| n.as_str())
}

/// The resource for one listed instance, with what depends on it.
fn resource(aws: &AwsScope, i: &Instance) -> Option<Resource> {
    let id = i.instance_id()?;
    let state = state_of(i);
    if state == "terminated" {
        return None;
    }
    let mut r = aws.resource(NAME, aws.arn(SHAPE, id), id.to_string());
    r.tags = ec2_tags(i.tags());
    r.state = Some(state.to_string());
    r.attributes.instance_type = i.instance_type().map(|t| t.as_str().to_string());
    r.attributes.created = i
        .launch_time()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    let mut groups: Vec<&str> = i
        .security_groups()
        .iter()
        .chain(i.network_interfaces().iter().flat_map(|n| n.groups()))
        .filter_map(|g| g.group_id())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    r.refs.extend(
        groups
            .into_iter()
            .map(|g| Ref::new(Relation::Blocks, super::security_group::NAME, g)),
    );
    if let Some(profile) = i
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .and_then(|arn| arn.rsplit('/').next())
    {
        r.refs.push(Ref::new(
            Relation::Blocks,
            super::iam_role::NAME,
            super::iam_role::profile_key(profile),
        ));
    }
    // Its EBS volumes, as the instance sees them: those deleted on termination are parts of it
    // (a teardown listing reads them only when the instance is to go), the others wait for it.
    for mapping in i.block_device_mappings() {
        let Some(ebs) = mapping.ebs() else { continue };
        let Some(volume) = ebs.volume_id() else {
            continue;
        };
        let relation = if ebs.delete_on_termination() == Some(true) {
            Relation::Has
        } else {
            Relation::Blocks
        };
        r.refs
            .push(Ref::new(relation, super::ebs_volume::NAME, volume));
    }
    if let Some(group) = r.tags.get(AUTOSCALING_GROUP_TAG) {
        r.refs.push(Ref::new(
            Relation::PartOf,
            super::autoscaling_group::NAME,
            group.clone(),
        ));
    }
    Some(r)
}

/// The id after `prefix` when it is one plain segment (`instance/i-1` → `i-1`).
pub(crate) fn simple_id(resource_part: &str, prefix: &str) -> Option<String> {
    resource_part
        .strip_prefix(prefix)
        .filter(|id| !id.is_empty() && !id.contains([':', '/']))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        let k = Ec2Instance;
        assert_eq!(k.phase("terminated"), Phase::Gone);
        assert!(matches!(
            k.phase("shutting-down"),
            Phase::Removing(Removal::Pending { .. })
        ));
        assert_eq!(k.phase("stopped"), Phase::Live);
    }

    #[test]
    fn native_ids_are_one_segment() {
        let k = Ec2Instance;
        assert_eq!(k.native_id("instance/i-1"), Some("i-1".to_string()));
        assert_eq!(k.native_id("instance/"), None);
        assert_eq!(k.native_id("instance/i-1/x"), None);
        assert_eq!(k.native_id("volume/vol-1"), None);
    }
}
