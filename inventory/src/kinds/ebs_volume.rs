//! EBS volumes: listed with their size and attachments; removal is DeleteVolume (an attached
//! volume fails with the retryable `VolumeInUse`).
//!
//! A volume attached with DeleteOnTermination (an instance's root volume, by default) is part
//! of its instance: it goes when the instance is terminated, is never removed on its own and is
//! no tag violation (AWS leaves root volumes untagged). Any other attached volume waits for the
//! instances it is attached to.
//!
//! A teardown listing ([`AwsKind::list_candidates`]) reads the volumes no instance holds and
//! the attached ones the instances' listing says are not deleted with them; root volumes are
//! read by id for the instances a plan removes. Usage reports list every volume (quotas count
//! their GiB).

use std::collections::HashSet;

use aws_sdk_ec2::types::{Filter, Volume};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::ec2_instance::simple_id;
use crate::aws::error::{failed, found};
use crate::aws::{AwsScope, ec2_tags, ec2_write_tags};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Measure, Phase, Platform, Quota, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `ebs-volume`.
pub struct EbsVolume;

/// Registry name.
pub const NAME: &str = "ebs-volume";

/// What AWS says when the volume does not exist (any more).
const NOT_FOUND: &[&str] = &["InvalidVolume.NotFound"];

/// Every volume state but `in-use` (and `deleted`, which is gone): the volumes no instance holds.
const UNATTACHED_STATES: &[&str] = &["creating", "available", "deleting", "error"];

/// Values in one DescribeVolumes filter (EC2 takes up to 200).
const IDS_PER_FILTER: usize = 200;

const SHAPE: ArnShape = ArnShape {
    service: "ec2",
    prefix: "volume/",
    regional: true,
    has_account: true,
};

impl Kind for EbsVolume {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[super::ec2_instance::NAME]
    }
    fn quota(&self) -> Option<Quota> {
        Some(Quota {
            dimension: "ebs_volume_gb",
            measure: Measure::SizeGb,
        })
    }
    fn cost(&self, r: &Resource, p: &Pricing) -> Cost {
        Pricing::per_gb(r.attributes.size_gb, p.ebs_gb_month)
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for EbsVolume {
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
            "ec2:DeleteVolume",
            "ec2:DescribeVolumes",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        list_filtered(aws, None).boxed()
    }

    // The volumes no instance holds (one listing filtered by state), and those the instances
    // say are attached but not deleted with them (read by id). The root volumes, most of an
    // account's volumes, are parts of their instances: read only for the instances a plan
    // removes (`read`).
    fn list_candidates<'a>(
        &'a self,
        aws: &'a AwsScope,
        listed: &'a [Resource],
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let unattached = Filter::builder()
                .name("status")
                .set_values(Some(
                    UNATTACHED_STATES.iter().map(|s| s.to_string()).collect(),
                ))
                .build();
            let mut out = list_filtered(aws, Some(unattached)).await?;
            let mut seen: HashSet<String> = out.iter().map(|r| r.id.clone()).collect();
            let mut attached: Vec<String> = listed
                .iter()
                .filter(|r| r.kind == super::ec2_instance::NAME)
                .flat_map(|r| &r.refs)
                .filter(|x| x.kind == NAME && x.relation == Relation::Blocks)
                .map(|x| x.key.clone())
                .collect();
            attached.sort_unstable();
            attached.dedup();
            // A volume detached between the two calls would come twice.
            for r in self.read(aws, &attached).await? {
                if seen.insert(r.id.clone()) {
                    out.push(r);
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn read<'a>(
        &'a self,
        aws: &'a AwsScope,
        natives: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut out = Vec::new();
            // A `volume-id` filter, not VolumeIds: an id that is gone is left out instead of
            // failing the whole call with InvalidVolume.NotFound.
            for ids in natives.chunks(IDS_PER_FILTER) {
                let by_id = Filter::builder()
                    .name("volume-id")
                    .set_values(Some(ids.to_vec()))
                    .build();
                out.extend(list_filtered(aws, Some(by_id)).await?);
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
                .describe_volumes()
                .volume_ids(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let volume = out.volumes().iter().find(|v| v.volume_id() == Some(native));
            Ok(volume.map(|v| Current {
                attributes: None,
                state: v.state().map_or("unknown", |s| s.as_str()).to_string(),
                tags: Ok(ec2_tags(v.tags())),
                never: None,
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
                .delete_volume()
                .volume_id(native)
                .send()
                .await;
            found(sent, NOT_FOUND, "delete", arn).map(|_| Removal::Done)
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        match state {
            "deleted" => Phase::Gone,
            // Nothing waits for volumes: a deletion under way is as good as done.
            "deleting" => Phase::Removing(Removal::Done),
            _ => Phase::Live,
        }
    }
}

/// DescribeVolumes, every page, with one filter or none.
async fn list_filtered(
    aws: &AwsScope,
    filter: Option<Filter>,
) -> Result<Vec<Resource>, ProviderError> {
    let mut pages = aws
        .clients
        .ec2
        .describe_volumes()
        .set_filters(filter.map(|f| vec![f]))
        .max_results(aws.page(5, 500))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    loop {
        aws.throttle().await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| failed(e, "list ebs-volume", &aws.scope_label()))?;
        out.extend(page.volumes().iter().filter_map(|v| resource(aws, v)));
    }
    Ok(out)
}

fn resource(aws: &AwsScope, v: &Volume) -> Option<Resource> {
    let id = v.volume_id()?;
    let state = v.state().map_or("unknown", |s| s.as_str());
    if state == "deleted" {
        return None;
    }
    let mut r = aws.resource(NAME, aws.arn(SHAPE, id), id.to_string());
    r.tags = ec2_tags(v.tags());
    r.state = Some(state.to_string());
    r.attributes.size_gb = v.size().map(f64::from);
    r.attributes.created = v
        .create_time()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    for a in v.attachments() {
        let Some(instance) = a.instance_id() else {
            continue;
        };
        let relation = if a.delete_on_termination() == Some(true) {
            Relation::PartOf
        } else {
            Relation::WaitsFor
        };
        r.refs
            .push(Ref::new(relation, super::ec2_instance::NAME, instance));
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{VolumeAttachment, VolumeState};

    use super::*;

    // moto leaves `DeleteOnTermination` out of DescribeVolumes' attachments (its own
    // DescribeInstances shows it), so the provider tests against moto only see the other case.
    #[test]
    fn an_attachment_with_delete_on_termination_makes_the_volume_part_of_its_instance() {
        let scope = crate::aws::tests::scope();
        let volume = |delete_on_termination: Option<bool>| {
            Volume::builder()
                .volume_id("vol-1")
                .state(VolumeState::InUse)
                .size(8)
                .attachments(
                    VolumeAttachment::builder()
                        .instance_id("i-1")
                        .set_delete_on_termination(delete_on_termination)
                        .build(),
                )
                .build()
        };
        let relations = |v: &Volume| {
            resource(&scope, v)
                .expect("listed")
                .refs
                .into_iter()
                .map(|r| (r.relation, r.kind, r.key))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            relations(&volume(Some(true))),
            [(Relation::PartOf, "ec2-instance", "i-1".to_string())]
        );
        for other in [Some(false), None] {
            assert_eq!(
                relations(&volume(other)),
                [(Relation::WaitsFor, "ec2-instance", "i-1".to_string())],
                "{other:?}"
            );
        }
    }
}
