//! From what each kind saw ([`Resource::refs`]) to per-instance order: [`Resource::wait_for`]
//! and [`Resource::part_of`].
//!
//! A reference names the other resource by kind and key, within the same AWS account (and
//! region, unless the other kind is global) or the same cluster. Resolving it:
//! - [`Relation::WaitsFor`]: the other resource's id joins this one's `wait_for`;
//! - [`Relation::Blocks`]: this resource's id joins the other's `wait_for`;
//! - [`Relation::PartOf`]: this resource is part of the other (its `part_of`), and waits for it;
//! - [`Relation::Has`]: the other is part of this one (the same, seen from the owner).
//!
//! A `WaitsFor` or `Blocks` reference to something not listed is dropped: the planner cannot
//! wait for what it does not know, and the removal call itself fails (retryably) if it still
//! matters. A `PartOf` reference that cannot be resolved is kept as `unresolved:<kind>/<key>`:
//! a part whose owner is unknown is never removed at all (an instance of an Auto Scaling group
//! that was not listed must not be terminated alone). A `Has` reference to a part not listed is
//! dropped: the part's own listing decides (a teardown listing reads the parts of what it
//! removes, [`crate::Providers::read_parts`]).
//!
//! Linking again after more resources were added (those parts) gives what linking everything at
//! once would have.

use std::collections::{BTreeSet, HashMap};

use crate::resource::{Relation, Resource, Scope};

/// The part of a scope references resolve in: the account (and region for regional kinds), or
/// the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Area<'a> {
    Aws { account: &'a str, region: &'a str },
    Kubernetes { cluster: &'a str },
}

fn area<'a>(scope: &'a Scope, kind: &str) -> Area<'a> {
    let global = crate::kinds::by_name(kind)
        .and_then(|k| k.aws())
        .is_some_and(|a| a.global());
    match scope {
        Scope::Aws { account, region } => Area::Aws {
            account,
            region: if global { "" } else { region },
        },
        Scope::Kubernetes { cluster } => Area::Kubernetes { cluster },
    }
}

