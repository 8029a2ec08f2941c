//! Lambda functions against moto: listed with their tags (ListTags per function); the execution
//! role and the VPC security groups wait for the function; removal is idempotent.
//!
//! moto 5.2 needs the execution role to exist in IAM and a zip for the code (it stores it and
//! never runs it here); it ignores `MaxItems` on ListFunctions.

use anyhow::Result;
use inventory::{Removal, State};

use crate::bed::{Bed, eligible, find, list};
use crate::guard::KeepGuard;

#[tokio::test]
async fn a_function_is_listed_with_tags_and_holds_its_role_and_groups() -> Result<()> {
    let bed = Bed::start().await?;
    let role = bed.role("api-role", &eligible("api-role")).await?;
    let sg = bed.group("api-sg", &eligible("api-sg")).await?;
    let arn = bed.function("api", &role, &[&sg], &eligible("api")).await?;
    // A function without a VPC holds no group.
    let other_role = bed.role("cron-role", &eligible("cron-role")).await?;
    bed.function("cron", &other_role, &[], &eligible("cron"))
        .await?;
    let p = bed.providers();
    let all = list(&p).await?;

    let f = find(&all, "lambda-function", "api");
    assert_eq!(f.id, arn);
    assert_eq!(f.id, "arn:aws:lambda:us-east-1:123456789012:function:api");
    assert_eq!(f.tags, eligible("api"));
    assert!(f.state.is_some());
    assert!(f.attributes.created.is_some(), "LastModified parsed");
    assert!(f.wait_for.is_empty());
    let cron = find(&all, "lambda-function", "cron");

    assert_eq!(
        find(&all, "iam-role", "api-role").wait_for,
        std::slice::from_ref(&f.id)
    );
    assert_eq!(
        find(&all, "iam-role", "cron-role").wait_for,
        std::slice::from_ref(&cron.id)
    );
    assert_eq!(
        find(&all, "security-group", &sg).wait_for,
        std::slice::from_ref(&f.id)
    );

    let guard = KeepGuard::default();
    assert_eq!(p.remove(f, &guard).await?, Removal::Done);
    assert_eq!(guard.asked_about(&f.id).len(), 1);
    assert_eq!(guard.asked_about(&f.id)[0].tags, eligible("api"));
    assert_eq!(p.state(f).await?, State::Gone);
    assert_eq!(p.remove(f, &guard).await?, Removal::Done, "idempotent");
    assert_eq!(guard.asked().len(), 1);

    let after = list(&p).await?;
    assert!(after.iter().all(|r| r.id != f.id));
    assert!(
        find(&after, "iam-role", "api-role").wait_for.is_empty(),
        "the role no longer waits"
    );
    assert_eq!(
        p.state(cron).await?,
        State::Present(cron.state.clone().unwrap_or_default())
    );
    Ok(())
}
