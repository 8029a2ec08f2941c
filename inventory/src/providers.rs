//! Every scope a config names — one [`AwsScope`] per (account, region), the [`KubeScope`] of the
//! cluster — listed together and dispatched by each resource's scope or id.

use std::collections::{BTreeMap, HashSet};

use common::clients::{aws_sdk_config, aws_targets, kube_client};
use common::config::{AwsConfig, KubernetesConfig};
use common::shard::Shard;

use crate::arn::Arn;
use crate::aws::{AwsScope, caller_account};
use crate::error::ProviderError;
use crate::kind::{Guard, Removal, State};
use crate::kube::{KubeScope, KubeSource};
use crate::resource::{Resource, Scope};

/// Why the providers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// AWS is a source but the config names no region.
    #[error("aws is a source but aws.regions is empty")]
    NoRegions,
    /// The ambient account could not be found (STS GetCallerIdentity).
    #[error("cannot tell which AWS account the credentials act in")]
    CallerAccount(#[source] ProviderError),
    /// The Kubernetes client could not be configured.
    #[error("kubernetes")]
    Kubernetes(#[source] common::Error),
}

/// A kind that could not be listed in a scope: everything of that scope that may depend on it
/// is held back by the caller.
#[derive(Debug, Clone)]
pub struct ListFailure {
    /// Where.
    pub scope: Scope,
    /// The kind that could not be listed.
    pub kind: &'static str,
    /// Why.
    pub error: ProviderError,
}

/// What one listing found: the resources (linked) and the kinds that failed.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every resource listed, with `wait_for` and `part_of` resolved.
    pub resources: Vec<Resource>,
    /// Kinds that could not be listed, per scope.
    pub failures: Vec<ListFailure>,
}

impl Listing {
    /// The listing failure that may hide something `r` depends on, or a part that would go with
    /// it: a failed kind that `r`'s kind waits for or may have parts of, in the same account and
    /// region (any region of the account when either kind is global, such as IAM roles), or in
    /// the same cluster.
    pub fn blocking_failure(&self, r: &Resource) -> Option<&ListFailure> {
        let kind = crate::kinds::by_name(r.kind)?;
        let global = |k: &str| {
            crate::kinds::by_name(k)
                .and_then(|k| k.aws())
                .is_some_and(|a| a.global())
        };
        self.failures.iter().find(|f| {
            (kind.wait_for().contains(&f.kind) || kind.part_kinds().contains(&f.kind))
                && match (&f.scope, &r.scope) {
                    (
                        Scope::Aws { account, region },
                        Scope::Aws {
                            account: a,
                            region: rg,
                        },
                    ) => account == a && (region == rg || global(f.kind) || global(r.kind)),
                    (Scope::Kubernetes { cluster }, Scope::Kubernetes { cluster: c }) => {
                        cluster == c
                    }
                    _ => false,
                }
        })
    }
}

/// How much of each kind a listing reads.
#[derive(Debug, Clone, Copy)]
enum Coverage {
    /// Every resource ([`crate::AwsKind::list`]).
    Everything,
    /// What a teardown plan can act on ([`crate::AwsKind::list_candidates`]).
    Candidates,
}

/// Every scope the config names.
#[derive(Debug, Default)]
pub struct Providers {
    aws: BTreeMap<(String, String), AwsScope>,
    kube: Option<KubeScope>,
}

impl Providers {
    /// Builds the scopes: every (account, region) of `aws` (an account given as `default` is the
    /// credentials' own, found with STS GetCallerIdentity; the first region of each account, in
    /// sorted order, lists its global kinds), and the cluster of `kubernetes`.
    pub async fn connect(
        aws: Option<&AwsConfig>,
        kubernetes: Option<(&KubernetesConfig, &KubeSource)>,
    ) -> Result<Providers, ConnectError> {
        Self::connect_shard(aws, kubernetes, None).await
    }

    /// [`Providers::connect`] for one shard of a run: only the shard's (account, region) pairs
    /// of the sorted list (`common::shard`), and the cluster only on shard 0. An account's
    /// global kinds are listed by the shard that owns its home region, so exactly once.
    pub async fn connect_shard(
        aws: Option<&AwsConfig>,
        kubernetes: Option<(&KubernetesConfig, &KubeSource)>,
        shard: Option<Shard>,
    ) -> Result<Providers, ConnectError> {
        let mut scopes = Vec::new();
        if let Some(config) = aws {
            let targets = aws_targets(config);
            if targets.is_empty() {
                return Err(ConnectError::NoRegions);
            }
            let mut homes: BTreeMap<String, String> = BTreeMap::new();
            for (position, target) in targets.into_iter().enumerate() {
                // Targets come sorted, so the first region seen is the account's home, whoever
                // owns it.
                let home = homes
                    .entry(target.account.clone())
                    .or_insert_with(|| target.region.clone())
                    == &target.region;
                if shard.is_some_and(|s| !s.owns(position)) {
                    continue;
                }
                let sdk = aws_sdk_config(config, &target).await;
                let account = if target.account == "default" {
                    caller_account(&sdk)
                        .await
                        .map_err(ConnectError::CallerAccount)?
                } else {
                    target.account.clone()
                };
                scopes.push(AwsScope::new(&sdk, &account, &target.region, home));
            }
        }
        let kube = match kubernetes {
            Some(_) if shard.is_some_and(|s| !s.owns_unsplit()) => None,
            Some((config, source)) => {
                let client = kube_client(config)
                    .await
                    .map_err(ConnectError::Kubernetes)?;
                let cluster = config.cluster_name.as_deref().unwrap_or("default");
                Some(KubeScope::new(client, cluster, source))
            }
            None => None,
        };
        Ok(Providers::from_scopes(scopes, kube))
    }

