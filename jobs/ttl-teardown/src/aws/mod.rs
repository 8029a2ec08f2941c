//! The AWS provider: EC2 instances, EBS volumes, security groups, RDS DB instances and RDS manual
//! snapshots of one account in one region.
//!
//! One file per kind (`ec2_instance.rs`, …) holds that kind's list, describe and delete calls;
//! `link.rs` computes the per-instance dependencies (`wait_for`) from the whole inventory;
//! this file holds what every kind shares: the clients, the rate limit, the checks done before
//! any mutating call, and the idempotent removal protocol.
//!
//! # Calls and limits
//! - Retries: the EC2 and RDS clients use the SDK's **standard retry mode** with
//!   [`MAX_ATTEMPTS`] attempts: throttling (`RequestLimitExceeded`, `Throttling`, …), transient
//!   server errors, timeouts and connection failures are retried by the SDK with exponential
//!   backoff and full jitter, so many jobs throttled at once do not retry in lockstep.
//! - Rate limit: every call (reads and the rare writes alike) waits for a slot of one
//!   rate limiter (`limit.rs`) per provider, at most [`CALLS_PER_SECOND`] calls per second per
//!   (account, region). Listing is by far the bulk of the calls.
//! - Pagination: the SDK paginators, with the largest page each API accepts (1,000 instances,
//!   groups and network interfaces; 500 volumes; 100 RDS records).
//!
//! # Identity
//! EC2 ids are turned into ARNs (`arn:aws:ec2:{region}:{account}:instance/{id}`, `…:volume/…`,
//! `…:security-group/…`) with the account given to [`AwsProvider::new`]; RDS ARNs are used as
//! AWS returns them. So that those ARNs are true, listing fails when AWS says the credentials act
//! in another account (reservation owner, RDS ARN account): pass the real 12-digit id (see
//! [`caller_account`] for the ambient account), never a placeholder.
//!
//! # Removal safety
//! The planner decides what is eligible. Still, [`AwsProvider::remove`] is the last line of
//! defence and refuses (a non-retryable [`ProviderError`], nothing is called) when:
//! - the kind is not one of the five AWS kinds, or the resource's scope or ARN is not this
//!   provider's account and region;
//! - the resource's **current** tags, re-read just before the delete call, say production
//!   (`environment` ∈ `prod_environments`), restricted data (`data-class` ∈
//!   `restricted_data_classes`) or `auto-teardown` is not exactly `true` (keys and values
//!   compared without regard to ASCII case, so `Environment=Prod` is refused too);
//! - the current tags differ from the tags the plan was made from (other than the job's own
//!   `ttl-notified-stage`): someone snoozed, re-tagged or whitelisted it since. The plan was made
//!   minutes ago from a snapshot (time of check); the delete happens now (time of use). The next
//!   run re-plans from the new tags;
//! - the current tags cannot be read, or the resource is a `default` security group or an
//!   automated RDS snapshot.
//!
//! Removal is idempotent: a resource that is already gone (not found, `terminated`, `deleted`)
//! is [`Removal::Done`]; one already being removed (`shutting-down`, RDS `deleting`) is
//! [`Removal::Pending`] without a second call.
//!
//! Security groups still in use fail with `DependencyViolation`, reported as retryable: the
//! planner orders groups after the instances, RDS instances and groups that use them, and a
//! group used by a network interface of something not listed (a load balancer, a Lambda
//! function, an RDS instance's own interface) is listed with state [`IN_USE_BY_ENI`] so that the
//! reason is visible; if it is deleted anyway the executor retries it in a later pass.

mod ebs_volume;
mod ec2_instance;
mod error;
mod limit;
mod link;
mod rds_instance;
mod rds_snapshot;
mod security_group;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::inventory::{CostBasis, Resource, Scope};
use crate::provider::{ProviderError, Removal, State};
use crate::tags::{TagKeys, TagPolicy};

use self::error::{Failure, refusal};
use self::limit::RateLimiter;

/// Attempts per SDK call (the first try and up to five retries) in standard retry mode.
pub const MAX_ATTEMPTS: u32 = 6;

/// Client-side limit on calls per second, per provider (one account, one region).
pub const CALLS_PER_SECOND: u32 = 20;

