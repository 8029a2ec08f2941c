//! Lambda functions: tags from ListTags per function (GetFunction when describing one); removal
//! is DeleteFunction (every version and alias goes with it). A function's execution role and its
//! VPC security groups wait for it.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::FunctionConfiguration;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::AwsScope;
use crate::aws::error::{failed, found};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Measure, Platform, Quota, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `lambda-function`.
pub struct LambdaFunction;

/// Registry name.
pub const NAME: &str = "lambda-function";

/// What Lambda says when the function does not exist (any more).
const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

const SHAPE: ArnShape = ArnShape {
    service: "lambda",
    prefix: "function:",
    regional: true,
    has_account: true,
};

impl Kind for LambdaFunction {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn quota(&self) -> Option<Quota> {
        Some(Quota {
            dimension: "lambda_functions",
            measure: Measure::Count,
        })
    }
    // An idle function costs nothing; a busy one costs per request, which a pricing table of
    // hourly rates cannot say.
    fn cost(&self, _r: &Resource, _p: &Pricing) -> Cost {
        Cost::Unknown("priced per request, not per hour".to_string())
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for LambdaFunction {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    // `function:<name>`; a qualified ARN (`:<version or alias>`) is not the function itself.
    fn native_id(&self, resource_part: &str) -> Option<String> {
        super::ec2_instance::simple_id(resource_part, SHAPE.prefix)
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "lambda:DeleteFunction",
            "lambda:GetFunction",
            "lambda:ListFunctions",
            "lambda:ListTags",
            "lambda:TagResource",
            "lambda:UntagResource",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut pages = aws
                .clients
                .lambda
                .list_functions()
                .max_items(aws.page(1, 50))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page =
                    page.map_err(|e| failed(e, "list lambda-function", &aws.scope_label()))?;
                for f in page.functions() {
                    let Some(mut r) = resource(aws, f) else {
                        continue;
                    };
                    aws.throttle().await;
                    let sent = aws.clients.lambda.list_tags().resource(&r.id).send().await;
                    match found(sent, NOT_FOUND, "read tags of", &r.id) {
                        Ok(None) => continue, // deleted since the listing
                        Ok(Some(t)) => r.tags = tag_map(t.tags()),
                        Err(e) => r.tags_unreadable = Some(e.message),
                    }
                    out.push(r);
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
                .lambda
                .get_function()
                .function_name(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let tags = match out.tags_error() {
                Some(e) => Err(format!("tags unreadable: {}", e.message())),
                None => Ok(tag_map(out.tags())),
            };
            Ok(Some(Current {
                attributes: None,
                state: out
                    .configuration()
                    .and_then(|c| c.state())
                    .map_or("Active", |s| s.as_str())
                    .to_string(),
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
        async move {
            let lambda = &aws.clients.lambda;
            if !set.is_empty() {
                aws.throttle().await;
                lambda
                    .tag_resource()
                    .resource(arn)
                    .set_tags(Some(set.iter().cloned().collect()))
                    .send()
                    .await
                    .map_err(|e| failed(e, "tag", arn))?;
            }
            if !remove.is_empty() {
                aws.throttle().await;
                lambda
                    .untag_resource()
                    .resource(arn)
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
            aws.throttle().await;
            let sent = aws
                .clients
                .lambda
                .delete_function()
                .function_name(native)
                .send()
                .await;
            found(sent, NOT_FOUND, "delete", arn).map(|_| Removal::Done)
        }
        .boxed()
    }
}

fn tag_map(tags: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn resource(aws: &AwsScope, f: &FunctionConfiguration) -> Option<Resource> {
    let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else {
        return None;
    };
    let mut r = aws.resource(NAME, arn.to_string(), name.to_string());
    r.state = Some(f.state().map_or("Active", |s| s.as_str()).to_string());
    r.attributes.created = f.last_modified().and_then(last_modified);
    if let Some(role) = f.role().and_then(|arn| arn.rsplit('/').next()) {
        r.refs
            .push(Ref::new(Relation::Blocks, super::iam_role::NAME, role));
    }
    if let Some(vpc) = f.vpc_config() {
        r.refs.extend(
            vpc.security_group_ids()
                .iter()
                .map(|g| Ref::new(Relation::Blocks, super::security_group::NAME, g.as_str())),
        );
    }
    Some(r)
}

/// `LastModified` as a timestamp. AWS writes `2019-08-14T22:26:11.234+0000`; the documented
/// shape (`YYYY-MM-DDThh:mm:ss.sTZD`) also allows RFC 3339's `Z`, which moto writes
/// (`2026-01-02T03:04:05.306962000Z`).
fn last_modified(t: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", t)
        .ok()
        .and_then(|t| t.to_timestamp().ok())
        .or_else(|| t.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_in_either_offset_spelling() {
        let want: jiff::Timestamp = "2019-08-14T22:26:11.234Z".parse().expect("timestamp");
        assert_eq!(last_modified("2019-08-14T22:26:11.234+0000"), Some(want));
        assert_eq!(last_modified("2019-08-14T22:26:11.234000000Z"), Some(want));
        assert_eq!(last_modified("yesterday"), None);
    }
}
