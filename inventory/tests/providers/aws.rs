//! EC2 and RDS kinds against moto: what they list (ARNs, tags, attributes, relations), removal
//! and its refusals, state, pagination, the account check.
//!
//! moto 5.2 quirks these tests rely on (checked by hand, asserted where they matter):
//! - every instance gets an untagged root volume (`/dev/sda1`, attached with
//!   DeleteOnTermination) and a primary network interface attached to it;
//! - DescribeVolumes leaves `DeleteOnTermination` out of a volume's attachments (AWS's has it);
//!   moto's DescribeInstances shows it in the instance's block device mappings (an attached
//!   volume `false`), which is where the root volume is found to be part of its instance; the
//!   volume-side mapping is unit-tested in `src/kinds/ebs_volume.rs`;
//! - DescribeVolumes honours the `status` and `volume-id` filters (the teardown listing's), not
//!   `attachment.delete-on-termination`;
//! - DeleteSecurityGroup never fails with `DependencyViolation` (not for a group used by a
//!   running instance or a network interface, nor for one another group references): the
//!   retryable mapping of that code is unit-tested in `src/aws/error.rs`; here an attached
//!   volume's `VolumeInUse` covers the retryable path against a real server;
//! - a terminated instance is `terminated` on the next describe; a deleted DB instance is gone
//!   on the next describe;
//! - CreateDBInstance creates an automated snapshot too;
//! - only DescribeInstances honours `MaxResults` (below 5, too); DescribeVolumes and
//!   DescribeSecurityGroups answer in one page whatever it is.

use anyhow::{Context, Result};
use aws_sdk_ec2::types::{IpPermission, UserIdGroupPair};
use inventory::aws::{AwsScope, caller_account};
use inventory::{Providers, Removal, Resource, Scope, State};

use crate::bed::{ACCOUNT, Bed, REGION, ec2_arn, eligible, find, list, names, wait_gone, with};
use crate::guard::{KEPT, KeepGuard};

#[tokio::test]
async fn lists_instances_volumes_groups_databases_and_snapshots_with_relations() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let app = bed.group("app", &eligible("app")).await?;
    let lb = bed.group("lb", &eligible("lb")).await?;
    // lb's rule allows traffic from app: app cannot go before lb.
    bed.ec2
        .authorize_security_group_ingress()
        .group_id(&lb)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&app).build())
                .build(),
        )
        .send()
        .await?;
    let dbsg = bed.group("db", &eligible("db")).await?;
    let web = bed.instance(&ami, &[&app], &eligible("web")).await?;
    let data = bed.volume(10, &eligible("data")).await?;
    bed.attach(&data, &web, "/dev/sdf").await?;
    let db_arn = bed.db("db1", &[&dbsg], &eligible("db1")).await?;
    let snap_arn = bed.snapshot("db1", "s1", &eligible("s1")).await?;

    let all = list(&bed.providers()).await?;

    // The exact set: moto's root volume of `web` comes along; no default group, no automated
    // snapshot, nothing of the kinds not seeded.
    let root = all
        .iter()
        .find(|r| r.kind == "ebs-volume" && r.name != data)
        .context("root volume")?
        .name
        .clone();
    let mut want = vec![
        ("ebs-volume", data.as_str()),
        ("ebs-volume", root.as_str()),
        ("ec2-instance", web.as_str()),
        ("rds-instance", "db1"),
        ("rds-snapshot", "s1"),
        ("security-group", app.as_str()),
        ("security-group", dbsg.as_str()),
        ("security-group", lb.as_str()),
    ];
    want.sort_unstable();
    assert_eq!(names(&all), want);

    let scope = Scope::Aws {
        account: ACCOUNT.into(),
        region: REGION.into(),
    };
    let instance = find(&all, "ec2-instance", &web);
    assert_eq!(instance.id, ec2_arn("instance", &web));
    assert_eq!(instance.scope, scope);
    assert_eq!(instance.tags, eligible("web"));
    assert_eq!(instance.state.as_deref(), Some("running"));
    assert_eq!(
        instance.attributes.instance_type.as_deref(),
        Some("t3.micro")
    );
    assert!(instance.attributes.created.is_some(), "launch time");
    assert_eq!(instance.attributes.size_gb, None);
    assert!(instance.wait_for.is_empty());
    assert_eq!(instance.part_of, None);
    assert_eq!(instance.created_fallback, None);
    assert_eq!(instance.tags_unreadable, None);

    let volume = find(&all, "ebs-volume", &data);
    assert_eq!(volume.id, ec2_arn("volume", &data));
    assert_eq!(volume.tags, eligible("data"));
    assert_eq!(volume.state.as_deref(), Some("in-use"));
    assert_eq!(volume.attributes.size_gb, Some(10.0));
    assert_eq!(volume.wait_for, std::slice::from_ref(&instance.id));
    assert_eq!(volume.part_of, None, "attached without DeleteOnTermination");
    // The root volume is part of its instance: the instance's block device mapping says it is
    // deleted on termination.
    let root_volume = find(&all, "ebs-volume", &root);
    assert_eq!(root_volume.wait_for, std::slice::from_ref(&instance.id));
    assert_eq!(root_volume.part_of.as_ref(), Some(&instance.id));
    assert!(root_volume.tags.is_empty());

    let group = find(&all, "security-group", &app);
    assert_eq!(group.id, ec2_arn("security-group", &app));
    assert_eq!(group.tags, eligible("app"));
    assert_eq!(group.state.as_deref(), Some("available"));
    let mut app_waits = vec![instance.id.clone(), ec2_arn("security-group", &lb)];
    app_waits.sort();
    assert_eq!(group.wait_for, app_waits);
    assert!(find(&all, "security-group", &lb).wait_for.is_empty());
    assert_eq!(
        find(&all, "security-group", &dbsg).wait_for,
        std::slice::from_ref(&db_arn)
    );

    let db = find(&all, "rds-instance", "db1");
    assert_eq!(db.id, db_arn);
    assert_eq!(db.id, format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:db1"));
    assert_eq!(db.tags, eligible("db1"));
    assert_eq!(db.state.as_deref(), Some("available"));
    assert_eq!(db.attributes.db_class.as_deref(), Some("db.t3.micro"));
    assert!(db.attributes.multi_az);
    assert_eq!(db.attributes.size_gb, Some(20.0));

    let snapshot = find(&all, "rds-snapshot", "s1");
    assert_eq!(snapshot.id, snap_arn);
    assert_eq!(snapshot.tags, eligible("s1"));
    assert_eq!(snapshot.attributes.size_gb, Some(20.0));
    assert_eq!(snapshot.wait_for, [db_arn]);
    assert_eq!(snapshot.tags_unreadable, None);
    Ok(())
}

