//! Elastic Load Balancing v2 load balancers (application and network). Tags come from
//! DescribeTags, 20 ARNs per call; removal is DeleteLoadBalancer, which deletes the load
//! balancer's listeners with it (their rules go with them, which is what frees its target
//! groups). The security groups of an application load balancer wait for it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer as Lb, Tag};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::error::{failed, found};
use crate::aws::{AwsScope, tag_map};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Phase, Platform, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `load-balancer`.
pub struct LoadBalancer;

/// Registry name.
pub const NAME: &str = "load-balancer";

/// What ELBv2 says when the load balancer does not exist (any more).
const NOT_FOUND: &[&str] = &["LoadBalancerNotFound", "LoadBalancerNotFoundException"];

/// DescribeTags takes at most this many ARNs.
const TAGS_PER_CALL: usize = 20;

const SHAPE: ArnShape = ArnShape {
    service: "elasticloadbalancing",
    prefix: "loadbalancer/",
    regional: true,
    has_account: true,
};

impl Kind for LoadBalancer {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn cost(&self, _r: &Resource, p: &Pricing) -> Cost {
        match p.load_balancer_hourly {
            Some(h) => Cost::Hourly(h),
            None => Cost::Unknown("no load_balancer_hourly in the pricing table".to_string()),
        }
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for LoadBalancer {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    // The API takes the ARN; the native id is the resource part (`loadbalancer/app/web/…`).
    fn native_id(&self, resource_part: &str) -> Option<String> {
        let rest = resource_part.strip_prefix(SHAPE.prefix)?;
        (rest.split('/').count() == 3 && !rest.contains("//")).then(|| resource_part.to_string())
    }
    // `loadbalancer/<type>/<name>/<id>` → `<name>`, as DescribeLoadBalancers names it.
    fn name_of(&self, native: &str) -> String {
        native.split('/').nth(2).unwrap_or(native).to_string()
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTags",
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
                .describe_load_balancers()
                .page_size(aws.page(1, 400))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list load-balancer", &aws.scope_label()))?;
                out.extend(
                    page.load_balancers()
                        .iter()
                        .filter_map(|lb| resource(aws, lb)),
                );
            }
            let arns: Vec<String> = out.iter().map(|r| r.id.clone()).collect();
            let mut tags = tags_of(aws, &arns, "list load-balancer").await?;
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
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let Some(lb) = out
                .load_balancers()
                .iter()
                .find(|lb| lb.load_balancer_arn() == Some(arn))
            else {
                return Ok(None);
            };
            let tags = tags_of(aws, &[arn.to_string()], "describe")
                .await
                .map(|mut t| t.remove(arn).unwrap_or_default())
                .map_err(|e| e.message);
            Ok(Some(Current {
                attributes: None,
                state: state_of(lb).to_string(),
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
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
                .await;
            // Accepted: AWS releases the network interfaces afterwards; dependants poll.
            Ok(match found(sent, NOT_FOUND, "delete", arn)? {
                None => Removal::Done,
                Some(_) => Removal::Pending {
                    state: "deleting".to_string(),
                },
            })
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        match state {
            "deleting" => Phase::Removing(Removal::Pending {
                state: state.to_string(),
            }),
            _ => Phase::Live,
        }
    }
}

fn state_of(lb: &Lb) -> &str {
    lb.state()
        .and_then(|s| s.code())
        .map_or("unknown", |c| c.as_str())
}

fn resource(aws: &AwsScope, lb: &Lb) -> Option<Resource> {
    let (Some(arn), Some(name)) = (lb.load_balancer_arn(), lb.load_balancer_name()) else {
        return None;
    };
    let mut r = aws.resource(NAME, arn.to_string(), name.to_string());
    r.keys.push(arn.to_string());
    r.state = Some(state_of(lb).to_string());
    r.attributes.created = lb
        .created_time()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    r.refs.extend(
        lb.security_groups()
            .iter()
            .map(|g| Ref::new(Relation::Blocks, super::security_group::NAME, g.as_str())),
    );
    Some(r)
}

/// The tags of ELBv2 resources (load balancers and target groups), by ARN, 20 per call.
pub(crate) async fn tags_of(
    aws: &AwsScope,
    arns: &[String],
    action: &str,
) -> Result<HashMap<String, BTreeMap<String, String>>, ProviderError> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        aws.throttle().await;
        let answer = aws
            .clients
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| failed(e, &format!("{action} (tags)"), &aws.scope_label()))?;
        for d in answer.tag_descriptions() {
            if let Some(arn) = d.resource_arn() {
                out.insert(
                    arn.to_string(),
                    tag_map(d.tags().iter().map(|t| (t.key(), t.value()))),
                );
            }
        }
    }
    Ok(out)
}

/// AddTags / RemoveTags on one ELBv2 resource.
pub(crate) async fn write_tags(
    aws: &AwsScope,
    arn: &str,
    set: &[(String, String)],
    remove: &[String],
) -> Result<(), ProviderError> {
    let elbv2 = &aws.clients.elbv2;
    if !set.is_empty() {
        aws.throttle().await;
        elbv2
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(
                set.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| failed(e, "tag", arn))?;
    }
    if !remove.is_empty() {
        aws.throttle().await;
        elbv2
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(|e| failed(e, "untag", arn))?;
    }
    Ok(())
}
