//! Security groups: removal is DeleteSecurityGroup, which fails with the retryable
//! `DependencyViolation` while anything still uses or references the group.
//!
//! What uses a group says so from its own listing (instances and their network interfaces, DB
//! instances, load balancers, Lambda functions: [`Relation::Blocks`]); a group whose rules
//! reference another group blocks that one too. A group held by something no kind lists (a VPC
//! endpoint's or an EKS control plane's network interface) is not known to be in use: deleting it
//! fails with `DependencyViolation`, which is retryable, and it stays for the next run. Listing
//! every network interface to find those would cost a second large listing per region for a
//! reason the error already gives.
//!
//! `default` groups are never listed and never removed: AWS refuses to delete them anyway.

use aws_sdk_ec2::types::SecurityGroup as Group;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::ec2_instance::simple_id;
use crate::aws::error::{Failure, failed, found, refusal};
use crate::aws::{AwsScope, ec2_tags, ec2_write_tags};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Platform, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `security-group`.
pub struct SecurityGroup;

/// Registry name.
pub const NAME: &str = "security-group";

/// Security groups have no lifecycle state in AWS; this is what a usable group is listed as.
pub const AVAILABLE: &str = "available";

/// What AWS says when the group does not exist (any more).
const NOT_FOUND: &[&str] = &["InvalidGroup.NotFound", "InvalidGroupId.NotFound"];

const SHAPE: ArnShape = ArnShape {
    service: "ec2",
    prefix: "security-group/",
    regional: true,
    has_account: true,
};

impl Kind for SecurityGroup {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[
            super::ec2_instance::NAME,
            super::rds_instance::NAME,
            super::load_balancer::NAME,
            super::lambda_function::NAME,
        ]
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for SecurityGroup {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    fn native_id(&self, resource_part: &str) -> Option<String> {
        simple_id(resource_part, SHAPE.prefix)
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "ec2:CreateTags",
            "ec2:DeleteSecurityGroup",
            "ec2:DeleteTags",
            "ec2:DescribeSecurityGroups",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut pages = aws
                .clients
                .ec2
                .describe_security_groups()
                .max_results(aws.page(5, 1000))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page =
                    page.map_err(|e| failed(e, "list security-group", &aws.scope_label()))?;
                out.extend(
                    page.security_groups()
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
            let sent = aws
                .clients
                .ec2
                .describe_security_groups()
                .group_ids(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let group = out
                .security_groups()
                .iter()
                .find(|g| g.group_id() == Some(native));
            Ok(group.map(|g| Current {
                attributes: None,
                state: AVAILABLE.to_string(),
                tags: Ok(ec2_tags(g.tags())),
                never: (g.group_name() == Some("default"))
                    .then(|| "a default security group is never deleted".to_string()),
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
            match aws
                .clients
                .ec2
                .delete_security_group()
                .group_id(native)
                .send()
                .await
            {
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
        .boxed()
    }
}

fn resource(aws: &AwsScope, g: &Group) -> Option<Resource> {
    let id = g.group_id()?;
    if g.group_name() == Some("default") {
        return None;
    }
    if let Some(owner) = g.owner_id()
        && owner != aws.account()
    {
        // Another account's group seen through a shared VPC: not ours to delete.
        tracing::debug!(
            group = id,
            owner,
            "skipping a security group of another account"
        );
        return None;
    }
    let mut r = aws.resource(NAME, aws.arn(SHAPE, id), id.to_string());
    r.tags = ec2_tags(g.tags());
    r.state = Some(AVAILABLE.to_string());
    let mut referenced: Vec<&str> = g
        .ip_permissions()
        .iter()
        .chain(g.ip_permissions_egress())
        .flat_map(|rule| rule.user_id_group_pairs())
        .filter_map(|pair| pair.group_id())
        .filter(|other| *other != id)
        .collect();
    referenced.sort_unstable();
    referenced.dedup();
    // A group whose rules name another group must go first: the other waits for it.
    r.refs.extend(
        referenced
            .into_iter()
            .map(|other| Ref::new(Relation::Blocks, NAME, other)),
    );
    Some(r)
}
