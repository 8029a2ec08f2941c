//! Auto Scaling groups against moto: a group and its instances, which are part of it and go
//! only with it.
//!
//! moto 5.2: DeleteAutoScalingGroup scales the group to zero and forgets it at once, whether
//! `ForceDelete` is set or not (AWS refuses a group with instances unless it is, then shows
//! `Delete in progress` for minutes). So the test asserts the call moto received, and the
//! outcome moto gives. DescribeAutoScalingGroups has no `Status` for a live group (neither has
//! AWS), which the kind lists as `active`.

use anyhow::Result;
use inventory::{Removal, State};

use crate::bed::{Bed, eligible, find, list, with};
use crate::guard::KeepGuard;

#[tokio::test]
async fn a_group_owns_its_instances_which_go_only_with_it() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let arn = bed
        .autoscaling_group("web-asg", &ami, 2, &eligible("web-asg"))
        .await?;
    let p = bed.providers();
    let all = list(&p).await?;

    let group = find(&all, "autoscaling-group", "web-asg");
    assert_eq!(group.id, arn);
    assert!(
        group
            .id
            .starts_with("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:"),
        "{}",
        group.id
    );
    assert!(group.id.ends_with(":autoScalingGroupName/web-asg"));
    assert_eq!(group.tags, eligible("web-asg"));
    assert_eq!(group.state.as_deref(), Some("active"));
    assert!(group.attributes.created.is_some());
    assert_eq!(group.part_of, None, "not a node group's");

    let members: Vec<_> = all.iter().filter(|r| r.kind == "ec2-instance").collect();
    assert_eq!(members.len(), 2, "{members:#?}");
    for m in &members {
        assert_eq!(m.part_of.as_ref(), Some(&group.id), "{}", m.name);
        assert!(m.wait_for.contains(&group.id), "{}", m.name);
        // The propagated tags, the group's own, and (as on AWS) the launch template's.
        let mut tags = m.tags.clone();
        tags.retain(|k, _| !k.starts_with("aws:ec2launchtemplate:"));
        assert_eq!(
            tags,
            with(eligible("web-asg"), "aws:autoscaling:groupName", "web-asg"),
            "{}",
            m.name
        );
        assert!(
            m.tags.contains_key("aws:ec2launchtemplate:id"),
            "{:?}",
            m.tags
        );
    }

    // A member alone: refused whatever the guard would say, before asking it (the group would
    // replace the instance).
    let guard = KeepGuard::default();
    let member = members[0];
    let e = p.remove(member, &guard).await.expect_err("a member alone");
    assert!(!e.retryable);
    assert!(
        e.message.contains("belongs to Auto Scaling group web-asg"),
        "{e}"
    );
    assert!(guard.asked().is_empty());
    assert_eq!(p.state(member).await?, State::Present("running".into()));

    // The group, with its instances.
    bed.moto.start_recording().await?;
    assert_eq!(
        p.remove(group, &guard).await?,
        Removal::Pending {
            state: "Delete in progress".into()
        }
    );
    bed.moto.stop_recording().await?;
    let deletes: Vec<_> = bed
        .moto
        .recorded()?
        .into_iter()
        .filter(|r| {
            r.service() == Some("autoscaling")
                && r.body_text().contains("Action=DeleteAutoScalingGroup")
        })
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    let body = deletes[0].body_text();
    assert!(body.contains("AutoScalingGroupName=web-asg"), "{body}");
    assert!(body.contains("ForceDelete=true"), "{body}");
    assert_eq!(guard.asked_about(&group.id).len(), 1);

    // moto: gone at once, its instances terminated.
    assert_eq!(p.state(group).await?, State::Gone);
    for m in &members {
        assert_eq!(p.state(m).await?, State::Gone, "{}", m.name);
    }
    assert_eq!(p.remove(group, &guard).await?, Removal::Done, "idempotent");
    assert_eq!(guard.asked().len(), 1, "the second removal found it gone");
    let after = list(&p).await?;
    assert!(
        after
            .iter()
            .all(|r| r.kind != "autoscaling-group" && r.kind != "ec2-instance"),
        "{:?}",
        crate::bed::names(&after)
    );
    Ok(())
}
