//! What a resource kind is: the traits every file under `kinds/` implements.
//!
//! A [`Kind`] holds everything about one kind — its name, the kinds it waits for, its cost basis
//! and quota dimension — and, through [`Kind::aws`] or [`Kind::kube`], how to list it, describe
//! one, write its tags, remove it and read the state of a removal (Kubernetes kinds share one
//! implementation in [`crate::kube::KubeScope`] and only say which API resource they are). Nothing outside a kind's file
//! spells its name or matches on it: callers go through the registry
//! ([`crate::kinds::KINDS`]).

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::AwsScope;
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::resource::Resource;

/// Which API a kind lives behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// AWS.
    Aws,
    /// Kubernetes.
    Kubernetes,
}

/// How a quota dimension measures a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// One per resource.
    Count,
    /// Its size in GiB ([`crate::Attributes::size_gb`]).
    SizeGb,
}

/// The quota a kind counts against, per tenant (`project` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The dimension's stable name (`ec2_instances`, `ebs_volume_gb`, …).
    pub dimension: &'static str,
    /// How a resource counts.
    pub measure: Measure,
}

impl Quota {
    /// What `r` adds to this dimension.
    pub fn amount(&self, r: &Resource) -> f64 {
        match self.measure {
            Measure::Count => 1.0,
            Measure::SizeGb => r.attributes.size_gb.unwrap_or(0.0),
        }
    }
}

/// How a removal call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The resource is gone (or was already gone: removal is idempotent).
    Done,
    /// The provider accepted the removal and the resource is on its way (`shutting-down`,
    /// `deleting`, `Terminating`): dependants must wait until [`State::Gone`].
    Pending {
        /// The provider's state name.
        state: String,
    },
}

/// A resource's current state, as far as deletion ordering cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// It no longer exists (or is in a terminal "deleted" state such as `terminated`).
    Gone,
    /// It still exists, in this provider state.
    Present(String),
}

/// How a kind reads one of its state names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Gone for good (`terminated`, `deleted`).
    Gone,
    /// Removal under way: report this instead of calling again.
    Removing(Removal),
    /// Present and not being removed.
    Live,
}

/// What a describe call says about one resource right now.
#[derive(Debug, Clone)]
pub struct Current {
    /// Provider state (`running`, `available`, …).
    pub state: String,
    /// Current tags, or why they could not be read.
    pub tags: Result<BTreeMap<String, String>, String>,
    /// Set when this resource must never be removed whatever its tags (a `default` security
    /// group, an automated snapshot, an instance that belongs to an Auto Scaling group).
    pub never: Option<String>,
    /// Pricing inputs the describe call read (instance type, DB class, size), when the kind
    /// reads them: a resource fetched by id (the snooze pages) can show its cost too.
    pub attributes: Option<crate::Attributes>,
}

/// The caller's last word before a removal: the job's rules applied to the resource as it is
/// *now*. The inventory has no policy of its own; it re-reads the resource and asks.
pub trait Guard: Sync {
    /// Why `planned` (the resource as the plan saw it) must not be removed, given what a
    /// describe call says about it now; `None`: go ahead.
    fn refuses(&self, planned: &Resource, current: &Current) -> Option<String>;

    /// Why something that would be removed along with it (an object in a namespace, with these
    /// current tags) forbids the removal; `None`: it may go.
    fn refuses_contained(&self, id: &str, tags: &BTreeMap<String, String>) -> Option<String>;
}

/// A resource kind: one file under `kinds/`, one line in [`crate::kinds::KINDS`].
pub trait Kind: Sync {
    /// Stable name used in inventories, findings and metrics (`ec2-instance`).
    fn name(&self) -> &'static str;
    /// Which API the kind lives behind.
    fn platform(&self) -> Platform;
    /// Kinds whose resources may have to be gone before a resource of this kind can be removed.
    /// Per-instance edges come from the resources; this kind-level list orders the registry and
    /// says which listing failures hold this kind back (an instance listing that failed holds
    /// every security group of that account and region).
    fn wait_for(&self) -> &'static [&'static str];
    /// Kinds whose resources may be parts of one of this kind, going when it is removed (an
    /// instance's root volumes, a group's instances). A listing of one of them that failed holds
    /// this kind back as a failed [`Kind::wait_for`] kind does: what would go with the resource
    /// is unknown, and might be protected.
    fn part_kinds(&self) -> &'static [&'static str] {
        &[]
    }
    /// The tenant quota a resource of this kind counts against, if any.
    fn quota(&self) -> Option<Quota> {
        None
    }
    /// What a resource of this kind costs per hour.
    fn cost(&self, _r: &Resource, _pricing: &Pricing) -> Cost {
        Cost::Free
    }
    /// How the kind is listed and acted on in AWS, for an AWS kind.
    fn aws(&self) -> Option<&dyn AwsKind> {
        None
    }
    /// How the kind is listed and acted on in Kubernetes, for a Kubernetes kind.
    fn kube(&self) -> Option<&dyn KubeKind> {
        None
    }
}

