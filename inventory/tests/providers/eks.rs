//! EKS managed node groups against moto: listed per cluster with their tags; the node role waits
//! for the group; the group's Auto Scaling group is part of it; removal is idempotent.
//!
//! moto 5.2: CreateNodegroup makes no Auto Scaling group or instances (AWS does), so the test
//! makes the group's Auto Scaling group itself, tagged as EKS tags it; DeleteNodegroup forgets
//! the group at once and answers with it as it was (`ACTIVE`; AWS answers `DELETING`).

use anyhow::Result;
use inventory::{Removal, State};

use crate::bed::{Bed, eligible, find, list, with};
use crate::guard::KeepGuard;

#[tokio::test]
async fn a_node_group_is_listed_holds_its_role_owns_its_autoscaling_group_and_goes() -> Result<()> {
    let bed = Bed::start().await?;
    let cluster_role = bed.role("cluster-role", &eligible("cluster-role")).await?;
    let node_role = bed.role("node-role", &eligible("node-role")).await?;
    bed.cluster("dev", &cluster_role).await?;
    let arn = bed
        .nodegroup("dev", "workers", &node_role, &eligible("workers"))
        .await?;
    let ami = bed.ami().await?;
    let asg_tags = with(
        with(eligible("eks-workers"), "eks:cluster-name", "dev"),
        "eks:nodegroup-name",
        "workers",
    );
    bed.autoscaling_group("eks-workers", &ami, 1, &asg_tags)
        .await?;
    let p = bed.providers();
    let all = list(&p).await?;

    let group = find(&all, "eks-nodegroup", "workers");
    assert_eq!(group.id, arn);
    assert!(
        group
            .id
            .starts_with("arn:aws:eks:us-east-1:123456789012:nodegroup/dev/workers/"),
        "{}",
        group.id
    );
    assert_eq!(group.tags, eligible("workers"));
    assert_eq!(group.state.as_deref(), Some("ACTIVE"));
    assert_eq!(group.attributes.instance_type.as_deref(), Some("t3.large"));
    assert!(group.attributes.created.is_some());
    assert_eq!(group.keys, ["dev/workers"]);

    assert_eq!(
        find(&all, "iam-role", "node-role").wait_for,
        std::slice::from_ref(&group.id)
    );
    assert!(
        find(&all, "iam-role", "cluster-role").wait_for.is_empty(),
        "the cluster is not a kind: nothing lists it as using its role"
    );
    let asg = find(&all, "autoscaling-group", "eks-workers");
    assert_eq!(asg.part_of.as_ref(), Some(&group.id));
    let node = all
        .iter()
        .find(|r| r.kind == "ec2-instance")
        .expect("the group's instance");
    assert_eq!(
        node.part_of.as_ref(),
        Some(&asg.id),
        "instance → ASG → node group"
    );

    let guard = KeepGuard::default();
    let removal = p.remove(group, &guard).await?;
    assert!(
        matches!(removal, Removal::Pending { .. } | Removal::Done),
        "{removal:?}"
    );
    assert_eq!(guard.asked_about(&group.id).len(), 1);
    assert_eq!(p.state(group).await?, State::Gone, "moto: at once");
    assert_eq!(p.remove(group, &guard).await?, Removal::Done, "idempotent");
    assert_eq!(guard.asked().len(), 1);
    let after = list(&p).await?;
    assert!(after.iter().all(|r| r.kind != "eks-nodegroup"));
    assert!(find(&after, "iam-role", "node-role").wait_for.is_empty());
    Ok(())
}