/// Resolves every resource's references in place; `wait_for` ends sorted and without
/// duplicates (entries given beforehand, as in an offline inventory, are kept).
pub fn link(resources: &mut [Resource]) {
    let mut index: HashMap<(Area<'_>, &str, &str), usize> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        for key in &r.keys {
            index
                .entry((area(&r.scope, r.kind), r.kind, key.as_str()))
                .or_insert(i);
        }
    }
    let mut waits: Vec<BTreeSet<String>> = resources
        .iter()
        .map(|r| r.wait_for.iter().cloned().collect())
        .collect();
    let mut part_of: Vec<Option<String>> = resources.iter().map(|r| r.part_of.clone()).collect();
    for (i, r) in resources.iter().enumerate() {
        for reference in &r.refs {
            let target = index
                .get(&(
                    area(&r.scope, reference.kind),
                    reference.kind,
                    reference.key.as_str(),
                ))
                .copied();
            match (reference.relation, target) {
                (_, Some(j)) if j == i => {}
                (Relation::WaitsFor, Some(j)) => {
                    waits[i].insert(resources[j].id.clone());
                }
                (Relation::Blocks, Some(j)) => {
                    waits[j].insert(r.id.clone());
                }
                (Relation::PartOf, Some(j)) => {
                    waits[i].insert(resources[j].id.clone());
                    part_of[i] = Some(resources[j].id.clone());
                }
                (Relation::PartOf, None) => {
                    part_of[i] = Some(format!("unresolved:{}/{}", reference.kind, reference.key));
                }
                (Relation::Has, Some(j)) => {
                    waits[j].insert(r.id.clone());
                    part_of[j] = Some(r.id.clone());
                }
                (Relation::WaitsFor | Relation::Blocks | Relation::Has, None) => {}
            }
        }
    }
    for ((r, w), p) in resources.iter_mut().zip(waits).zip(part_of) {
        r.wait_for = w.into_iter().collect();
        r.part_of = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Ref;

    fn aws(kind: &'static str, name: &str, region: &str) -> Resource {
        Resource::new(
            kind,
            format!("arn:{kind}:{region}:{name}"),
            name.to_string(),
            Scope::Aws {
                account: "111111111111".into(),
                region: region.into(),
            },
        )
    }

    fn find<'a>(all: &'a [Resource], name: &str) -> &'a Resource {
        all.iter().find(|r| r.name == name).expect(name)
    }

    #[test]
    fn relations_become_wait_for_and_part_of() {
        let mut instance = aws("ec2-instance", "i-1", "us-east-1");
        instance.refs = vec![
            Ref::new(Relation::Blocks, "security-group", "sg-1"),
            Ref::new(Relation::Blocks, "iam-role", "instance-profile/web"),
            Ref::new(Relation::PartOf, "autoscaling-group", "web-asg"),
        ];
        let mut root = aws("ebs-volume", "vol-root", "us-east-1");
        root.refs = vec![Ref::new(Relation::PartOf, "ec2-instance", "i-1")];
        let mut data = aws("ebs-volume", "vol-data", "us-east-1");
        data.refs = vec![Ref::new(Relation::WaitsFor, "ec2-instance", "i-1")];
        let group = aws("security-group", "sg-1", "us-east-1");
        // A global role, listed from another region of the account, is still found.
        let mut role = aws("iam-role", "web-role", "eu-west-1");
        role.keys.push("instance-profile/web".into());
        let asg = aws("autoscaling-group", "web-asg", "us-east-1");
        let mut other_region = aws("ec2-instance", "i-2", "eu-west-1");
        other_region.refs = vec![Ref::new(Relation::Blocks, "security-group", "sg-1")];
        // The owner names its part (DescribeInstances); the part's own listing says nothing.
        let mut owner = aws("ec2-instance", "i-4", "us-east-1");
        owner.refs = vec![
            Ref::new(Relation::Has, "ebs-volume", "vol-4"),
            Ref::new(Relation::Has, "ebs-volume", "vol-not-listed"),
        ];
        let part = aws("ebs-volume", "vol-4", "us-east-1");
        let mut orphan = aws("ec2-instance", "i-3", "us-east-1");
        orphan.refs = vec![Ref::new(Relation::PartOf, "autoscaling-group", "gone-asg")];

        let mut all = vec![
            instance,
            root,
            data,
            group,
            role,
            asg,
            other_region,
            orphan,
            owner,
        ];
        link(&mut all);
        let id = |n: &str| find(&all, n).id.clone();
        assert_eq!(find(&all, "vol-root").part_of, Some(id("i-1")));
        assert_eq!(find(&all, "vol-root").wait_for, [id("i-1")]);
        assert_eq!(find(&all, "vol-data").part_of, None);
        assert_eq!(find(&all, "vol-data").wait_for, [id("i-1")]);
        assert_eq!(
            find(&all, "sg-1").wait_for,
            [id("i-1")],
            "the same group id in another region is another group"
        );
        assert_eq!(find(&all, "web-role").wait_for, [id("i-1")]);
        assert_eq!(find(&all, "i-1").part_of, Some(id("web-asg")));
        assert_eq!(
            find(&all, "i-3").part_of.as_deref(),
            Some("unresolved:autoscaling-group/gone-asg")
        );
        assert!(find(&all, "i-2").wait_for.is_empty());
        assert_eq!(find(&all, "i-4").part_of, None);
        assert!(find(&all, "i-4").wait_for.is_empty());

        // The part read later, once its owner is to go: linking again finds it, and changes
        // nothing else.
        let owner_id = id("i-4");
        let before = all.clone();
        all.push(part);
        link(&mut all);
        assert_eq!(find(&all, "vol-4").part_of.as_ref(), Some(&owner_id));
        assert_eq!(find(&all, "vol-4").wait_for, [owner_id]);
        assert_eq!(
            &all[..before.len()],
            &before[..],
            "linking again is idempotent"
        );
    }
}