/// The shape of a kind's ARNs: `arn:<partition>:<service>:<region>:<account>:<prefix><rest>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArnShape {
    /// The service part (`ec2`, `rds`, `iam`, `s3`).
    pub service: &'static str,
    /// What the resource part starts with (`instance/`, `db:`, `role/`; empty for S3 buckets).
    pub prefix: &'static str,
    /// Whether the region part is filled (IAM and S3 ARNs have none).
    pub regional: bool,
    /// Whether the account part is filled (S3 ARNs have none).
    pub has_account: bool,
}

/// An AWS kind's calls. Every call takes the [`AwsScope`] (clients, rate limit, page size of one
/// account and region) and waits for its rate limit.
pub trait AwsKind: Sync {
    /// The kind's ARN shape.
    fn arn(&self) -> ArnShape;
    /// The id the API takes, from the resource part of an ARN of this shape (`instance/i-1` →
    /// `i-1`); `None` when it is not one of ours.
    fn native_id(&self, resource_part: &str) -> Option<String>;
    /// The name a listing gives the resource whose native id is `native` ([`Resource::name`]):
    /// the native id itself, unless the kind's native id is more than its name (a load
    /// balancer's `loadbalancer/app/<name>/<id>`). Read one resource, it is named as listed.
    fn name_of(&self, native: &str) -> String {
        native.to_string()
    }
    /// Listed once per account (from its home region) rather than once per region.
    fn global(&self) -> bool {
        false
    }
    /// The AWS actions the kind calls (read and write), for the IAM policy documents.
    fn iam_actions(&self) -> &'static [&'static str];
    /// Every resource of the kind in the scope, with tags, state, attributes and [`crate::Ref`]s.
    fn list<'a>(&'a self, aws: &'a AwsScope)
    -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>>;
    /// What a teardown plan needs of the kind in the scope: by default everything
    /// ([`AwsKind::list`]). A kind whose resources are mostly parts of others (EBS volumes, most
    /// of them root volumes) lists those that stand on their own and those `listed` (the kinds
    /// of the scope listed before it, in registry order) says wait for something; the parts of
    /// what a plan removes are read afterwards ([`AwsKind::read`],
    /// [`crate::Providers::read_parts`]).
    fn list_candidates<'a>(
        &'a self,
        aws: &'a AwsScope,
        _listed: &'a [Resource],
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        self.list(aws)
    }
    /// The resources with these native ids, as a listing gives them; an id AWS no longer knows
    /// is left out. By default the whole listing, filtered: a kind that is read by id often
    /// answers with its API's own id filter.
    fn read<'a>(
        &'a self,
        aws: &'a AwsScope,
        natives: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let names: Vec<String> = natives.iter().map(|n| self.name_of(n)).collect();
            let all = self.list(aws).await?;
            Ok(all
                .into_iter()
                .filter(|r| names.contains(&r.name))
                .collect())
        }
        .boxed()
    }
    /// The resource as it is now, `None` when AWS no longer knows it.
    fn describe<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Option<Current>, ProviderError>>;
    /// Sets the `set` tags (overwriting) and removes the `remove` keys.
    fn write_tags<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
        set: &'a [(String, String)],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
    /// Removes it (the caller has re-read it and asked the [`Guard`]). Idempotent: already gone
    /// is [`Removal::Done`].
    fn delete<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Removal, ProviderError>>;
    /// How the kind reads a state name.
    fn phase(&self, _state: &str) -> Phase {
        Phase::Live
    }
}

/// A Kubernetes kind: namespaces and namespaced objects, read and written through the dynamic
/// API by [`KubeScope`], which needs only these facts about each kind.
pub trait KubeKind: Sync {
    /// The Kubernetes kind name (`Namespace`, `Deployment`), for whitelist rules.
    fn kube_kind(&self) -> &'static str;
    /// The segment in ids (`k8s:<segment>/<namespace>/<name>`); `None` for namespaces, whose
    /// id is `k8s:<name>`.
    fn id_segment(&self) -> Option<&'static str>;
    /// The API resource (group, version, plural) of the kind.
    fn api_resource(&self) -> kube::api::ApiResource;
}