    /// Wraps scopes built elsewhere (tests and tools that make their own SDK clients).
    pub fn from_scopes(aws: Vec<AwsScope>, kube: Option<KubeScope>) -> Providers {
        Providers {
            aws: aws
                .into_iter()
                .map(|s| ((s.account().to_string(), s.region().to_string()), s))
                .collect(),
            kube,
        }
    }

    /// The AWS scopes, by (account, region).
    pub fn aws_scopes(&self) -> impl Iterator<Item = &AwsScope> {
        self.aws.values()
    }

    /// The Kubernetes scope, when configured.
    pub fn kube_scope(&self) -> Option<&KubeScope> {
        self.kube.as_ref()
    }

    /// Lists everything in every scope, concurrently, and links the result: what usage and
    /// quotas count. Within one (account, region) the kinds are listed one after another, in
    /// registry order: they compete for the same API budget, and against a slow endpoint
    /// concurrent describes pile up past the attempt timeout (seen against moto at 2,000
    /// instances). A kind that fails is a [`ListFailure`] of that kind and scope only.
    pub async fn list(&self) -> Listing {
        self.list_with(Coverage::Everything).await
    }

    /// Lists what a teardown plan can act on ([`crate::AwsKind::list_candidates`]): as
    /// [`Providers::list`], but parts that go with their owner and that only the owner's listing
    /// names ([`crate::Relation::Has`]: an instance's root volumes) are left out. Before acting,
    /// [`Providers::read_parts`] reads those of the owners the plan removes.
    pub async fn list_candidates(&self) -> Listing {
        self.list_with(Coverage::Candidates).await
    }