/// The `state` of a security group used by a network interface that is not attached to any
/// listed instance: deleting it would fail with `DependencyViolation` until that interface is
/// gone.
pub const IN_USE_BY_ENI: &str = "in-use-by-eni";

/// Initial backoff of the SDK's jittered exponential retry.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest backoff between two SDK attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Time to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for one attempt (a page of 1,000 instances takes seconds, not minutes).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest page each API accepts.
const DEFAULT_PAGE_SIZE: i32 = 1000;

/// The five kinds this provider handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AwsKind {
    Instance,
    Volume,
    Group,
    Db,
    Snapshot,
}

impl AwsKind {
    const ALL: [AwsKind; 5] = [
        AwsKind::Instance,
        AwsKind::Volume,
        AwsKind::Group,
        AwsKind::Db,
        AwsKind::Snapshot,
    ];

    fn of(name: &str) -> Option<AwsKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            AwsKind::Instance => ec2_instance::KIND,
            AwsKind::Volume => ebs_volume::KIND,
            AwsKind::Group => security_group::KIND,
            AwsKind::Db => rds_instance::KIND,
            AwsKind::Snapshot => rds_snapshot::KIND,
        }
    }

    /// (service, resource type, separator) of the ARN.
    fn arn_shape(self) -> (&'static str, &'static str, char) {
        match self {
            AwsKind::Instance => ("ec2", "instance", '/'),
            AwsKind::Volume => ("ec2", "volume", '/'),
            AwsKind::Group => ("ec2", "security-group", '/'),
            AwsKind::Db => ("rds", "db", ':'),
            AwsKind::Snapshot => ("rds", "snapshot", ':'),
        }
    }
}

/// What a describe call says about one resource right now.
#[derive(Debug)]
struct Current {
    /// Provider state (`running`, `available`, …).
    state: String,
    /// Current tags, or why they could not be read.
    tags: Result<BTreeMap<String, String>, String>,
    /// Set when this resource must never be removed whatever its tags (a `default` group).
    never: Option<String>,
}

/// How a kind reads its state names.
enum Phase {
    /// Gone for good (`terminated`, `deleted`).
    Gone,
    /// Removal under way: report this instead of calling again.
    Removing(Removal),
    /// Present and not being removed.
    Live,
}

/// The tag rules [`AwsProvider::remove`] re-checks on the current tags.
#[derive(Debug, Clone)]
struct RemovalGuard {
    keys: TagKeys,
    prod_environments: Vec<String>,
    restricted_data_classes: Vec<String>,
}

impl RemovalGuard {
    fn from_policy(policy: &TagPolicy) -> Self {
        RemovalGuard {
            keys: policy.keys.clone(),
            prod_environments: policy.prod_environments.clone(),
            restricted_data_classes: policy.restricted_data_classes.clone(),
        }
    }

