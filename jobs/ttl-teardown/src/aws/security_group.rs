//! Security groups: listed with the groups their rules reference, and the network interfaces
//! that use groups (for dependencies); removal is DeleteSecurityGroup, which fails with the
//! retryable `DependencyViolation` while anything still uses or references the group.
//!
//! `default` groups are never listed and never removed: AWS refuses to delete them anyway.

use super::error::{Failure, refusal};
use super::{AwsProvider, Current, ec2_tags};
use crate::inventory::{CostBasis, Resource};
use crate::provider::{ProviderError, Removal};

/// Registry kind name.
pub(super) const KIND: &str = "security-group";

/// Security groups have no lifecycle state in AWS; this is what a usable group is listed as.
pub(super) const AVAILABLE: &str = "available";

/// What AWS says when the group does not exist (any more).
const NOT_FOUND: &[&str] = &["InvalidGroup.NotFound"];

/// A listed group and the groups its ingress and egress rules reference.
pub(super) struct Listed {
    pub resource: Resource,
    pub references: Vec<String>,
}

/// A network interface: what it is attached to and the groups it uses.
pub(super) struct Interface {
    pub id: String,
    pub instance: Option<String>,
    pub groups: Vec<String>,
}

pub(super) async fn list(p: &AwsProvider) -> Result<Vec<Listed>, ProviderError> {
    let mut pages = p
        .ec2
        .describe_security_groups()
        .max_results(p.ec2_page(1000))
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
        for g in page.security_groups() {
            let Some(id) = g.group_id() else { continue };
            if g.group_name() == Some("default") {
                continue;
            }
            if let Some(owner) = g.owner_id()
                && owner != p.account
            {
                // Another account's group seen through a shared VPC: not ours to delete.
                tracing::debug!(
                    group = id,
                    owner,
                    "skipping a security group of another account"
                );
                continue;
            }
            let mut references: Vec<String> = g
                .ip_permissions()
                .iter()
                .chain(g.ip_permissions_egress())
                .flat_map(|rule| rule.user_id_group_pairs())
                .filter_map(|pair| pair.group_id())
                .filter(|other| *other != id)
                .map(str::to_string)
                .collect();
            references.sort();
            references.dedup();
            let resource = p.resource(
                KIND,
                p.ec2_arn("security-group", id),
                id.to_string(),
                ec2_tags(g.tags()),
                AVAILABLE.to_string(),
                CostBasis::default(),
            );
            out.push(Listed {
                resource,
                references,
            });
        }
    }
    Ok(out)
}

pub(super) async fn list_interfaces(p: &AwsProvider) -> Result<Vec<Interface>, ProviderError> {
    let mut pages = p
        .ec2
        .describe_network_interfaces()
        .max_results(p.ec2_page(1000))
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
        for n in page.network_interfaces() {
            let Some(id) = n.network_interface_id() else {
                continue;
            };
            out.push(Interface {
                id: id.to_string(),
                instance: n
                    .attachment()
                    .and_then(|a| a.instance_id())
                    .map(str::to_string),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id())
                    .map(str::to_string)
                    .collect(),
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
    let out = match p.ec2.describe_security_groups().group_ids(id).send().await {
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
    let group = out
        .security_groups()
        .iter()
        .find(|g| g.group_id() == Some(id));
    Ok(group.map(|g| Current {
        state: AVAILABLE.to_string(),
        tags: Ok(ec2_tags(g.tags())),
        never: (g.group_name() == Some("default"))
            .then(|| "a default security group is never deleted".to_string()),
    }))
}

pub(super) async fn delete(p: &AwsProvider, arn: &str, id: &str) -> Result<Removal, ProviderError> {
    p.limiter.acquire().await;
    match p.ec2.delete_security_group().group_id(id).send().await {
        Ok(_) => Ok(Removal::Done),
        Err(e) => {
            let f = Failure::of(&e);
            if f.is(NOT_FOUND) {
                Ok(Removal::Done)
            } else if f.is(&["CannotDelete"]) {
                Err(refusal("delete", arn, f.message))
            } else {
                Err(f.into_provider_error("delete", arn))
            }
        }
    }
}
