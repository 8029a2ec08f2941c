//! EBS volumes: listed with their size and the instances they are attached to; removal is
//! DeleteVolume (an attached volume fails with the retryable `VolumeInUse`).

use super::error::Failure;
use super::{AwsProvider, Current, ec2_tags};
use crate::inventory::{CostBasis, Resource};
use crate::provider::{ProviderError, Removal};

/// Registry kind name.
pub(super) const KIND: &str = "ebs-volume";

/// What AWS says when the volume does not exist (any more).
const NOT_FOUND: &[&str] = &["InvalidVolume.NotFound"];

/// A listed volume and the instances it is attached to.
pub(super) struct Listed {
    pub resource: Resource,
    pub attached_to: Vec<String>,
}

pub(super) async fn list(p: &AwsProvider) -> Result<Vec<Listed>, ProviderError> {
    let mut pages = p
        .ec2
        .describe_volumes()
        .max_results(p.ec2_page(500))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    loop {
        p.limiter.acquire().await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page =
            page.map_err(|e| Failure::of(&e).into_provider_error("list", &p.scope_label()))?;
        for v in page.volumes() {
            let Some(id) = v.volume_id() else { continue };
            let state = v.state().map_or("unknown", |s| s.as_str());
            if state == "deleted" {
                continue;
            }
            let attached_to = v
                .attachments()
                .iter()
                .filter_map(|a| a.instance_id())
                .map(str::to_string)
                .collect();
            let resource = p.resource(
                KIND,
                p.ec2_arn("volume", id),
                id.to_string(),
                ec2_tags(v.tags()),
                state.to_string(),
                CostBasis {
                    size_gb: v.size().map(f64::from),
                    ..CostBasis::default()
                },
            );
            out.push(Listed {
                resource,
                attached_to,
            });
        }
    }
    Ok(out)
}

pub(super) async fn describe(
    p: &AwsProvider,
    arn: &str,
    id: &str,
) -> Result<Option<Current>, ProviderError> {
    p.limiter.acquire().await;
    let out = match p.ec2.describe_volumes().volume_ids(id).send().await {
        Ok(out) => out,
        Err(e) => {
            let f = Failure::of(&e);
            return if f.is(NOT_FOUND) {
                Ok(None)
            } else {
                Err(f.into_provider_error("describe", arn))
            };
        }
    };
    let volume = out.volumes().iter().find(|v| v.volume_id() == Some(id));
    Ok(volume.map(|v| Current {
        state: v.state().map_or("unknown", |s| s.as_str()).to_string(),
        tags: Ok(ec2_tags(v.tags())),
        never: None,
    }))
}

pub(super) async fn delete(p: &AwsProvider, arn: &str, id: &str) -> Result<Removal, ProviderError> {
    p.limiter.acquire().await;
    match p.ec2.delete_volume().volume_id(id).send().await {
        Ok(_) => Ok(Removal::Done),
        Err(e) => {
            let f = Failure::of(&e);
            if f.is(NOT_FOUND) {
                Ok(Removal::Done)
            } else {
                Err(f.into_provider_error("delete", arn))
            }
        }
    }
}