    /// Why these tags forbid deletion, if they do. `planned` are the tags the plan saw.
    fn refuses(
        &self,
        current: &BTreeMap<String, String>,
        planned: &BTreeMap<String, String>,
    ) -> Option<String> {
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        for (key, value) in current {
            if same(key, &self.keys.environment)
                && self.prod_environments.iter().any(|p| same(p, value))
            {
                return Some(format!(
                    "current tag {key}={value} marks it production; refusing to delete"
                ));
            }
            if same(key, &self.keys.data_class)
                && self.restricted_data_classes.iter().any(|r| same(r, value))
            {
                return Some(format!(
                    "current tag {key}={value} marks restricted data; refusing to delete"
                ));
            }
        }
        match current.get(&self.keys.auto_teardown).map(String::as_str) {
            Some("true") => {}
            Some(other) => {
                return Some(format!(
                    "current tag {}={other} is not \"true\"; refusing to delete",
                    self.keys.auto_teardown
                ));
            }
            None => {
                return Some(format!(
                    "current tags have no {} tag; refusing to delete",
                    self.keys.auto_teardown
                ));
            }
        }
        let ignore = self.keys.notified_stage.as_str();
        let changed: Vec<String> = current
            .keys()
            .chain(planned.keys())
            .filter(|k| k.as_str() != ignore)
            .filter(|k| current.get(*k) != planned.get(*k))
            .map(|k| {
                let show = |v: Option<&String>| v.map_or("(absent)".to_string(), |v| v.clone());
                format!("{k}: {} -> {}", show(planned.get(k)), show(current.get(k)))
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !changed.is_empty() {
            return Some(format!(
                "tags changed since the plan ({}); refusing to delete, the next run re-plans",
                changed.join(", ")
            ));
        }
        None
    }
}

/// The AWS provider for one (account, region): lists, tags, removes and watches EC2 instances,
/// EBS volumes, security groups, RDS DB instances and RDS manual snapshots.
///
/// See the [module documentation](self) for retries, the rate limit and the checks
/// [`remove`](Self::remove) makes.
#[derive(Debug)]
pub struct AwsProvider {
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
    account: String,
    region: String,
    partition: &'static str,
    limiter: RateLimiter,
    page_size: i32,
    guard: RemovalGuard,
}

impl AwsProvider {
    /// A provider acting with `sdk`'s credentials in `account` (the 12-digit id the credentials
    /// belong to) and `region`.
    ///
    /// The EC2 and RDS clients use the SDK's standard retry mode with [`MAX_ATTEMPTS`] attempts:
    /// throttling and transient errors are retried with jittered exponential backoff (0.5 s
    /// initial, 20 s at most). Every call first waits for the provider's rate limit of
    /// [`CALLS_PER_SECOND`]. The removal guard uses the default [`TagPolicy`]; use
    /// [`with_tag_policy`](Self::with_tag_policy) when the job's policy differs.
    pub fn new(sdk: &SdkConfig, account: &str, region: &str) -> Self {
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .retry_config(retry.clone())
            .timeout_config(timeouts.clone())
            .build();
        let rds = aws_sdk_rds::config::Builder::from(sdk)
            .region(aws_sdk_rds::config::Region::new(region.to_string()))
            .retry_config(retry)
            .timeout_config(timeouts)
            .build();
        AwsProvider {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            rds: aws_sdk_rds::Client::from_conf(rds),
            account: account.to_string(),
            region: region.to_string(),
            partition: partition_of(region),
            limiter: RateLimiter::per_second(CALLS_PER_SECOND),
            page_size: DEFAULT_PAGE_SIZE,
            guard: RemovalGuard::from_policy(&TagPolicy::default()),
        }
    }

    /// Uses `policy`'s tag keys, production environments and restricted data classes for the
    /// re-check [`remove`](Self::remove) makes on the current tags.
    pub fn with_tag_policy(mut self, policy: &TagPolicy) -> Self {
        self.guard = RemovalGuard::from_policy(policy);
        self
    }

    /// Smaller list pages, for tests of pagination. Clamped to what AWS accepts (EC2 at least
    /// 5; RDS at least 20, so RDS lists are not affected below that).
    #[doc(hidden)]
    pub fn with_page_size(mut self, n: i32) -> Self {
        self.page_size = n;
        self
    }

    /// The account this provider acts in.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The region this provider acts in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Every resource of the five kinds, with tags, state, cost basis and per-instance
    /// dependencies (`wait_for`), sorted by kind then id.
    ///
    /// Not listed: `terminated` instances, `default` security groups (they cannot be deleted),
    /// automated RDS snapshots. A manual snapshot whose tags could not be read is listed with
    /// `tags_unreadable` set, which protects it. Fails as a whole if any list call fails: a
    /// partial inventory would miss dependencies.
    ///
    /// The kinds are listed one after another: regions and accounts are scanned concurrently by
    /// the caller, but within one (account, region) concurrent describes only compete for the same
    /// API budget, and against a slow endpoint they pile up past the attempt timeout and turn into
    /// retries that add more load (seen against moto at 2,000 instances).
    pub async fn list(&self) -> Result<Vec<Resource>, ProviderError> {
        let instances = ec2_instance::list(self).await?;
        let volumes = ebs_volume::list(self).await?;
        let groups = security_group::list(self).await?;
        let interfaces = security_group::list_interfaces(self).await?;
        let dbs = rds_instance::list(self).await?;
        let snapshots = rds_snapshot::list(self).await?;
        let mut resources = link::link(link::Inventory {
            instances,
            volumes,
            groups,
            interfaces,
            dbs,
            snapshots,
        });
        let rank = |kind: &str| AwsKind::ALL.iter().position(|k| k.name() == kind);
        resources.sort_by(|a, b| (rank(a.kind), &a.id).cmp(&(rank(b.kind), &b.id)));
        Ok(resources)
    }

    /// The resource with this ARN, read with one describe call of its kind (two for an RDS
    /// snapshot whose tags are not inline), or `None` when it is not one of the five kinds in
    /// this account and region, is gone (terminated, deleted), or is never listed (a `default`
    /// security group). Used by the snooze service to read one resource's current tags, so a
    /// click costs a call or two, not a listing of the account.
    ///
    /// Unlike [`list`](Self::list) it does not discover the per-instance links (`wait_for`) or
    /// the cost basis: a snooze needs neither.
    pub async fn get(&self, arn: &str) -> Result<Option<Resource>, ProviderError> {
        let Some((kind, native)) = AwsKind::ALL
            .into_iter()
            .find_map(|k| self.parse_arn(k, arn).ok().map(|native| (k, native)))
        else {
            return Ok(None);
        };
        let Some(current) = self.describe(kind, arn, &native).await? else {
            return Ok(None);
        };
        if current.never.is_some() || matches!(phase(kind, &current.state), Phase::Gone) {
            return Ok(None);
        }
        let mut resource = self.resource(
            kind.name(),
            arn.to_string(),
            native,
            BTreeMap::new(),
            current.state,
            CostBasis::default(),
        );
        match current.tags {
            Ok(tags) => resource.tags = tags,
            // As in a listing: present, but ineligible for anything while unreadable.
            Err(e) => resource.tags_unreadable = Some(e),
        }
        Ok(Some(resource))
    }

    /// Writes `tags` on the resource (EC2 CreateTags, RDS AddTagsToResource), overwriting keys
    /// that exist. Used to record warning stages.
    pub async fn set_tags(
        &self,
        r: &Resource,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let (kind, native) = self.target("tag", r)?;
        if tags.is_empty() {
            return Ok(());
        }
        match kind {
            AwsKind::Instance | AwsKind::Volume | AwsKind::Group => {
                self.ec2_tag(&r.id, &native, tags).await
            }
            AwsKind::Db | AwsKind::Snapshot => self.rds_tag(&r.id, tags).await,
        }
    }

    /// Removes the resource, or reports that it is already gone or going.
    ///
    /// Instance: TerminateInstances → [`Removal::Pending`] `shutting-down`. Volume: DeleteVolume
    /// → [`Removal::Done`]. Security group: DeleteSecurityGroup → `Done` (`DependencyViolation`
    /// is a retryable error). RDS instance: DeleteDBInstance with `SkipFinalSnapshot` and
    /// `DeleteAutomatedBackups` → `Pending` `deleting`: no backup is kept, which is what a TTL
    /// means for a non-production database whose owner opted in; manual snapshots are separate
    /// resources with their own tags and are deleted after the instance. RDS snapshot:
    /// DeleteDBSnapshot → `Done`.
    ///
    /// First re-reads the resource and refuses as described in the
    /// [module documentation](self) (production, restricted, not opted in, tags changed since
    /// the plan, unknown kind, foreign scope). Idempotent: already gone is `Done`, already being
    /// removed is `Pending`.
    pub async fn remove(&self, r: &Resource) -> Result<Removal, ProviderError> {
        let (kind, native) = self.target("delete", r)?;
        let Some(current) = self.describe(kind, &r.id, &native).await? else {
            return Ok(Removal::Done);
        };
        match phase(kind, &current.state) {
            Phase::Gone => return Ok(Removal::Done),
            Phase::Removing(removal) => return Ok(removal),
            Phase::Live => {}
        }
        if let Some(reason) = &current.never {
            return Err(refusal("delete", &r.id, reason.clone()));
        }
        let tags = current.tags.map_err(|e| ProviderError {
            action: "delete".into(),
            resource: r.id.clone(),
            message: format!("current tags could not be re-read ({e}); refusing to delete"),
            retryable: true,
        })?;
        if let Some(reason) = self.guard.refuses(&tags, &r.tags) {
            return Err(refusal("delete", &r.id, reason));
        }
        tracing::info!(resource = %r.id, kind = kind.name(), "deleting");
        match kind {
            AwsKind::Instance => ec2_instance::delete(self, &r.id, &native).await,
            AwsKind::Volume => ebs_volume::delete(self, &r.id, &native).await,
            AwsKind::Group => security_group::delete(self, &r.id, &native).await,
            AwsKind::Db => rds_instance::delete(self, &r.id, &native).await,
            AwsKind::Snapshot => rds_snapshot::delete(self, &r.id, &native).await,
        }
    }

    /// The resource's current state: [`State::Gone`] when AWS no longer knows it or it is
    /// `terminated`/`deleted`, else [`State::Present`] with the provider state.
    pub async fn state(&self, r: &Resource) -> Result<State, ProviderError> {
        let (kind, native) = self.target("describe", r)?;
        Ok(match self.describe(kind, &r.id, &native).await? {
            None => State::Gone,
            Some(current) => match phase(kind, &current.state) {
                Phase::Gone => State::Gone,
                _ => State::Present(current.state),
            },
        })
    }

    async fn describe(
        &self,
        kind: AwsKind,
        arn: &str,
        native: &str,
    ) -> Result<Option<Current>, ProviderError> {
        match kind {
            AwsKind::Instance => ec2_instance::describe(self, arn, native).await,
            AwsKind::Volume => ebs_volume::describe(self, arn, native).await,
            AwsKind::Group => security_group::describe(self, arn, native).await,
            AwsKind::Db => rds_instance::describe(self, arn, native).await,
            AwsKind::Snapshot => rds_snapshot::describe(self, arn, native).await,
        }
    }

    /// Checks that `r` is one of ours (known kind, this scope, an ARN of the kind's shape in
    /// this account and region) and returns the kind and the id AWS calls it by.
    fn target(&self, action: &str, r: &Resource) -> Result<(AwsKind, String), ProviderError> {
        let kind = AwsKind::of(r.kind).ok_or_else(|| {
            refusal(
                action,
                &r.id,
                format!(
                    "kind {:?} is not an AWS kind this provider handles ({})",
                    r.kind,
                    AwsKind::ALL.map(AwsKind::name).join(", ")
                ),
            )
        })?;
        let ours = matches!(&r.scope, Scope::Aws { account, region }
            if *account == self.account && *region == self.region);
        if !ours {
            return Err(refusal(
                action,
                &r.id,
                format!(
                    "resource scope {:?} is not this provider's aws account {} region {}",
                    r.scope, self.account, self.region
                ),
            ));
        }
        let native = self
            .parse_arn(kind, &r.id)
            .map_err(|m| refusal(action, &r.id, m))?;
        Ok((kind, native))
    }

    /// The native id inside an ARN of `kind` in this partition, account and region.
    fn parse_arn(&self, kind: AwsKind, arn: &str) -> Result<String, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, rest] = parts[..] else {
            return Err(format!("{arn:?} is not an ARN"));
        };
        let (want_service, resource_type, sep) = kind.arn_shape();
        if prefix != "arn" || partition != self.partition || service != want_service {
            return Err(format!(
                "{arn:?} is not an {} ARN in partition {}",
                want_service, self.partition
            ));
        }
        if region != self.region || account != self.account {
            return Err(format!(
                "{arn:?} is in account {account} region {region}, not this provider's account {} region {}",
                self.account, self.region
            ));
        }
        match rest.split_once(sep) {
            Some((t, id)) if t == resource_type && !id.is_empty() && !id.contains([':', '/']) => {
                Ok(id.to_string())
            }
            _ => Err(format!(
                "{arn:?} is not a {resource_type} ARN (kind {})",
                kind.name()
            )),
        }
    }

