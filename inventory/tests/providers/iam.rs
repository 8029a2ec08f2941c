//! IAM roles against moto: a tagged role with a managed policy, an inline policy and an
//! instance profile used by an instance waits for the instance; removal takes it apart in the
//! order IAM requires; untagged and AWS-managed roles are not listed.
//!
//! moto 5.2 answers GetAccountAuthorizationDetails in one page whatever `MaxItems` says.

use anyhow::Result;
use inventory::{Removal, Scope, State};

use crate::bed::{ACCOUNT, Bed, REGION, eligible, find, list};
use crate::guard::KeepGuard;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

#[tokio::test]
async fn a_role_waits_for_its_instance_and_is_taken_apart_in_order() -> Result<()> {
    let bed = Bed::start().await?;
    let role_arn = bed.role("web-role", &eligible("web-role")).await?;
    let policy = bed
        .iam
        .create_policy()
        .policy_name("web-read")
        .policy_document(POLICY)
        .send()
        .await?
        .policy()
        .and_then(|p| p.arn())
        .map(str::to_string)
        .expect("policy ARN");
    bed.iam
        .attach_role_policy()
        .role_name("web-role")
        .policy_arn(&policy)
        .send()
        .await?;
    bed.iam
        .put_role_policy()
        .role_name("web-role")
        .policy_name("inline-read")
        .policy_document(POLICY)
        .send()
        .await?;
    bed.iam
        .create_instance_profile()
        .instance_profile_name("web-profile")
        .send()
        .await?;
    bed.iam
        .add_role_to_instance_profile()
        .instance_profile_name("web-profile")
        .role_name("web-role")
        .send()
        .await?;
    let ami = bed.ami().await?;
    let web = bed
        .instance_with(&ami, &[], &eligible("web"), Some("web-profile"))
        .await?;
    // Not listed: untagged (not governed by the tagging standard), and a role AWS manages.
    bed.role("infra-role", &Default::default()).await?;
    bed.iam
        .create_role()
        .role_name("AWSServiceRoleForThing")
        .path("/aws-service-role/thing.amazonaws.com/")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"thing.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .tags(aws_sdk_iam::types::Tag::builder().key("owner").value("aws").build()?)
        .send()
        .await?;

    let p = bed.providers();
    let all = list(&p).await?;
    let roles: Vec<&str> = all
        .iter()
        .filter(|r| r.kind == "iam-role")
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(roles, ["web-role"]);
    let role = find(&all, "iam-role", "web-role");
    assert_eq!(role.id, role_arn);
    assert_eq!(role.id, "arn:aws:iam::123456789012:role/web-role");
    assert_eq!(
        role.scope,
        Scope::Aws {
            account: ACCOUNT.into(),
            region: REGION.into()
        },
        "listed from the account's home scope"
    );
    assert_eq!(role.tags, eligible("web-role"));
    assert_eq!(role.state.as_deref(), Some("available"));
    assert!(role.attributes.created.is_some());
    let instance = find(&all, "ec2-instance", &web);
    assert_eq!(role.wait_for, std::slice::from_ref(&instance.id));

    let guard = KeepGuard::default();
    bed.moto.start_recording().await?;
    assert_eq!(p.remove(role, &guard).await?, Removal::Done);
    bed.moto.stop_recording().await?;
    let actions: Vec<String> = bed
        .moto
        .recorded()?
        .into_iter()
        .filter(|r| r.service() == Some("iam"))
        .filter_map(|r| {
            let body = r.body_text();
            let action = body.split('&').find_map(|kv| kv.strip_prefix("Action="))?;
            Some(action.to_string())
        })
        .collect();
    assert_eq!(
        actions,
        [
            "GetRole",
            "ListAttachedRolePolicies",
            "DetachRolePolicy",
            "ListRolePolicies",
            "DeleteRolePolicy",
            "ListInstanceProfilesForRole",
            "RemoveRoleFromInstanceProfile",
            "DeleteInstanceProfile",
            "DeleteRole",
        ]
    );

    let gone = |e: &dyn aws_sdk_iam::error::ProvideErrorMetadata| e.code() == Some("NoSuchEntity");
    let e = bed
        .iam
        .get_role()
        .role_name("web-role")
        .send()
        .await
        .expect_err("role deleted");
    assert!(gone(&e), "{e:?}");
    let e = bed
        .iam
        .get_instance_profile()
        .instance_profile_name("web-profile")
        .send()
        .await
        .expect_err("profile deleted");
    assert!(gone(&e), "{e:?}");
    // The managed policy is its own resource: detached, not deleted.
    let attached = bed
        .iam
        .list_entities_for_policy()
        .policy_arn(&policy)
        .send()
        .await?;
    assert!(attached.policy_roles().is_empty());
    assert_eq!(p.state(role).await?, State::Gone);

    assert_eq!(p.remove(role, &guard).await?, Removal::Done, "idempotent");
    assert_eq!(guard.asked().len(), 1);
    let after = list(&p).await?;
    assert!(
        after.iter().all(|r| r.kind != "iam-role"),
        "untagged roles stay unlisted"
    );
    Ok(())
}
