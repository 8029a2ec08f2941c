//! Per-instance dependencies, from the whole inventory of one account and region.
//!
//! `wait_for` lists the ids of resources that must be gone before this one can be deleted:
//! - a volume waits for the instances it is attached to;
//! - a security group waits for the instances (their own groups and their interfaces' groups)
//!   and RDS instances that use it, and for the other groups whose rules reference it;
//! - a manual snapshot waits for the DB instance it was taken from, when that instance is
//!   listed: the backup is kept until the instance is gone, so a failed instance deletion never
//!   leaves us without either.
//!
//! A group used by a network interface that is not attached to a listed instance (a load
//! balancer's, a Lambda function's, an RDS instance's own interface, a detached one) cannot wait
//! for it by id: the planner ignores ids outside the inventory. Such a group is listed with
//! state [`IN_USE_BY_ENI`]; deleting it anyway fails with `DependencyViolation`, which is
//! retryable.

use std::collections::{BTreeSet, HashMap};

use super::IN_USE_BY_ENI;
use super::{ebs_volume, ec2_instance, rds_instance, rds_snapshot, security_group};
use crate::inventory::Resource;

/// Everything one list pass found.
pub(super) struct Inventory {
    pub instances: Vec<ec2_instance::Listed>,
    pub volumes: Vec<ebs_volume::Listed>,
    pub groups: Vec<security_group::Listed>,
    pub interfaces: Vec<security_group::Interface>,
    pub dbs: Vec<rds_instance::Listed>,
    pub snapshots: Vec<rds_snapshot::Listed>,
}

