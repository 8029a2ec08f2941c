//! IAM roles, global to an account: listed once from the account's home scope with
//! GetAccountAuthorizationDetails (roles with their tags, instance profiles and policies in one
//! paginated call, instead of a ListRoleTags per role).
//!
//! Only roles that carry tags are listed: an account's untagged infrastructure roles are not
//! governed by the tagging standard (a tagged role that breaks it is a tag violation like any
//! other resource), and AWS's service-linked roles (`/aws-service-role/`, `/aws-reserved/`) are
//! never listed.
//!
//! Removal, in the order IAM requires: detach managed policies, delete inline policies, remove
//! the role from its instance profiles and delete those, then delete the role. Each step is
//! idempotent (NoSuchEntity is done), so a removal cut short is finished by the next run. The
//! instances, Lambda functions and node groups using the role block it: a role is removed after
//! them, so it never breaks something that stays.

use aws_sdk_iam::types::{EntityType, RoleDetail, Tag};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::error::{failed, found};
use crate::aws::{AwsScope, tag_map};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Platform, Removal};
use crate::resource::Resource;

/// `iam-role`.
pub struct IamRole;

/// Registry name.
pub const NAME: &str = "iam-role";

/// What IAM says when the role (or a policy, a profile) does not exist (any more).
const NOT_FOUND: &[&str] = &["NoSuchEntity", "NoSuchEntityException"];

/// Paths of roles AWS manages; never listed, never removed.
const AWS_PATHS: &[&str] = &["/aws-service-role/", "/aws-reserved/"];

const SHAPE: ArnShape = ArnShape {
    service: "iam",
    prefix: "role/",
    regional: false,
    has_account: true,
};

/// The key by which an instance finds the role of its instance profile.
pub fn profile_key(profile: &str) -> String {
    format!("instance-profile/{profile}")
}

impl Kind for IamRole {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[
            super::ec2_instance::NAME,
            super::lambda_function::NAME,
            super::eks_nodegroup::NAME,
        ]
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for IamRole {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    // Role names are unique in an account whatever their path: the last segment.
    fn native_id(&self, resource_part: &str) -> Option<String> {
        resource_part
            .strip_prefix(SHAPE.prefix)?
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }
    fn global(&self) -> bool {
        true
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "iam:DeleteInstanceProfile",
            "iam:DeleteRole",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:GetAccountAuthorizationDetails",
            "iam:GetRole",
            "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole",
            "iam:ListRolePolicies",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:TagRole",
            "iam:UntagRole",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut pages = aws
                .clients
                .iam
                .get_account_authorization_details()
                .filter(EntityType::Role)
                .max_items(aws.page(1, 1000))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list iam-role", &aws.scope_label()))?;
                out.extend(
                    page.role_detail_list()
                        .iter()
                        .filter_map(|d| resource(aws, d)),
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
            let sent = aws.clients.iam.get_role().role_name(native).send().await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            Ok(out.role().map(|role| Current {
                attributes: None,
                state: "available".to_string(),
                tags: Ok(tag_map(
                    role.tags().iter().map(|t| (Some(t.key()), Some(t.value()))),
                )),
                never: AWS_PATHS
                    .iter()
                    .any(|p| role.path().starts_with(p))
                    .then(|| format!("{} is a role AWS manages", role.path())),
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
            let iam = &aws.clients.iam;
            if !set.is_empty() {
                let tags = set
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ProviderError::refusal("tag", arn, e.to_string()))?;
                aws.throttle().await;
                iam.tag_role()
                    .role_name(native)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| failed(e, "tag", arn))?;
            }
            if !remove.is_empty() {
                aws.throttle().await;
                iam.untag_role()
                    .role_name(native)
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
            let iam = &aws.clients.iam;
            aws.throttle().await;
            let attached = iam
                .list_attached_role_policies()
                .role_name(native)
                .send()
                .await;
            let Some(attached) = found(attached, NOT_FOUND, "list attached policies of", arn)?
            else {
                return Ok(Removal::Done);
            };
            for p in attached.attached_policies() {
                let Some(policy) = p.policy_arn() else {
                    continue;
                };
                aws.throttle().await;
                let sent = iam
                    .detach_role_policy()
                    .role_name(native)
                    .policy_arn(policy)
                    .send()
                    .await;
                found(sent, NOT_FOUND, &format!("detach {policy} from"), arn)?;
            }
            aws.throttle().await;
            let inline = iam.list_role_policies().role_name(native).send().await;
            if let Some(inline) = found(inline, NOT_FOUND, "list inline policies of", arn)? {
                for name in inline.policy_names() {
                    aws.throttle().await;
                    let sent = iam
                        .delete_role_policy()
                        .role_name(native)
                        .policy_name(name)
                        .send()
                        .await;
                    found(
                        sent,
                        NOT_FOUND,
                        &format!("delete inline policy {name} of"),
                        arn,
                    )?;
                }
            }
            aws.throttle().await;
            let profiles = iam
                .list_instance_profiles_for_role()
                .role_name(native)
                .send()
                .await;
            if let Some(profiles) = found(profiles, NOT_FOUND, "list instance profiles of", arn)? {
                for p in profiles.instance_profiles() {
                    let profile = p.instance_profile_name();
                    aws.throttle().await;
                    let sent = iam
                        .remove_role_from_instance_profile()
                        .instance_profile_name(profile)
                        .role_name(native)
                        .send()
                        .await;
                    found(
                        sent,
                        NOT_FOUND,
                        &format!("remove from instance profile {profile}"),
                        arn,
                    )?;
                    // A profile holds one role at most: without it, it is of no use to anyone.
                    aws.throttle().await;
                    let sent = iam
                        .delete_instance_profile()
                        .instance_profile_name(profile)
                        .send()
                        .await;
                    found(
                        sent,
                        NOT_FOUND,
                        &format!("delete instance profile {profile} of"),
                        arn,
                    )?;
                }
            }
            aws.throttle().await;
            let sent = iam.delete_role().role_name(native).send().await;
            found(sent, NOT_FOUND, "delete", arn).map(|_| Removal::Done)
        }
        .boxed()
    }
}

fn resource(aws: &AwsScope, d: &RoleDetail) -> Option<Resource> {
    let (Some(name), Some(arn)) = (d.role_name(), d.arn()) else {
        return None;
    };
    let path = d.path().unwrap_or("/");
    if AWS_PATHS.iter().any(|p| path.starts_with(p)) {
        return None;
    }
    if d.tags().is_empty() {
        return None;
    }
    let mut r = aws.resource(NAME, arn.to_string(), name.to_string());
    r.tags = tag_map(d.tags().iter().map(|t| (Some(t.key()), Some(t.value()))));
    r.state = Some("available".to_string());
    r.attributes.created = d
        .create_date()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    r.keys.extend(
        d.instance_profile_list()
            .iter()
            .map(|p| profile_key(p.instance_profile_name())),
    );
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_come_from_the_last_path_segment() {
        let k = IamRole;
        assert_eq!(k.native_id("role/app"), Some("app".into()));
        assert_eq!(k.native_id("role/team/app"), Some("app".into()));
        assert_eq!(k.native_id("role/"), None);
        assert_eq!(k.native_id("user/bob"), None);
    }
}
