//! What exists: one [`Resource`] model for every AWS and Kubernetes kind the jobs look at, and
//! the registry of kinds ([`kinds::KINDS`]), one file per kind holding everything about it —
//! its name, the kinds it waits for, its ARN shape, how to list it, describe one, write its
//! tags, remove it and read the state of a removal, its cost basis and its quota dimension.
//!
//! The crate has no policy: it lists, describes and removes. Whether something *should* be
//! removed is the caller's ([`Guard`], passed to every removal and asked again on the resource
//! as it is just before the call). The TTL job deletes through it, the usage reports count
//! through it, and the snooze service reads one resource through it.
//!
//! - [`Providers`] builds the scopes of a config and lists them ([`Listing`], partial: a kind
//!   that cannot be listed fails for its scope only), then [`link`]s the relations each kind saw
//!   into per-instance order ([`Resource::wait_for`], [`Resource::part_of`]).
//! - [`file::load_file`] reads an offline inventory in the same model.

pub mod arn;
pub mod aws;
pub mod cost;
pub mod error;
pub mod file;
pub mod kind;
pub mod kinds;
pub mod kube;
pub mod link;
pub mod providers;
pub mod resource;

pub use cost::{Cost, Estimate, Pricing};
pub use error::{FileError, ProviderError};
pub use kind::{
    ArnShape, AwsKind, Current, Guard, Kind, KubeKind, Measure, Phase, Platform, Quota, Removal,
    State,
};
pub use kube::{KubeScope, KubeSource, PROTECTED_NAMESPACES};
pub use providers::{ConnectError, ListFailure, Listing, Providers};
pub use resource::{Attributes, Ref, Relation, Resource, Scope, short_name};