#[tokio::test]
async fn a_group_used_only_by_an_unlisted_network_interface_is_available_without_edges()
-> Result<()> {
    // What uses a group says so from its own listing; a network interface no kind lists (a VPC
    // endpoint's, an EKS control plane's) does not, and the delete's DependencyViolation is what
    // holds the group back (see the module doc of `kinds/security_group.rs`). The TTL job's old
    // `in-use-by-eni` state is gone on purpose.
    let bed = Bed::start().await?;
    let sg = bed.group("endpoint", &eligible("endpoint")).await?;
    let (_, subnets) = bed.default_vpc().await?;
    bed.ec2
        .create_network_interface()
        .subnet_id(&subnets[0])
        .groups(&sg)
        .send()
        .await?;
    let free = bed.group("free", &eligible("free")).await?;

    let all = list(&bed.providers()).await?;
    for name in [&sg, &free] {
        let g = find(&all, "security-group", name);
        assert_eq!(g.state.as_deref(), Some("available"), "{name}");
        assert!(g.wait_for.is_empty(), "{name}: {:?}", g.wait_for);
    }
    Ok(())
}

#[tokio::test]
async fn instance_removal_is_pending_then_gone_and_idempotent() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let p = bed.providers();
    let all = list(&p).await?;
    let r = find(&all, "ec2-instance", &web);
    assert_eq!(p.state(r).await?, State::Present("running".into()));

    let guard = KeepGuard::default();
    assert_eq!(
        p.remove(r, &guard).await?,
        Removal::Pending {
            state: "shutting-down".into()
        }
    );
    let asked = guard.asked_about(&r.id);
    assert_eq!(asked.len(), 1, "asked once, on the re-read: {asked:?}");
    assert_eq!(asked[0].state.as_deref(), Some("running"));
    assert_eq!(asked[0].tags, eligible("web"));
    wait_gone(&p, r).await?;
    // Already terminated: nothing to do, nobody asked (moto would answer a second
    // TerminateInstances with `shutting-down` again; the inventory does not call it).
    assert_eq!(p.remove(r, &guard).await?, Removal::Done);
    assert_eq!(guard.asked().len(), 1);
    // Terminated instances are not listed.
    assert!(list(&p).await?.iter().all(|x| x.name != web));
    Ok(())
}

