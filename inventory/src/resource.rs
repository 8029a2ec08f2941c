//! The one description of a resource that every kind produces and every job reads.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

/// Where a resource lives: for caps, routing, sharding and findings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// An AWS account and region. Global kinds (IAM) have the account's home region here: the
    /// region they were listed from.
    Aws {
        /// Account id.
        account: String,
        /// Region name.
        region: String,
    },
    /// A Kubernetes cluster (by configured name).
    Kubernetes {
        /// Cluster name.
        cluster: String,
    },
}

impl Scope {
    /// The cap key: `aws:<account>` or `k8s:<cluster>` (caps are per account and per cluster).
    pub fn cap_key(&self) -> String {
        match self {
            Scope::Aws { account, .. } => format!("aws:{account}"),
            Scope::Kubernetes { cluster } => format!("k8s:{cluster}"),
        }
    }

    /// `aws:<account>/<region>` or `k8s:<cluster>`: the subject of listing errors.
    pub fn label(&self) -> String {
        match self {
            Scope::Aws { account, region } => format!("aws:{account}/{region}"),
            Scope::Kubernetes { cluster } => format!("k8s:{cluster}"),
        }
    }
}

/// What a kind knows about a resource beyond its tags: pricing and quota inputs and the
/// provider's own creation time.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attributes {
    /// EC2 instance type (`t3.large`).
    pub instance_type: Option<String>,
    /// RDS instance class (`db.t3.medium`).
    pub db_class: Option<String>,
    /// RDS Multi-AZ deployment.
    pub multi_az: bool,
    /// Storage in GiB: an EBS volume or RDS snapshot's size, an S3 bucket's stored bytes (all
    /// versions) when measured.
    pub size_gb: Option<f64>,
    /// When the provider says the resource was created (launch time, creation date), for people;
    /// the TTL deadline uses the `created_at` tag.
    pub created: Option<Timestamp>,
}

/// How one resource relates to another, as a kind sees it while listing. Resolved by
/// [`link`](crate::link) into [`Resource::wait_for`] and [`Resource::part_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// This resource can only be removed once the other is gone (a volume attached to an
    /// instance, a snapshot of a DB instance, a target group used by a load balancer).
    WaitsFor,
    /// The other resource can only be removed once this one is gone (an instance using a
    /// security group or an instance profile's role).
    Blocks,
    /// This resource goes with the other: removing the other removes it (a root volume with
    /// DeleteOnTermination, an instance of an Auto Scaling group, a managed node group's Auto
    /// Scaling group). It is never removed on its own.
    PartOf,
    /// The other resource is part of this one: [`Relation::PartOf`] as the owner sees it (an
    /// instance's DeleteOnTermination volumes, from its DescribeInstances answer). A teardown
    /// listing leaves such parts out until their owner is to go
    /// ([`crate::Providers::read_parts`]).
    Has,
}

/// A reference from one resource to another of `kind`, found by one of its [`Resource::keys`]
/// in the same account (and region, unless `kind` is global).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ref {
    /// How the two relate.
    pub relation: Relation,
    /// Registry name of the other resource's kind.
    pub kind: &'static str,
    /// A key of the other resource (its native id, name, or a kind-specific alias such as
    /// `instance-profile/<name>` for a role).
    pub key: String,
}

impl Ref {
    /// A reference of `relation` to the resource of `kind` known by `key`.
    pub fn new(relation: Relation, kind: &'static str, key: impl Into<String>) -> Ref {
        Ref {
            relation,
            kind,
            key: key.into(),
        }
    }
}

/// One resource as every kind describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The ARN for AWS; `k8s:<namespace>` for a namespace, `k8s:<kind>/<namespace>/<name>` else.
    pub id: String,
    /// Registry kind name (`ec2-instance`, `k8s-namespace`, …).
    pub kind: &'static str,
    /// Short name for people and for references (instance id, bucket name, object name).
    pub name: String,
    /// Account/region or cluster.
    pub scope: Scope,
    /// Kubernetes namespace of a namespaced object (or the namespace itself).
    pub namespace: Option<String>,
    /// Tags (AWS) or annotations under the configured prefix with the prefix removed (Kubernetes).
    pub tags: BTreeMap<String, String>,
    /// Kubernetes labels (for whitelist selectors).
    pub labels: BTreeMap<String, String>,
    /// Labels of the object's namespace.
    pub namespace_labels: BTreeMap<String, String>,
    /// `created_at` to use when the tag is absent (Kubernetes `creationTimestamp`).
    pub created_fallback: Option<Timestamp>,
    /// Provider state (`running`, `shutting-down`, `available`…), when known.
    pub state: Option<String>,
    /// Pricing and quota inputs.
    pub attributes: Attributes,
    /// Ids of resources that must be gone before this one can be removed (per instance: the
    /// instance using this security group, the instance this volume is attached to, …). Filled
    /// by [`link`](crate::link) from [`Resource::refs`], or given in an offline inventory.
    pub wait_for: Vec<String>,
    /// The id of the resource this one goes with ([`Relation::PartOf`]): it is removed by
    /// removing that one, never on its own. An id starting with `unresolved:` names an owner
    /// that was not found (the part is then never removed).
    pub part_of: Option<String>,
    /// The keys other resources' [`Ref`]s may use for this one (always includes `name`).
    pub keys: Vec<String>,
    /// What this resource's kind saw of its relations while listing.
    pub refs: Vec<Ref>,
    /// Set when the provider could not read this resource's tags: it is then protected.
    pub tags_unreadable: Option<String>,
}

impl Resource {
    /// A resource with the fields every kind fills; the rest empty.
    pub fn new(kind: &'static str, id: String, name: String, scope: Scope) -> Resource {
        Resource {
            id,
            kind,
            keys: vec![name.clone()],
            name,
            scope,
            namespace: None,
            tags: BTreeMap::new(),
            labels: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
            created_fallback: None,
            state: None,
            attributes: Attributes::default(),
            wait_for: Vec::new(),
            part_of: None,
            refs: Vec::new(),
            tags_unreadable: None,
        }
    }

    /// The `Name` tag, when it is set and differs from the id-derived name: what people call it.
    pub fn display_name(&self) -> Option<&str> {
        self.tags
            .get("Name")
            .map(String::as_str)
            .filter(|n| !n.trim().is_empty() && *n != self.name)
    }
}

/// The last path segment of an id (`i-0abc` from an instance ARN, `web` from `k8s:…/web`).
pub fn short_name(id: &str) -> String {
    id.rsplit(['/', ':']).next().unwrap_or(id).to_string()
}