    /// `arn:{partition}:ec2:{region}:{account}:{resource_type}/{id}`.
    fn ec2_arn(&self, resource_type: &str, id: &str) -> String {
        format!(
            "arn:{}:ec2:{}:{}:{resource_type}/{id}",
            self.partition, self.region, self.account
        )
    }

    /// Fails when AWS says the credentials act in another account than the one we build ARNs
    /// with (a misconfigured role, a placeholder account id).
    fn check_account(&self, seen: &str, what: &str) -> Result<(), ProviderError> {
        if seen == self.account {
            Ok(())
        } else {
            Err(refusal(
                "list",
                &self.scope_label(),
                format!(
                    "{what} belongs to account {seen}, but this provider was built for account {}: the credentials act in another account",
                    self.account
                ),
            ))
        }
    }

    /// `aws:{account}/{region}`, the subject of list errors.
    fn scope_label(&self) -> String {
        format!("aws:{}/{}", self.account, self.region)
    }

    /// A resource of this provider's scope with the fields every kind fills.
    fn resource(
        &self,
        kind: &'static str,
        id: String,
        name: String,
        tags: BTreeMap<String, String>,
        state: String,
        cost: CostBasis,
    ) -> Resource {
        Resource {
            id,
            kind,
            name,
            scope: Scope::Aws {
                account: self.account.clone(),
                region: self.region.clone(),
            },
            namespace: None,
            tags,
            labels: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
            // AWS resources must carry a created_at tag: no fallback.
            created_fallback: None,
            state: Some(state),
            wait_for: Vec::new(),
            cost,
            tags_unreadable: None,
        }
    }