/// The resources with `wait_for` filled in (sorted, without duplicates).
pub(super) fn link(inv: Inventory) -> Vec<Resource> {
    // Native id → ARN of what can be waited for.
    let instance_arn: HashMap<String, String> = inv
        .instances
        .iter()
        .map(|i| (i.resource.name.clone(), i.resource.id.clone()))
        .collect();
    let db_arn: HashMap<String, String> = inv
        .dbs
        .iter()
        .map(|d| (d.resource.name.clone(), d.resource.id.clone()))
        .collect();

    // Group id → ARNs it waits for, and the groups held by foreign network interfaces.
    let mut group_waits: HashMap<&str, BTreeSet<String>> = HashMap::new();
    let mut held_by_interface: HashMap<&str, &str> = HashMap::new();
    for i in &inv.instances {
        for g in &i.groups {
            group_waits
                .entry(g.as_str())
                .or_default()
                .insert(i.resource.id.clone());
        }
    }
    for d in &inv.dbs {
        for g in &d.groups {
            group_waits
                .entry(g.as_str())
                .or_default()
                .insert(d.resource.id.clone());
        }
    }
    for referencing in &inv.groups {
        for g in &referencing.references {
            group_waits
                .entry(g.as_str())
                .or_default()
                .insert(referencing.resource.id.clone());
        }
    }
    for n in &inv.interfaces {
        let owner = n.instance.as_deref().and_then(|i| instance_arn.get(i));
        for g in &n.groups {
            match owner {
                Some(arn) => {
                    group_waits
                        .entry(g.as_str())
                        .or_default()
                        .insert(arn.clone());
                }
                None => {
                    held_by_interface.entry(g.as_str()).or_insert(n.id.as_str());
                }
            }
        }
    }

    let mut out = Vec::new();
    let groups: Vec<Resource> = inv
        .groups
        .iter()
        .map(|g| {
            let mut r = g.resource.clone();
            let id = r.name.as_str();
            if let Some(waits) = group_waits.get(id) {
                r.wait_for = waits.iter().filter(|w| **w != r.id).cloned().collect();
            }
            if let Some(interface) = held_by_interface.get(id) {
                tracing::debug!(
                    group = id,
                    interface,
                    "security group used by a network interface of an unlisted resource"
                );
                r.state = Some(IN_USE_BY_ENI.to_string());
            }
            r
        })
        .collect();
    out.extend(inv.instances.into_iter().map(|i| i.resource));
    out.extend(inv.volumes.into_iter().map(|v| {
        let mut r = v.resource;
        let waits: BTreeSet<String> = v
            .attached_to
            .iter()
            .filter_map(|i| instance_arn.get(i).cloned())
            .collect();
        r.wait_for = waits.into_iter().collect();
        r
    }));
    out.extend(groups);
    out.extend(inv.dbs.into_iter().map(|d| d.resource));
    out.extend(inv.snapshots.into_iter().map(|s| {
        let mut r = s.resource;
        if let Some(arn) = s.db.as_ref().and_then(|d| db_arn.get(d)) {
            r.wait_for = vec![arn.clone()];
        }
        r
    }));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::inventory::{CostBasis, Scope};

    fn r(kind: &'static str, name: &str) -> Resource {
        let kind_path = match kind {
            "ec2-instance" => format!("ec2:r:a:instance/{name}"),
            "ebs-volume" => format!("ec2:r:a:volume/{name}"),
            "security-group" => format!("ec2:r:a:security-group/{name}"),
            "rds-instance" => format!("rds:r:a:db:{name}"),
            _ => format!("rds:r:a:snapshot:{name}"),
        };
        Resource {
            id: format!("arn:aws:{kind_path}"),
            kind,
            name: name.to_string(),
            scope: Scope::Aws {
                account: "a".into(),
                region: "r".into(),
            },
            namespace: None,
            tags: BTreeMap::new(),
            labels: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
            created_fallback: None,
            state: Some("available".into()),
            wait_for: vec![],
            cost: CostBasis::default(),
            tags_unreadable: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn find<'a>(all: &'a [Resource], name: &str) -> &'a Resource {
        all.iter().find(|r| r.name == name).expect(name)
    }

    #[test]
    fn edges_from_attachments_usage_references_and_snapshots() {
        let all = link(Inventory {
            instances: vec![
                ec2_instance::Listed {
                    resource: r("ec2-instance", "i-1"),
                    groups: strings(&["sg-app"]),
                },
                ec2_instance::Listed {
                    resource: r("ec2-instance", "i-2"),
                    groups: strings(&["sg-app"]),
                },
            ],
            volumes: vec![
                ebs_volume::Listed {
                    resource: r("ebs-volume", "vol-1"),
                    attached_to: strings(&["i-1"]),
                },
                ebs_volume::Listed {
                    resource: r("ebs-volume", "vol-2"),
                    attached_to: vec![],
                },
            ],
            groups: vec![
                security_group::Listed {
                    resource: r("security-group", "sg-app"),
                    references: vec![],
                },
                security_group::Listed {
                    resource: r("security-group", "sg-lb"),
                    references: strings(&["sg-app"]),
                },
                security_group::Listed {
                    resource: r("security-group", "sg-db"),
                    references: vec![],
                },
                security_group::Listed {
                    resource: r("security-group", "sg-elb"),
                    references: vec![],
                },
            ],
            interfaces: vec![
                security_group::Interface {
                    id: "eni-1".into(),
                    instance: Some("i-2".into()),
                    groups: strings(&["sg-app"]),
                },
                security_group::Interface {
                    id: "eni-lb".into(),
                    instance: None,
                    groups: strings(&["sg-elb"]),
                },
            ],
            dbs: vec![rds_instance::Listed {
                resource: r("rds-instance", "db1"),
                groups: strings(&["sg-db"]),
            }],
            snapshots: vec![
                rds_snapshot::Listed {
                    resource: r("rds-snapshot", "s1"),
                    db: Some("db1".into()),
                },
                rds_snapshot::Listed {
                    resource: r("rds-snapshot", "s-orphan"),
                    db: Some("gone-db".into()),
                },
            ],
        });
        let i1 = find(&all, "i-1").id.clone();
        let i2 = find(&all, "i-2").id.clone();
        let lb = find(&all, "sg-lb").id.clone();
        let db = find(&all, "db1").id.clone();
        assert_eq!(find(&all, "vol-1").wait_for, std::slice::from_ref(&i1));
        assert!(find(&all, "vol-2").wait_for.is_empty());
        let mut app = vec![i1, i2, lb];
        app.sort();
        assert_eq!(find(&all, "sg-app").wait_for, app);
        assert_eq!(find(&all, "sg-app").state.as_deref(), Some("available"));
        assert!(find(&all, "sg-lb").wait_for.is_empty());
        assert_eq!(find(&all, "sg-db").wait_for, std::slice::from_ref(&db));
        assert_eq!(find(&all, "sg-elb").state.as_deref(), Some(IN_USE_BY_ENI));
        assert_eq!(find(&all, "s1").wait_for, [db]);
        assert!(find(&all, "s-orphan").wait_for.is_empty());
        assert_eq!(all.len(), 11);
    }
}