#[tokio::test]
async fn removal_of_volumes_groups_databases_and_snapshots_is_idempotent() -> Result<()> {
    let bed = Bed::start().await?;
    let sg = bed.group("free", &eligible("free")).await?;
    let vol = bed.volume(5, &eligible("vol")).await?;
    bed.db("db1", &[], &eligible("db1")).await?;
    bed.snapshot("db1", "s1", &eligible("s1")).await?;
    let p = bed.providers();
    let all = list(&p).await?;
    let guard = KeepGuard::default();

    for (kind, name) in [
        ("ebs-volume", vol.as_str()),
        ("security-group", sg.as_str()),
        ("rds-snapshot", "s1"),
    ] {
        let r = find(&all, kind, name);
        assert_eq!(p.remove(r, &guard).await?, Removal::Done, "{name}");
        assert_eq!(p.state(r).await?, State::Gone, "{name}");
        assert_eq!(p.remove(r, &guard).await?, Removal::Done, "{name} twice");
        assert_eq!(
            guard.asked_about(&r.id).len(),
            1,
            "{name}: asked only while present"
        );
    }

    let db = find(&all, "rds-instance", "db1");
    assert_eq!(
        p.remove(db, &guard).await?,
        Removal::Pending {
            state: "deleting".into()
        }
    );
    wait_gone(&p, db).await?;
    assert_eq!(p.remove(db, &guard).await?, Removal::Done);

    let left = list(&p).await?;
    assert!(left.is_empty(), "{:?}", names(&left));
    Ok(())
}

#[tokio::test]
async fn resources_still_in_use() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let sg = bed.group("app", &eligible("app")).await?;
    let web = bed.instance(&ami, &[&sg], &eligible("web")).await?;
    let vol = bed.volume(5, &eligible("vol")).await?;
    bed.attach(&vol, &web, "/dev/sdf").await?;
    let p = bed.providers();
    let all = list(&p).await?;
    let guard = KeepGuard::default();

    // An attached volume: AWS and moto answer VolumeInUse, which is retryable.
    let volume = find(&all, "ebs-volume", &vol);
    let e = p.remove(volume, &guard).await.expect_err("attached volume");
    assert!(e.retryable, "{e}");
    assert!(e.message.starts_with("VolumeInUse: "), "{e}");
    assert_eq!(e.action, "delete");
    assert_eq!(e.resource, volume.id);
    assert_eq!(p.state(volume).await?, State::Present("in-use".into()));

    // A group used by a running instance: AWS answers DependencyViolation (retryable, see the
    // unit tests); moto 5.2 deletes it. Asserted so that a moto that learns the real behaviour
    // makes this test point here.
    let group = find(&all, "security-group", &sg);
    assert_eq!(
        group.wait_for,
        [find(&all, "ec2-instance", &web).id.clone()]
    );
    assert_eq!(p.remove(group, &guard).await?, Removal::Done);
    Ok(())
}

#[tokio::test]
async fn removal_asks_the_guard_about_the_tags_as_they_are_now() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let vol = bed.volume(5, &eligible("vol")).await?;
    let sg = bed.group("snoozed", &eligible("snoozed")).await?;
    bed.db("db1", &[], &eligible("db1")).await?;
    bed.snapshot("db1", "s1", &eligible("s1")).await?;
    let p = bed.providers();
    let all = list(&p).await?;
    let guard = KeepGuard::default();

    // Marked keep=true after the plan was made, behind the inventory's back.
    bed.retag(&web, "keep", "true").await?;
    bed.retag(&vol, "keep", "true").await?;
    bed.retag(&sg, "keep", "true").await?;
    let db = find(&all, "rds-instance", "db1");
    bed.rds
        .add_tags_to_resource()
        .resource_name(&db.id)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("keep")
                .value("true")
                .build(),
        )
        .send()
        .await?;
    for (kind, name, label) in [
        ("ec2-instance", web.as_str(), "web"),
        ("ebs-volume", vol.as_str(), "vol"),
        ("security-group", sg.as_str(), "snoozed"),
        ("rds-instance", "db1", "db1"),
    ] {
        let r = find(&all, kind, name);
        assert!(!r.tags.contains_key("keep"), "the plan saw no keep tag");
        let e = p.remove(r, &guard).await.expect_err("kept");
        assert!(!e.retryable, "{name}: a refusal is final");
        assert_eq!(e.action, "delete");
        assert_eq!(e.resource, r.id);
        assert_eq!(e.message, KEPT, "{name}: the guard's reason, said once");
        let asked = guard.asked_about(&r.id);
        assert_eq!(asked.len(), 1, "{name}");
        assert_eq!(
            asked[0].tags,
            with(eligible(label), "keep", "true"),
            "{name}: re-read"
        );
        assert_eq!(
            asked[0].planned.as_ref(),
            Some(&r.tags),
            "{name}: and what was planned"
        );
    }

    // The guard decides on the current tags either way: another change since the plan, and the
    // guard sees it and lets the removal go on.
    let snapshot = find(&all, "rds-snapshot", "s1");
    bed.rds
        .add_tags_to_resource()
        .resource_name(&snapshot.id)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("ttl")
                .value("30d")
                .build(),
        )
        .send()
        .await?;
    assert_eq!(p.remove(snapshot, &guard).await?, Removal::Done);
    assert_eq!(
        guard.asked_about(&snapshot.id)[0].tags,
        with(eligible("s1"), "ttl", "30d")
    );

    // Nothing refused was deleted.
    let after = list(&p).await?;
    for (kind, name) in [
        ("ec2-instance", web.as_str()),
        ("ebs-volume", vol.as_str()),
        ("security-group", sg.as_str()),
        ("rds-instance", "db1"),
    ] {
        assert_eq!(
            find(&after, kind, name).state,
            find(&all, kind, name).state,
            "{name}"
        );
    }
    assert!(after.iter().all(|r| r.kind != "rds-snapshot"));
    Ok(())
}