    /// Page size for an EC2 API whose page may hold at most `max` items (AWS needs at least 5).
    fn ec2_page(&self, max: i32) -> i32 {
        self.page_size.clamp(5, max)
    }

    /// Page size for RDS (20 to 100 records).
    fn rds_page(&self) -> i32 {
        self.page_size.clamp(20, 100)
    }

    async fn ec2_tag(
        &self,
        arn: &str,
        native: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
            .collect();
        self.limiter.acquire().await;
        self.ec2
            .create_tags()
            .resources(native)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| Failure::of(&e).into_provider_error("tag", arn))?;
        Ok(())
    }

    async fn rds_tag(&self, arn: &str, tags: &[(String, String)]) -> Result<(), ProviderError> {
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
            .collect();
        self.limiter.acquire().await;
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| Failure::of(&e).into_provider_error("tag", arn))?;
        Ok(())
    }
}

/// How `kind` reads `state`.
fn phase(kind: AwsKind, state: &str) -> Phase {
    match (kind, state) {
        (AwsKind::Instance, "terminated") => Phase::Gone,
        (AwsKind::Instance, "shutting-down") => Phase::Removing(Removal::Pending {
            state: state.to_string(),
        }),
        (AwsKind::Volume, "deleted") | (AwsKind::Snapshot, "deleted") => Phase::Gone,
        // Nothing waits for volumes and snapshots: a deletion under way is as good as done.
        (AwsKind::Volume, "deleting") | (AwsKind::Snapshot, "deleting") => {
            Phase::Removing(Removal::Done)
        }
        (AwsKind::Db, "deleting") => Phase::Removing(Removal::Pending {
            state: state.to_string(),
        }),
        _ => Phase::Live,
    }
}

