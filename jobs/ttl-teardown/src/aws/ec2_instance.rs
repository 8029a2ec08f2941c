//! EC2 instances: every state but `terminated` is listed; removal is TerminateInstances, after
//! which the instance is `shutting-down` until it is `terminated` (gone).

use aws_sdk_ec2::types::Filter;

use super::error::Failure;
use super::{AwsProvider, Current, ec2_tags};
use crate::inventory::{CostBasis, Resource};
use crate::provider::{ProviderError, Removal};

/// Registry kind name.
pub(super) const KIND: &str = "ec2-instance";

/// Every instance state but `terminated`. A state AWS adds later is not listed, so not deleted.
const LIVE_STATES: &[&str] = &["pending", "running", "shutting-down", "stopping", "stopped"];

/// What AWS says when the instance does not exist (any more).
const NOT_FOUND: &[&str] = &["InvalidInstanceID.NotFound"];

/// A listed instance and the security groups it uses (its own and its interfaces').
pub(super) struct Listed {
    pub resource: Resource,
    pub groups: Vec<String>,
}

pub(super) async fn list(p: &AwsProvider) -> Result<Vec<Listed>, ProviderError> {
    let state_filter = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
        .build();
    let mut pages = p
        .ec2
        .describe_instances()
        .filters(state_filter)
        .max_results(p.ec2_page(1000))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    loop {
        // The paginator sends the next request only when asked for the next page.
        p.limiter.acquire().await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page =
            page.map_err(|e| Failure::of(&e).into_provider_error("list", &p.scope_label()))?;
        for reservation in page.reservations() {
            if let Some(owner) = reservation.owner_id() {
                p.check_account(owner, "an EC2 reservation")?;
            }
            for i in reservation.instances() {
                let Some(id) = i.instance_id() else { continue };
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map_or("unknown", |n| n.as_str());
                if state == "terminated" {
                    continue;
                }
                let mut groups: Vec<String> = i
                    .security_groups()
                    .iter()
                    .chain(i.network_interfaces().iter().flat_map(|n| n.groups()))
                    .filter_map(|g| g.group_id())
                    .map(str::to_string)
                    .collect();
                groups.sort();
                groups.dedup();
                let resource = p.resource(
                    KIND,
                    p.ec2_arn("instance", id),
                    id.to_string(),
                    ec2_tags(i.tags()),
                    state.to_string(),
                    CostBasis {
                        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
                        ..CostBasis::default()
                    },
                );
                out.push(Listed { resource, groups });
            }
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
    let out = match p.ec2.describe_instances().instance_ids(id).send().await {
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
    let instance = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id));
    Ok(instance.map(|i| Current {
        state: i
            .state()
            .and_then(|s| s.name())
            .map_or("unknown", |n| n.as_str())
            .to_string(),
        tags: Ok(ec2_tags(i.tags())),
        never: None,
    }))
}

pub(super) async fn delete(p: &AwsProvider, arn: &str, id: &str) -> Result<Removal, ProviderError> {
    p.limiter.acquire().await;
    match p.ec2.terminate_instances().instance_ids(id).send().await {
        Ok(out) => {
            let state = out
                .terminating_instances()
                .iter()
                .find(|c| c.instance_id() == Some(id))
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
        Err(e) => {
            let f = Failure::of(&e);
            if f.is(NOT_FOUND) {
                Ok(Removal::Done)
            } else {
                Err(f.into_provider_error("terminate", arn))
            }
        }
    }
}