#[tokio::test]
async fn removal_refuses_foreign_scopes_and_mismatched_kinds() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let p = bed.providers();
    let all = list(&p).await?;
    let instance = find(&all, "ec2-instance", &web);
    let guard = KeepGuard::default();

    let mut elsewhere = instance.clone();
    elsewhere.scope = Scope::Aws {
        account: "999999999999".into(),
        region: REGION.into(),
    };
    elsewhere.id = format!("arn:aws:ec2:{REGION}:999999999999:instance/{web}");
    // No configured scope is responsible for it.
    let e = p
        .remove(&elsewhere, &guard)
        .await
        .expect_err("foreign account");
    assert!(!e.retryable);
    assert!(
        e.message
            .contains("no configured scope for aws:999999999999/us-east-1"),
        "{e}"
    );
    // A scope handed a resource of another scope refuses it too.
    let e = bed
        .scope()
        .remove(&elsewhere, &guard)
        .await
        .expect_err("foreign scope");
    assert!(e.message.contains("is not this scope"), "{e}");
    // A resource of this scope whose ARN names another account: the ARN is what would be
    // acted on, so it is refused.
    let mut split = instance.clone();
    split.id = elsewhere.id.clone();
    let e = p
        .remove(&split, &guard)
        .await
        .expect_err("ARN of another account");
    assert!(
        e.message
            .contains("not an ARN of an AWS kind in partition aws account 123456789012"),
        "{e}"
    );

    let mut wrong_kind = instance.clone();
    wrong_kind.kind = "k8s-namespace";
    let e = p
        .remove(&wrong_kind, &guard)
        .await
        .expect_err("not an AWS kind");
    assert!(
        e.message
            .contains("the ARN is a ec2-instance ARN, but the resource says k8s-namespace"),
        "{e}"
    );

    // An instance ARN presented as a volume.
    let mut mislabelled = instance.clone();
    mislabelled.kind = "ebs-volume";
    let e = p
        .remove(&mislabelled, &guard)
        .await
        .expect_err("ARN of another kind");
    assert!(
        e.message.contains("but the resource says ebs-volume"),
        "{e}"
    );

    assert!(guard.asked().is_empty(), "refused before any re-read");
    assert_eq!(p.state(instance).await?, State::Present("running".into()));
    Ok(())
}

#[tokio::test]
async fn listing_fails_when_the_credentials_act_in_another_account() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    bed.instance(&ami, &[], &eligible("web")).await?;
    bed.db("db1", &[], &eligible("db1")).await?;
    let p = Providers::from_scopes(
        vec![AwsScope::new(&bed.sdk, "111111111111", REGION, true)],
        None,
    );
    let listing = p.list().await;
    let failed: Vec<&str> = listing.failures.iter().map(|f| f.kind).collect();
    assert_eq!(
        failed,
        ["ec2-instance", "rds-instance"],
        "the kinds whose answers name the account"
    );
    for f in &listing.failures {
        assert!(!f.error.retryable, "{}", f.error);
        assert!(
            f.error.message.contains("belongs to account 123456789012"),
            "{}",
            f.error
        );
        assert_eq!(f.error.resource, "aws:111111111111/us-east-1");
    }
    assert_eq!(caller_account(&bed.sdk).await?, ACCOUNT);
    Ok(())
}