    /// Reads the parts `owners` (resource ids) name with [`crate::Relation::Has`] that the
    /// listing does not hold yet, by native id, one call per kind and scope, adds them and links
    /// again. A kind whose parts cannot be read is a [`ListFailure`] of its scope, which holds
    /// back every resource there that may have such parts ([`Listing::blocking_failure`]).
    /// Returns whether the listing changed (parts added, or a failure).
    pub async fn read_parts(&self, listing: &mut Listing, owners: &[&str]) -> bool {
        let known: HashSet<(&Scope, &str, &str)> = listing
            .resources
            .iter()
            .flat_map(|r| r.keys.iter().map(move |k| (&r.scope, r.kind, k.as_str())))
            .collect();
        let owners: HashSet<&str> = owners.iter().copied().collect();
        let mut missing: BTreeMap<(Scope, &'static str), Vec<String>> = BTreeMap::new();
        for r in listing
            .resources
            .iter()
            .filter(|r| owners.contains(r.id.as_str()))
        {
            for part in r.refs.iter().filter(|x| x.relation == crate::Relation::Has) {
                if !known.contains(&(&r.scope, part.kind, part.key.as_str())) {
                    missing
                        .entry((r.scope.clone(), part.kind))
                        .or_default()
                        .push(part.key.clone());
                }
            }
        }
        if missing.is_empty() {
            return false;
        }
        let reads = missing.into_iter().map(|((scope, kind), mut natives)| async move {
            natives.sort_unstable();
            natives.dedup();
            let read = match (self.scope_of(&scope), crate::kinds::by_name(kind).and_then(|k| k.aws())) {
                (Some(aws), Some(k)) => k.read(aws, &natives).await,
                _ => Err(ProviderError::refusal(
                    "read",
                    &scope.label(),
                    format!("no AWS scope or kind to read {kind} parts in"),
                )),
            };
            tracing::debug!(scope = %scope.label(), kind, parts = natives.len(), ok = read.is_ok(), "parts read");
            (scope, kind, read)
        });
        for (scope, kind, read) in futures::future::join_all(reads).await {
            match read {
                Ok(parts) => listing.resources.extend(parts),
                Err(error) => {
                    tracing::warn!(scope = %scope.label(), kind, %error, "parts not read: their owners are held");
                    listing.failures.push(ListFailure { scope, kind, error });
                }
            }
        }
        crate::link::link(&mut listing.resources);
        true
    }

    fn scope_of(&self, scope: &Scope) -> Option<&AwsScope> {
        match scope {
            Scope::Aws { account, region } => self.aws.get(&(account.clone(), region.clone())),
            Scope::Kubernetes { .. } => None,
        }
    }

    async fn list_with(&self, coverage: Coverage) -> Listing {
        let aws = futures::future::join_all(self.aws.values().map(|scope| async move {
            let mut resources = Vec::new();
            let mut failures = Vec::new();
            for (kind, aws) in scope.kinds() {
                let listed = match coverage {
                    Coverage::Everything => aws.list(scope).await,
                    Coverage::Candidates => aws.list_candidates(scope, &resources).await,
                };
                match listed {
                    Ok(r) => resources.extend(r),
                    Err(error) => {
                        tracing::warn!(scope = %scope.scope_label(), kind = kind.name(), %error, "kind not listed");
                        failures.push(ListFailure {
                            scope: scope.scope(),
                            kind: kind.name(),
                            error,
                        });
                    }
                }
            }
            (resources, failures)
        }));
        let kube = async {
            match &self.kube {
                Some(k) => {
                    let (resources, failed) = k.list().await;
                    let scope = Scope::Kubernetes {
                        cluster: k.cluster().to_string(),
                    };
                    let failures = failed
                        .into_iter()
                        .map(|(kind, error)| ListFailure {
                            scope: scope.clone(),
                            kind,
                            error,
                        })
                        .collect();
                    (resources, failures)
                }
                None => (Vec::new(), Vec::new()),
            }
        };
        let (aws, kube) = tokio::join!(aws, kube);
        let mut listing = Listing::default();
        for (resources, failures) in aws.into_iter().chain(std::iter::once(kube)) {
            listing.resources.extend(resources);
            listing.failures.extend(failures);
        }
        crate::link::link(&mut listing.resources);
        listing
    }

    /// The current state of one resource, by id, or `None` when no scope lists it.
    ///
    /// An ARN goes to the AWS scope of its account and region; an ARN without a region (IAM) to
    /// the account's home scope; an ARN without an account either (S3) to whichever scope finds
    /// the bucket in its region. `k8s:…` goes to the Kubernetes scope. An id no configured scope
    /// is responsible for is `None`, like a resource that does not exist. One or two describe
    /// calls, never a listing.
    pub async fn get(&self, id: &str) -> Result<Option<Resource>, ProviderError> {
        if id.starts_with("k8s:") {
            return match &self.kube {
                Some(k) => k.get(id).await,
                None => Ok(None),
            };
        }
        let Some(arn) = Arn::parse(id) else {
            return Ok(None);
        };
        let candidates: Vec<&AwsScope> = self
            .aws
            .values()
            .filter(|s| match (arn.account, arn.region) {
                ("", _) => true,
                (account, "") => s.account() == account && s.is_home(),
                (account, region) => s.account() == account && s.region() == region,
            })
            .collect();
        for scope in candidates {
            if let Some(r) = scope.get(id).await? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Whether some configured scope would answer for this id (its account and region, or its
    /// account for an ARN without a region, any AWS scope for an S3 bucket, the cluster for
    /// `k8s:`): when it does, `get` saying `None` means the resource is gone.
    pub fn covers(&self, id: &str) -> bool {
        if id.starts_with("k8s:") {
            return self.kube.is_some();
        }
        let Some(arn) = Arn::parse(id) else {
            return false;
        };
        self.aws.values().any(|s| match (arn.account, arn.region) {
            ("", _) => true,
            (account, "") => s.account() == account,
            (account, region) => s.account() == account && s.region() == region,
        })
    }

    /// Sets `set` and removes the `remove` tags (annotations) on the resource.
    pub async fn write_tags(
        &self,
        r: &Resource,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), ProviderError> {
        match &r.scope {
            Scope::Aws { .. } => self.aws_for(r)?.write_tags(r, set, remove).await,
            Scope::Kubernetes { .. } => self.kube_for(r)?.write_tags(r, set, remove).await,
        }
    }

    /// Removes the resource after a re-read and `guard`'s last word (see [`AwsScope::remove`],
    /// [`KubeScope::remove`]).
    pub async fn remove(&self, r: &Resource, guard: &dyn Guard) -> Result<Removal, ProviderError> {
        match &r.scope {
            Scope::Aws { .. } => self.aws_for(r)?.remove(r, guard).await,
            Scope::Kubernetes { .. } => self.kube_for(r)?.remove(r, guard).await,
        }
    }

    /// Reads the resource's current state.
    pub async fn state(&self, r: &Resource) -> Result<State, ProviderError> {
        match &r.scope {
            Scope::Aws { .. } => self.aws_for(r)?.state(r).await,
            Scope::Kubernetes { .. } => self.kube_for(r)?.state(r).await,
        }
    }

    fn aws_for(&self, r: &Resource) -> Result<&AwsScope, ProviderError> {
        self.scope_of(&r.scope).ok_or_else(|| no_scope(r))
    }

    fn kube_for(&self, r: &Resource) -> Result<&KubeScope, ProviderError> {
        match &self.kube {
            Some(k) if matches!(&r.scope, Scope::Kubernetes { cluster } if cluster == k.cluster()) => {
                Ok(k)
            }
            _ => Err(no_scope(r)),
        }
    }
}

fn no_scope(r: &Resource) -> ProviderError {
    ProviderError::refusal(
        "route",
        &r.id,
        format!("no configured scope for {}", r.scope.label()),
    )
}
