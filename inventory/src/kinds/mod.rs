//! The registry of resource kinds, one file per kind.
//!
//! [`KINDS`] is an explicit `const` slice in the platform's destruction order: IAM roles, Auto
//! Scaling groups (and EKS node groups, which own theirs), EC2 instances, load balancers and
//! their target groups, S3 buckets, Lambda functions, RDS snapshots, RDS instances, EBS volumes,
//! security groups, then Kubernetes objects and namespaces. Adding a kind is one new file and one
//! line here. The position breaks ties; where a real dependency disagrees with the platform's
//! list, the dependency wins ([`deletion_order`]): a node group goes before the Auto Scaling
//! group it owns, a role after the instances, functions and node groups that use it (deleting it
//! first would break them if their own deletion failed), a manual snapshot after its DB instance
//! (its backup stays until the instance is gone).
//!
//! Kind-level order is the coarse rule; the planner orders per instance from each resource's
//! `wait_for` (this volume waits for *that* instance).

mod autoscaling_group;
mod ebs_volume;
mod ec2_instance;
mod eks_nodegroup;
mod iam_role;
mod k8s_configmap;
mod k8s_deployment;
mod k8s_namespace;
mod k8s_service;
mod lambda_function;
mod load_balancer;
mod rds_instance;
mod rds_snapshot;
mod s3_bucket;
mod security_group;
mod target_group;

use crate::kind::Kind;

pub use s3_bucket::MEASURE_PAGES as S3_MEASURE_PAGES;

/// Every kind, in the platform's destruction order.
pub const KINDS: &[&dyn Kind] = &[
    &iam_role::IamRole,
    &autoscaling_group::AutoscalingGroup,
    &eks_nodegroup::EksNodegroup,
    &ec2_instance::Ec2Instance,
    &load_balancer::LoadBalancer,
    &target_group::TargetGroup,
    &s3_bucket::S3Bucket,
    &lambda_function::LambdaFunction,
    &rds_snapshot::RdsSnapshot,
    &rds_instance::RdsInstance,
    &ebs_volume::EbsVolume,
    &security_group::SecurityGroup,
    &k8s_deployment::K8sDeployment,
    &k8s_service::K8sService,
    &k8s_configmap::K8sConfigMap,
    &k8s_namespace::K8sNamespace,
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

/// Kind names in an order where every kind comes after the kinds it waits for, ties broken by
/// the registry's (the platform's) order.
pub fn deletion_order() -> Vec<&'static str> {
    let mut done: Vec<&'static str> = Vec::new();
    while done.len() < KINDS.len() {
        let next = KINDS
            .iter()
            .filter(|k| !done.contains(&k.name()))
            .find(|k| k.wait_for().iter().all(|w| done.contains(w)));
        match next {
            Some(k) => done.push(k.name()),
            // A cycle; the registry test forbids it, so this only guards against a loop.
            None => break,
        }
    }
    done
}

/// Every AWS action the kinds call (plus the scope's own), sorted, without duplicates: the
/// content of the IAM policy of a job that lists and removes every kind.
pub fn iam_actions() -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = KINDS
        .iter()
        .filter_map(|k| k.aws())
        .flat_map(|a| a.iam_actions().iter().copied())
        .chain(crate::aws::SCOPE_IAM_ACTIONS.iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

/// What an AWS action does, by its verb: the split of [`iam_actions`] into the policy
/// documents' statements (a service that only snoozes needs `Read` and `Tag`, never `Remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Lists, describes or reads (`Describe*`, `List*`, `Get*`, `Head*`).
    Read,
    /// Writes or removes tags (`CreateTags`, `DeleteTags`, `UntagRole`, `PutBucketTagging`, …).
    Tag,
    /// Changes or removes the resource itself (delete, terminate, detach, abort).
    Remove,
}