#[tokio::test]
async fn lists_across_pages() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            bed.instance(&ami, &[], &eligible(&format!("web-{n}")))
                .await?,
        );
    }
    ids.sort();
    // Pages of 5: instances take three pages (moto pages DescribeInstances by reservation, one
    // per instance here). moto ignores MaxResults for volumes and groups and answers in one
    // page, so only the instance paginator is exercised across pages.
    let p = Providers::from_scopes(vec![bed.scope().with_page_size(5)], None);
    let all = list(&p).await?;
    let mut instances: Vec<&str> = all
        .iter()
        .filter(|r| r.kind == "ec2-instance")
        .map(|r| r.name.as_str())
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, ids);
    let volumes: Vec<&Resource> = all.iter().filter(|r| r.kind == "ebs-volume").collect();
    assert_eq!(volumes.len(), 12);
    let mut waited: Vec<String> = volumes.iter().flat_map(|v| v.wait_for.clone()).collect();
    waited.sort();
    let want: Vec<String> = ids.iter().map(|i| ec2_arn("instance", i)).collect();
    assert_eq!(waited, want, "each root volume waits for its own instance");
    Ok(())
}

#[tokio::test]
async fn a_teardown_listing_reads_root_volumes_only_for_the_instances_that_go() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let batch = bed.instance(&ami, &[], &eligible("batch")).await?;
    let data = bed.volume(10, &eligible("data")).await?;
    bed.attach(&data, &web, "/dev/sdf").await?;
    let spare = bed.volume(3, &eligible("spare")).await?;
    let p = bed.providers();
    let everything = list(&p).await?;
    let roots: Vec<&Resource> = everything
        .iter()
        .filter(|r| r.kind == "ebs-volume" && r.part_of.is_some())
        .collect();
    assert_eq!(roots.len(), 2, "one root volume per instance");
    let root_of = |instance: &str| {
        roots
            .iter()
            .find(|r| r.part_of.as_deref() == Some(ec2_arn("instance", instance).as_str()))
            .map(|r| r.name.clone())
            .with_context(|| format!("root volume of {instance}"))
    };
    let (web_root, batch_root) = (root_of(&web)?, root_of(&batch)?);

    // The candidates: both instances, the unattached volume and the attached data volume (it
    // waits for web), no root volume.
    let mut listing = p.list_candidates().await;
    assert!(listing.failures.is_empty(), "{:?}", listing.failures);
    let mut want = vec![
        ("ebs-volume", data.as_str()),
        ("ebs-volume", spare.as_str()),
        ("ec2-instance", batch.as_str()),
        ("ec2-instance", web.as_str()),
    ];
    want.sort_unstable();
    assert_eq!(names(&listing.resources), want);
    let web_arn = ec2_arn("instance", &web);
    assert_eq!(
        find(&listing.resources, "ebs-volume", &data).wait_for,
        std::slice::from_ref(&web_arn)
    );
    // What is listed is listed as the whole listing has it.
    for r in &listing.resources {
        assert_eq!(
            Some(r),
            everything.iter().find(|e| e.id == r.id),
            "{}",
            r.id
        );
    }

    // web goes: its root volume is read, as the whole listing has it, and nothing else.
    assert!(p.read_parts(&mut listing, &[web_arn.as_str()]).await);
    assert!(listing.failures.is_empty(), "{:?}", listing.failures);
    want.push(("ebs-volume", web_root.as_str()));
    want.sort_unstable();
    assert_eq!(names(&listing.resources), want);
    let read = find(&listing.resources, "ebs-volume", &web_root);
    assert_eq!(Some(read), everything.iter().find(|e| e.id == read.id));
    assert!(!names(&listing.resources).contains(&("ebs-volume", batch_root.as_str())));
    // Nothing more to read for web; nothing at all for what has no parts.
    assert!(!p.read_parts(&mut listing, &[web_arn.as_str()]).await);
    let spare_arn = ec2_arn("volume", &spare);
    assert!(!p.read_parts(&mut listing, &[spare_arn.as_str()]).await);

    // An id that is gone by the time it is read is left out, not an error.
    let volumes = inventory::kinds::by_name("ebs-volume")
        .and_then(|k| k.aws())
        .context("ebs-volume is an AWS kind")?;
    let ids = [batch_root.clone(), "vol-0000000000000dead".to_string()];
    let read = volumes.read(&bed.scope(), &ids).await?;
    assert_eq!(names(&read), [("ebs-volume", batch_root.as_str())]);
    Ok(())
}
