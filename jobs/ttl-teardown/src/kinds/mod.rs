//! The registry of resource kinds the job can tear down, one file per kind.
//!
//! Each kind names the kinds that must be gone before it can be deleted (an instance before the
//! security group it uses, a namespace's objects before the namespace). The registry is an
//! explicit `const` slice: adding a kind is one new file and one line here. Tests over the whole
//! list check that names are unique, every dependency exists and there is no cycle.
//!
//! Kind-level order is the coarse rule; the planner also orders per instance from each
//! resource's `wait_for` list (this volume waits for *that* instance).

mod ebs_volume;
mod ec2_instance;
mod k8s_objects;
mod rds_instance;
mod rds_snapshot;
mod security_group;

/// Which API a kind lives behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// AWS (EC2, RDS).
    Aws,
    /// Kubernetes.
    Kubernetes,
}

/// A resource kind the job knows how to tear down.
pub trait Kind: Sync {
    /// Stable name used in inventories, findings and metrics (`ec2-instance`).
    fn name(&self) -> &'static str;
    /// Kinds whose resources must be gone before resources of this kind are deleted.
    fn wait_for(&self) -> &'static [&'static str];
    /// Which API the kind lives behind.
    fn platform(&self) -> Platform;
    /// True for Kubernetes kinds.
    fn is_kubernetes(&self) -> bool {
        self.platform() == Platform::Kubernetes
    }
}

/// Every kind, in no particular order (the planner sorts).
pub const KINDS: &[&dyn Kind] = &[
    &ec2_instance::Ec2Instance,
    &ebs_volume::EbsVolume,
    &security_group::SecurityGroup,
    &rds_instance::RdsInstance,
    &rds_snapshot::RdsSnapshot,
    &k8s_objects::Deployment,
    &k8s_objects::Service,
    &k8s_objects::ConfigMap,
    &k8s_objects::Namespace,
];

/// The kind with this name.
pub fn by_name(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// All kind names, sorted (for error messages).
pub fn names() -> Vec<&'static str> {
    let mut n: Vec<&'static str> = KINDS.iter().map(|k| k.name()).collect();
    n.sort_unstable();
    n
}

/// Kind names in an order where every kind comes after the kinds it waits for.
pub fn deletion_order() -> Vec<&'static str> {
    let mut done: Vec<&'static str> = Vec::new();
    while done.len() < KINDS.len() {
        let before = done.len();
        let mut ready: Vec<&'static str> = KINDS
            .iter()
            .filter(|k| !done.contains(&k.name()))
            .filter(|k| k.wait_for().iter().all(|w| done.contains(w)))
            .map(|k| k.name())
            .collect();
        ready.sort_unstable();
        done.extend(ready);
        if done.len() == before {
            // A cycle; the registry test forbids it, so this only guards against an infinite loop.
            break;
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut n = names();
        n.dedup();
        assert_eq!(n.len(), KINDS.len());
    }

    #[test]
    fn every_dependency_is_a_registered_kind() {
        for k in KINDS {
            for w in k.wait_for() {
                assert!(
                    by_name(w).is_some(),
                    "{} waits for unknown kind {w}",
                    k.name()
                );
                assert_ne!(*w, k.name(), "{} waits for itself", k.name());
            }
        }
    }

    #[test]
    fn registry_has_no_cycle_and_order_respects_dependencies() {
        let order = deletion_order();
        assert_eq!(
            order.len(),
            KINDS.len(),
            "a cycle left kinds out: {order:?}"
        );
        let pos = |n: &str| order.iter().position(|o| *o == n).expect("in order");
        for k in KINDS {
            for w in k.wait_for() {
                assert!(pos(w) < pos(k.name()), "{w} must come before {}", k.name());
            }
        }
        assert!(pos("ec2-instance") < pos("security-group"));
        assert!(pos("ec2-instance") < pos("ebs-volume"));
        assert!(pos("rds-instance") < pos("rds-snapshot"));
        assert!(pos("k8s-deployment") < pos("k8s-namespace"));
    }
}