/// The partition of a region's ARNs.
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// EC2 tags as a map (entries without a key are dropped; a missing value is empty).
fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            let key = t.key()?;
            Some((key.to_string(), t.value().unwrap_or_default().to_string()))
        })
        .collect()
}

/// RDS tags as a map (entries without a key are dropped; a missing value is empty).
fn rds_tags(tags: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            let key = t.key()?;
            Some((key.to_string(), t.value().unwrap_or_default().to_string()))
        })
        .collect()
}

/// The ambient credentials' account id (STS GetCallerIdentity), for configurations that name no
/// account: the provider needs the real id to build EC2 ARNs.
pub async fn caller_account(sdk: &SdkConfig) -> Result<String, ProviderError> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Failure::of(&e).into_provider_error("get-caller-identity", "sts"))?;
    out.account()
        .map(str::to_string)
        .ok_or_else(|| refusal("get-caller-identity", "sts", "STS returned no account id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;

    fn provider() -> AwsProvider {
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsProvider::new(&sdk, "123456789012", "us-east-1")
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resource(kind: &'static str, id: &str) -> Resource {
        provider().resource(
            kind,
            id.to_string(),
            "n".into(),
            BTreeMap::new(),
            "running".into(),
            CostBasis::default(),
        )
    }

    #[test]
    fn kind_names_are_registered_aws_kinds() {
        for k in AwsKind::ALL {
            let registered = kinds::by_name(k.name()).expect("registered kind");
            assert!(!registered.is_kubernetes(), "{}", k.name());
        }
    }

    #[test]
    fn arns_are_parsed_only_in_this_scope_and_shape() {
        let p = provider();
        let ok = |kind, arn: &str| p.parse_arn(kind, arn);
        assert_eq!(
            ok(
                AwsKind::Instance,
                "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
            ),
            Ok("i-1".to_string())
        );
        assert_eq!(
            ok(AwsKind::Db, "arn:aws:rds:us-east-1:123456789012:db:db1"),
            Ok("db1".to_string())
        );
        assert_eq!(
            ok(
                AwsKind::Snapshot,
                "arn:aws:rds:us-east-1:123456789012:snapshot:s1"
            ),
            Ok("s1".to_string())
        );
        for (kind, bad) in [
            (
                AwsKind::Instance,
                "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
            ),
            (
                AwsKind::Instance,
                "arn:aws:ec2:us-east-1:999999999999:instance/i-1",
            ),
            (
                AwsKind::Instance,
                "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
            ),
            (
                AwsKind::Db,
                "arn:aws:rds:us-east-1:123456789012:snapshot:s1",
            ),
            (
                AwsKind::Group,
                "arn:aws:ec2:us-east-1:123456789012:security-group/",
            ),
            (AwsKind::Volume, "vol-1"),
        ] {
            assert!(ok(kind, bad).is_err(), "{bad} accepted as {kind:?}");
        }
    }

    #[test]
    fn target_refuses_unknown_kinds_and_foreign_scopes() {
        let p = provider();
        let mut r = resource("k8s-namespace", "k8s:preview");
        let e = p.target("delete", &r).expect_err("unknown kind");
        assert!(!e.retryable);
        assert!(e.message.contains("not an AWS kind"), "{e}");
        r = resource(
            "ec2-instance",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
        );
        r.scope = Scope::Aws {
            account: "999999999999".into(),
            region: "us-east-1".into(),
        };
        let e = p.target("delete", &r).expect_err("foreign scope");
        assert!(e.message.contains("not this provider's"), "{e}");
    }

    #[test]
    fn guard_refuses_prod_restricted_and_opted_out_whatever_the_case() {
        let g = RemovalGuard::from_policy(&TagPolicy::default());
        let ok = tags(&[("environment", "dev"), ("auto-teardown", "true")]);
        assert_eq!(g.refuses(&ok, &ok), None);
        for bad in [
            tags(&[("environment", "prod"), ("auto-teardown", "true")]),
            tags(&[("Environment", " Prod"), ("auto-teardown", "true")]),
            tags(&[("data-class", "RESTRICTED"), ("auto-teardown", "true")]),
            tags(&[("environment", "dev"), ("auto-teardown", "false")]),
            tags(&[("environment", "dev"), ("auto-teardown", "TRUE")]),
            tags(&[("environment", "dev")]),
        ] {
            assert!(g.refuses(&bad, &bad).is_some(), "{bad:?} not refused");
        }
    }

    #[test]
    fn guard_refuses_tags_changed_since_the_plan_except_the_notified_stage() {
        let g = RemovalGuard::from_policy(&TagPolicy::default());
        let planned = tags(&[("auto-teardown", "true"), ("ttl", "7d")]);
        let snoozed = tags(&[
            ("auto-teardown", "true"),
            ("ttl", "7d"),
            ("ttl-extended-days", "7"),
        ]);
        let reason = g.refuses(&snoozed, &planned).expect("refused");
        assert!(
            reason.contains("ttl-extended-days: (absent) -> 7"),
            "{reason}"
        );
        let notified = tags(&[
            ("auto-teardown", "true"),
            ("ttl", "7d"),
            ("ttl-notified-stage", "final@2026-01-01T00:00:00Z"),
        ]);
        assert_eq!(g.refuses(&notified, &planned), None);
    }

    #[test]
    fn phases_of_each_kind() {
        assert!(matches!(
            phase(AwsKind::Instance, "terminated"),
            Phase::Gone
        ));
        assert!(matches!(
            phase(AwsKind::Instance, "shutting-down"),
            Phase::Removing(Removal::Pending { .. })
        ));
        assert!(matches!(phase(AwsKind::Instance, "stopped"), Phase::Live));
        assert!(matches!(
            phase(AwsKind::Db, "deleting"),
            Phase::Removing(Removal::Pending { .. })
        ));
        assert!(matches!(phase(AwsKind::Volume, "deleted"), Phase::Gone));
        assert!(matches!(phase(AwsKind::Group, "available"), Phase::Live));
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
