//! What a destructive job asks about: an AWS resource, a Kubernetes object, or both.

use std::collections::BTreeMap;

/// A resource a job is about to touch, described by what the whitelist can match on.
///
/// Fill in what you know; every field is optional. Rules only protect through the fields that
/// are set, so leaving a field empty can only make a resource *less* protected — except for the
/// fail-closed cases: a malformed `arn` and `tags_unreadable` both make the resource protected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// The resource's ARN; matched against `aws_resources`, and its account part against
    /// `accounts`.
    pub arn: Option<String>,
    /// The AWS account the resource lives in, when the ARN does not say: S3 bucket ARNs carry no
    /// account, and a Kubernetes object lives in its cluster's account. Checked against
    /// `accounts` in addition to the ARN's own account part.
    pub account: Option<String>,
    /// The resource's AWS tags, matched against `tags`.
    pub tags: BTreeMap<String, String>,
    /// Set when the tags could not be read (with what went wrong): the resource is then treated
    /// as protected, because a protecting tag might be among the unread ones.
    pub tags_unreadable: Option<String>,
    /// The Kubernetes identity, for Kubernetes objects.
    pub kubernetes: Option<KubeObject>,
}

/// A Kubernetes object's identity and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeObject {
    /// The object's kind, e.g. `Deployment`; an object of kind `Namespace` (any case) is the
    /// namespace `name` itself.
    pub kind: String,
    /// The namespace of a namespaced object; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// The object's own labels.
    pub labels: BTreeMap<String, String>,
    /// The labels of the object's namespace (for a `Namespace`, its own labels again).
    pub namespace_labels: BTreeMap<String, String>,
}

impl KubeObject {
    /// The namespace that protects this object: its own namespace, or itself when it is a
    /// `Namespace`.
    pub fn effective_namespace(&self) -> Option<&str> {
        if self.kind.eq_ignore_ascii_case("namespace") {
            Some(&self.name)
        } else {
            self.namespace.as_deref()
        }
    }
}

impl Resource {
    /// An AWS resource known by its ARN.
    pub fn aws(arn: impl Into<String>) -> Self {
        Self {
            arn: Some(arn.into()),
            ..Self::default()
        }
    }

    /// A Kubernetes object; `namespace` is `None` for cluster-scoped objects.
    pub fn kubernetes(
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            kubernetes: Some(KubeObject {
                kind: kind.into(),
                namespace: namespace.map(str::to_owned),
                name: name.into(),
                ..KubeObject::default()
            }),
            ..Self::default()
        }
    }

    /// Adds an AWS tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the account explicitly (see [`Resource::account`]).
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Marks the tags as unreadable, with what went wrong.
    pub fn with_unreadable_tags(mut self, detail: impl Into<String>) -> Self {
        self.tags_unreadable = Some(detail.into());
        self
    }

    /// Adds a label to the Kubernetes object (creating an empty identity if there is none).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.kubernetes
            .get_or_insert_with(KubeObject::default)
            .labels
            .insert(key.into(), value.into());
        self
    }

    /// Adds a label of the Kubernetes object's namespace.
    pub fn with_namespace_label(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.kubernetes
            .get_or_insert_with(KubeObject::default)
            .namespace_labels
            .insert(key.into(), value.into());
        self
    }
}
