#![doc = include_str!("../README.md")]
//!
//! # Where is what
//!
//! - [`Whitelist`] (`whitelist.rs`): load, verdict, explain, warnings.
//! - `load.rs`: YAML → validated [`Rule`]s, every problem located.
//! - [`arn`]: the `ArnLike` pattern syntax and the reference glob matcher.
//! - [`selector`]: Kubernetes label selectors.
//! - `compiled.rs`: the indexes behind [`Whitelist::verdict`].
//! - [`naive`]: the rule-by-rule reference matcher (test oracle, benchmark baseline).
//! - `lint.rs`: the warnings of `whitelist check`.
//!
//! Architecture invariant: nothing but `load.rs` constructs a [`Rule`], so every rule a
//! verdict can name has passed validation.

pub mod arn;
mod compiled;
mod error;
mod lint;
mod load;
pub mod naive;
mod protection;
mod resource;
mod rule;
pub mod selector;
mod whitelist;

pub use error::{Diagnostic, Error, Severity};
pub use protection::{MatchedOn, Protection};
pub use resource::{KubeObject, Resource};
pub use rule::{Rule, Section};
pub use whitelist::Whitelist;