/// The [`Access`] of `action` (`service:Verb…`).
pub fn access(action: &str) -> Access {
    let verb = action.split_once(':').map_or(action, |(_, v)| v);
    if ["Describe", "List", "Get", "Head"]
        .iter()
        .any(|p| verb.starts_with(p))
    {
        Access::Read
    } else if verb.contains("Tag") {
        Access::Tag
    } else {
        Access::Remove
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Platform;

    #[test]
    fn names_are_unique() {
        let mut n = names();
        n.dedup();
        assert_eq!(n.len(), KINDS.len());
    }

    #[test]
    fn every_dependency_is_a_registered_kind_of_the_same_platform() {
        for k in KINDS {
            for p in k.part_kinds() {
                let part =
                    by_name(p).unwrap_or_else(|| panic!("{} has unknown part {p}", k.name()));
                assert!(
                    part.wait_for().contains(&k.name()),
                    "a part waits for its owner: {p} must wait for {}",
                    k.name()
                );
            }
            for w in k.wait_for() {
                let other =
                    by_name(w).unwrap_or_else(|| panic!("{} waits for unknown {w}", k.name()));
                assert_ne!(*w, k.name(), "{} waits for itself", k.name());
                assert_eq!(
                    other.platform(),
                    k.platform(),
                    "{} waits across platforms",
                    k.name()
                );
            }
        }
    }

    #[test]
    fn every_kind_has_exactly_its_platform_s_interface() {
        for k in KINDS {
            match k.platform() {
                Platform::Aws => assert!(k.aws().is_some() && k.kube().is_none(), "{}", k.name()),
                Platform::Kubernetes => {
                    assert!(k.kube().is_some() && k.aws().is_none(), "{}", k.name())
                }
            }
        }
        let namespaces = KINDS
            .iter()
            .filter(|k| k.kube().is_some_and(|kk| kk.id_segment().is_none()))
            .count();
        assert_eq!(namespaces, 1, "exactly one namespace kind");
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
        // The platform's order where no dependency says otherwise.
        assert_eq!(
            order,
            [
                "eks-nodegroup",
                "autoscaling-group",
                "ec2-instance",
                "load-balancer",
                "target-group",
                "s3-bucket",
                "lambda-function",
                "iam-role",
                "rds-instance",
                "rds-snapshot",
                "ebs-volume",
                "security-group",
                "k8s-deployment",
                "k8s-service",
                "k8s-configmap",
                "k8s-namespace",
            ]
        );
    }

    #[test]
    fn every_aws_kind_routes_its_own_arns_and_only_those() {
        let scope = crate::aws::tests::scope();
        let examples = [
            ("iam-role", "arn:aws:iam::123456789012:role/app"),
            (
                "autoscaling-group",
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0f2c1a3e-1111-2222-3333-444455556666:autoScalingGroupName/web",
            ),
            (
                "eks-nodegroup",
                "arn:aws:eks:us-east-1:123456789012:nodegroup/dev/workers/8ec0c8e6-0000-4e1a-9f00-0123456789ab",
            ),
            (
                "ec2-instance",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
            ),
            (
                "load-balancer",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
            ),
            (
                "target-group",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067",
            ),
            ("s3-bucket", "arn:aws:s3:::stoa-artifacts"),
            (
                "lambda-function",
                "arn:aws:lambda:us-east-1:123456789012:function:stoa-core-api",
            ),
            (
                "rds-snapshot",
                "arn:aws:rds:us-east-1:123456789012:snapshot:s1",
            ),
            ("rds-instance", "arn:aws:rds:us-east-1:123456789012:db:db1"),
            (
                "ebs-volume",
                "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
            ),
            (
                "security-group",
                "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1",
            ),
        ];
        let aws_kinds: Vec<_> = KINDS.iter().filter(|k| k.aws().is_some()).collect();
        assert_eq!(examples.len(), aws_kinds.len(), "one example per AWS kind");
        for (kind, arn) in examples {
            let routed = scope.parse_arn(arn).map(|(k, _, _)| k.name());
            assert_eq!(routed, Some(kind), "{arn}");
        }
    }

    #[test]
    fn iam_actions_are_sorted_unique_and_service_qualified() {
        let actions = iam_actions();
        assert!(actions.windows(2).all(|w| w[0] < w[1]), "{actions:?}");
        assert!(actions.iter().all(|a| a.split_once(':').is_some_and(
            |(s, n)| !s.is_empty() && n.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        )));
        assert!(actions.contains(&"ec2:TerminateInstances"));
        let of = |a: Access| {
            actions
                .iter()
                .filter(|x| access(x) == a)
                .copied()
                .collect::<Vec<_>>()
        };
        assert!(of(Access::Read).contains(&"s3:GetBucketTagging"));
        assert!(of(Access::Tag).contains(&"ec2:DeleteTags"));
        assert!(of(Access::Tag).contains(&"s3:PutBucketTagging"));
        assert!(of(Access::Remove).contains(&"iam:RemoveRoleFromInstanceProfile"));
        assert!(!of(Access::Remove).iter().any(|a| a.contains("Tag")));
        assert!(actions.contains(&"s3:DeleteObjectVersion"));
    }
}
