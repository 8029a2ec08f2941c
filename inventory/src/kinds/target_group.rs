//! ELBv2 target groups: they wait for the load balancers that route to them (DescribeTargetGroups
//! names them); removal is DeleteTargetGroup, which fails with the retryable `ResourceInUse`
//! while a listener still forwards to the group. Registered targets do not hold a group: an
//! instance can be terminated while registered, and a group deleted with targets in it.

use aws_sdk_elasticloadbalancingv2::types::TargetGroup as Tg;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::load_balancer::{tags_of, write_tags};
use crate::aws::AwsScope;
use crate::aws::error::{failed, found};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Platform, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `target-group`.
pub struct TargetGroup;

/// Registry name.
pub const NAME: &str = "target-group";

/// What ELBv2 says when the target group does not exist (any more).
const NOT_FOUND: &[&str] = &["TargetGroupNotFound", "TargetGroupNotFoundException"];

const SHAPE: ArnShape = ArnShape {
    service: "elasticloadbalancing",
    prefix: "targetgroup/",
    regional: true,
    has_account: true,
};

impl Kind for TargetGroup {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[super::load_balancer::NAME]
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for TargetGroup {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    fn native_id(&self, resource_part: &str) -> Option<String> {
        let rest = resource_part.strip_prefix(SHAPE.prefix)?;
        (rest.split('/').count() == 2 && !rest.starts_with('/') && !rest.ends_with('/'))
            .then(|| resource_part.to_string())
    }
    // `targetgroup/<name>/<id>` → `<name>`, as DescribeTargetGroups names it.
    fn name_of(&self, native: &str) -> String {
        native.split('/').nth(1).unwrap_or(native).to_string()
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:RemoveTags",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut pages = aws
                .clients
                .elbv2
                .describe_target_groups()
                .page_size(aws.page(1, 400))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list target-group", &aws.scope_label()))?;
                out.extend(
                    page.target_groups()
                        .iter()
                        .filter_map(|tg| resource(aws, tg)),
                );
            }
            let arns: Vec<String> = out.iter().map(|r| r.id.clone()).collect();
            let mut tags = tags_of(aws, &arns, "list target-group").await?;
            for r in &mut out {
                r.tags = tags.remove(&r.id).unwrap_or_default();
            }
            Ok(out)
        }
        .boxed()
    }

    fn describe<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        _native: &'a str,
    ) -> BoxFuture<'a, Result<Option<Current>, ProviderError>> {
        async move {
            aws.throttle().await;
            let sent = aws
                .clients
                .elbv2
                .describe_target_groups()
                .target_group_arns(arn)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            if !out
                .target_groups()
                .iter()
                .any(|tg| tg.target_group_arn() == Some(arn))
            {
                return Ok(None);
            }
            let tags = tags_of(aws, &[arn.to_string()], "describe")
                .await
                .map(|mut t| t.remove(arn).unwrap_or_default())
                .map_err(|e| e.message);
            Ok(Some(Current {
                attributes: None,
                state: "available".to_string(),
                tags,
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
        write_tags(aws, arn, set, remove).boxed()
    }

    fn delete<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        _native: &'a str,
    ) -> BoxFuture<'a, Result<Removal, ProviderError>> {
        async move {
            aws.throttle().await;
            let sent = aws
                .clients
                .elbv2
                .delete_target_group()
                .target_group_arn(arn)
                .send()
                .await;
            found(sent, NOT_FOUND, "delete", arn).map(|_| Removal::Done)
        }
        .boxed()
    }
}

fn resource(aws: &AwsScope, tg: &Tg) -> Option<Resource> {
    let (Some(arn), Some(name)) = (tg.target_group_arn(), tg.target_group_name()) else {
        return None;
    };
    let mut r = aws.resource(NAME, arn.to_string(), name.to_string());
    r.keys.push(arn.to_string());
    r.state = Some("available".to_string());
    r.refs.extend(
        tg.load_balancer_arns()
            .iter()
            .map(|lb| Ref::new(Relation::WaitsFor, super::load_balancer::NAME, lb.as_str())),
    );
    Some(r)
}
