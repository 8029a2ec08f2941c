//! One AWS account in one region: the clients, the rate limit and the calls every AWS kind
//! shares, and the generic list / get / tag / remove / state over the kind registry.
//!
//! # Calls and limits
//! - Retries: every client uses the SDK's **standard retry mode** with [`MAX_ATTEMPTS`]
//!   attempts: throttling (`RequestLimitExceeded`, `Throttling`, …), transient server errors,
//!   timeouts and connection failures are retried by the SDK with exponential backoff and full
//!   jitter, so many jobs throttled at once do not retry in lockstep. What is still failing after
//!   that is a [`ProviderError`] whose `retryable` tells the caller whether a later pass may help.
//! - Rate limit: every call waits for a token of one bucket per scope ([`limit::RateLimiter`]:
//!   AWS's own shape, a burst of 100 then 20 per second).
//! - Pagination: the SDK paginators, with the largest page each API accepts.
//!
//! # Identity
//! ARNs are built with the account given to [`AwsScope::new`] (EC2 returns bare ids). So that
//! they are true, listing fails when AWS says the credentials act in another account
//! (reservation owner, RDS ARN account): pass the real 12-digit id (see [`caller_account`] for
//! the ambient account), never a placeholder.
//!
//! # Removal
//! [`AwsScope::remove`] re-reads the resource (the kind's describe), reports it gone or going
//! without a second call, refuses what must never be removed ([`Current::never`]) and asks the
//! caller's [`Guard`] about its current tags before the kind's delete call. Removal is
//! idempotent: gone (not found, `terminated`, `deleted`) is [`Removal::Done`].

pub(crate) mod error;
pub mod limit;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::error::ProviderError;
use crate::kind::{AwsKind, Guard, Kind, Phase, Removal, State};
use crate::resource::{Resource, Scope};

use self::error::refusal;
use self::limit::RateLimiter;

/// Attempts per SDK call (the first try and up to five retries) in standard retry mode.
pub const MAX_ATTEMPTS: u32 = 6;

/// Initial backoff of the SDK's jittered exponential retry.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest backoff between two SDK attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Time to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for one attempt (a page of 1,000 instances takes seconds, not minutes).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest page each API accepts (kinds clamp to their API's range).
const DEFAULT_PAGE_SIZE: i32 = 1000;

/// The clients of one account and region.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2 (instances, volumes, security groups).
    pub ec2: aws_sdk_ec2::Client,
    /// RDS (DB instances, snapshots).
    pub rds: aws_sdk_rds::Client,
    /// IAM (roles), global.
    pub iam: aws_sdk_iam::Client,
    /// EC2 Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Elastic Load Balancing v2 (application and network load balancers).
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// S3 (path-style when an endpoint override is set, as for moto).
    pub s3: aws_sdk_s3::Client,
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// EKS.
    pub eks: aws_sdk_eks::Client,
}

/// One AWS account in one region: what every AWS kind's calls take.
#[derive(Debug)]
pub struct AwsScope {
    /// The clients.
    pub clients: Clients,
    account: String,
    region: String,
    partition: &'static str,
    /// Whether this scope lists the account's global kinds (IAM): one scope per account does.
    home: bool,
    limiter: RateLimiter,
    page_size: i32,
}

impl AwsScope {
    /// A scope acting with `sdk`'s credentials in `account` (the 12-digit id the credentials
    /// belong to) and `region`, listing global kinds too when `home` (one scope per account).
    ///
    /// Every client uses the SDK's standard retry mode with [`MAX_ATTEMPTS`] attempts (0.5 s
    /// initial backoff, 20 s at most, full jitter), a 5 s connect and a 60 s attempt timeout.
    pub fn new(sdk: &SdkConfig, account: &str, region: &str, home: bool) -> Self {
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let path_style = sdk.endpoint_url().is_some();
        macro_rules! client {
            ($krate:ident) => {{
                let conf = $krate::config::Builder::from(sdk)
                    .region($krate::config::Region::new(region.to_string()))
                    .retry_config(retry.clone())
                    .timeout_config(timeouts.clone())
                    .build();
                $krate::Client::from_conf(conf)
            }};
        }
        let s3 = {
            let conf = aws_sdk_s3::config::Builder::from(sdk)
                .region(aws_sdk_s3::config::Region::new(region.to_string()))
                .retry_config(retry.clone())
                .timeout_config(timeouts.clone())
                .force_path_style(path_style)
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        };
        AwsScope {
            clients: Clients {
                ec2: client!(aws_sdk_ec2),
                rds: client!(aws_sdk_rds),
                iam: client!(aws_sdk_iam),
                autoscaling: client!(aws_sdk_autoscaling),
                elbv2: client!(aws_sdk_elasticloadbalancingv2),
                s3,
                lambda: client!(aws_sdk_lambda),
                eks: client!(aws_sdk_eks),
            },
            account: account.to_string(),
            region: region.to_string(),
            partition: partition_of(region),
            home,
            limiter: RateLimiter::new(limit::DEFAULT_BURST, limit::DEFAULT_REFILL_PER_SECOND),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Smaller list pages, for tests of pagination; each kind clamps to its API's range.
    #[doc(hidden)]
    pub fn with_page_size(mut self, n: i32) -> Self {
        self.page_size = n;
        self
    }

    /// Replaces the clients (tests point one service at a dead endpoint to make its kinds'
    /// listing fail).
    #[doc(hidden)]
    pub fn with_clients(mut self, f: impl FnOnce(&mut Clients)) -> Self {
        f(&mut self.clients);
        self
    }

    /// The account this scope acts in.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The region this scope acts in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whether this scope lists the account's global kinds.
    pub fn is_home(&self) -> bool {
        self.home
    }

    /// The scope of resources listed here.
    pub fn scope(&self) -> Scope {
        Scope::Aws {
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }

    /// `aws:{account}/{region}`, the subject of list errors.
    pub fn scope_label(&self) -> String {
        self.scope().label()
    }

    /// Waits for a token of the scope's rate limit; every AWS call does, first.
    pub async fn throttle(&self) {
        self.limiter.acquire().await;
    }

    /// Page size for an API whose pages hold `min..=max` items.
    pub fn page(&self, min: i32, max: i32) -> i32 {
        self.page_size.clamp(min, max)
    }

    /// A resource of `kind` in this scope, named `name`, with id `id`.
    pub fn resource(&self, kind: &'static str, id: String, name: String) -> Resource {
        Resource::new(kind, id, name, self.scope())
    }

    /// The ARN of a resource of a kind with `shape`: `arn:{partition}:{service}:{region}:
    /// {account}:{prefix}{rest}`, with region and account left empty where the shape says.
    pub fn arn(&self, shape: crate::kind::ArnShape, rest: &str) -> String {
        format!(
            "arn:{}:{}:{}:{}:{}{rest}",
            self.partition,
            shape.service,
            if shape.regional { &self.region } else { "" },
            if shape.has_account { &self.account } else { "" },
            shape.prefix
        )
    }

    /// Fails when AWS says the credentials act in another account than the one we build ARNs
    /// with (a misconfigured role, a placeholder account id).
    pub fn check_account(&self, seen: &str, what: &str) -> Result<(), ProviderError> {
        if seen == self.account {
            Ok(())
        } else {
            Err(refusal(
                "list",
                &self.scope_label(),
                format!(
                    "{what} belongs to account {seen}, but this scope was built for account {}: the credentials act in another account",
                    self.account
                ),
            ))
        }
    }

    /// Every AWS kind this scope lists: the regional ones, and the global ones at home.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static dyn Kind, &'static dyn AwsKind)> + '_ {
        crate::kinds::KINDS
            .iter()
            .copied()
            .filter_map(|k| k.aws().map(|a| (k, a)))
            .filter(|(_, a)| !a.global() || self.home)
    }

    /// The kind and native id of an ARN of this scope (its partition, region unless global,
    /// account unless the shape has none), or `None`.
    pub fn parse_arn(
        &self,
        arn: &str,
    ) -> Option<(&'static dyn Kind, &'static dyn AwsKind, String)> {
        let parsed = crate::arn::Arn::parse(arn)?;
        if parsed.partition != self.partition {
            return None;
        }
        crate::kinds::KINDS.iter().copied().find_map(|k| {
            let a = k.aws()?;
            let shape = a.arn();
            let ours = parsed.service == shape.service
                && (!shape.regional || parsed.region == self.region)
                && (shape.regional || parsed.region.is_empty())
                && (!shape.has_account || parsed.account == self.account)
                && (shape.has_account || parsed.account.is_empty());
            let rest = parsed.resource.strip_prefix(shape.prefix)?;
            if !ours || rest.is_empty() {
                return None;
            }
            let native = a.native_id(parsed.resource)?;
            Some((k, a, native))
        })
    }

    /// Checks that `r` is one of ours (an AWS kind, this scope, an ARN of the kind's shape in
    /// this account and region) and returns its kind and the id AWS calls it by.
    fn target(
        &self,
        action: &str,
        r: &Resource,
    ) -> Result<(&'static dyn AwsKind, String), ProviderError> {
        let ours = matches!(&r.scope, Scope::Aws { account, region }
            if *account == self.account && *region == self.region);
        if !ours {
            return Err(refusal(
                action,
                &r.id,
                format!(
                    "resource scope {} is not this scope ({})",
                    r.scope.label(),
                    self.scope_label()
                ),
            ));
        }
        match self.parse_arn(&r.id) {
            Some((k, a, native)) if k.name() == r.kind => Ok((a, native)),
            Some((k, _, _)) => Err(refusal(
                action,
                &r.id,
                format!(
                    "the ARN is a {} ARN, but the resource says {}",
                    k.name(),
                    r.kind
                ),
            )),
            None => Err(refusal(
                action,
                &r.id,
                format!(
                    "not an ARN of an AWS kind in partition {} account {} region {}",
                    self.partition, self.account, self.region
                ),
            )),
        }
    }

    /// The resource with this ARN, read with one describe of its kind, or `None` when the ARN
    /// is not of this scope, or AWS no longer knows it (or it is gone, or never removable: a
    /// `default` security group). Used by the snooze service: a click costs a call or two, not a
    /// listing. It does not discover relations or attributes: a snooze needs neither.
    pub async fn get(&self, arn: &str) -> Result<Option<Resource>, ProviderError> {
        let Some((kind, aws, native)) = self.parse_arn(arn) else {
            return Ok(None);
        };
        let Some(current) = aws.describe(self, arn, &native).await? else {
            return Ok(None);
        };
        if current.never.is_some() || aws.phase(&current.state) == Phase::Gone {
            return Ok(None);
        }
        let mut resource = self.resource(kind.name(), arn.to_string(), aws.name_of(&native));
        resource.state = Some(current.state);
        if let Some(attributes) = current.attributes {
            resource.attributes = attributes;
        }
        match current.tags {
            Ok(tags) => resource.tags = tags,
            // As in a listing: present, but ineligible for anything while unreadable.
            Err(e) => resource.tags_unreadable = Some(e),
        }
        Ok(Some(resource))
    }

    /// Sets `set` (overwriting keys that exist) and removes the `remove` keys on the resource.
    pub async fn write_tags(
        &self,
        r: &Resource,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), ProviderError> {
        let (aws, native) = self.target("tag", r)?;
        if set.is_empty() && remove.is_empty() {
            return Ok(());
        }
        aws.write_tags(self, &r.id, &native, set, remove).await
    }

    /// Removes the resource, or reports that it is already gone or going: re-reads it, refuses
    /// what must never be removed, asks `guard` about its current tags, then calls the kind's
    /// delete.
    pub async fn remove(&self, r: &Resource, guard: &dyn Guard) -> Result<Removal, ProviderError> {
        let (aws, native) = self.target("delete", r)?;
        let Some(current) = aws.describe(self, &r.id, &native).await? else {
            return Ok(Removal::Done);
        };
        match aws.phase(&current.state) {
            Phase::Gone => return Ok(Removal::Done),
            Phase::Removing(removal) => return Ok(removal),
            Phase::Live => {}
        }
        if let Some(reason) = &current.never {
            return Err(refusal("delete", &r.id, reason.clone()));
        }
        if let Err(e) = &current.tags {
            return Err(ProviderError {
                action: "delete".into(),
                resource: r.id.clone(),
                message: format!("current tags could not be re-read ({e}); refusing to delete"),
                retryable: true,
            });
        }
        if let Some(reason) = guard.refuses(r, &current) {
            return Err(refusal("delete", &r.id, reason));
        }
        tracing::info!(resource = %r.id, kind = r.kind, "deleting");
        aws.delete(self, &r.id, &native).await
    }

    /// The resource's current state: [`State::Gone`] when AWS no longer knows it or its kind
    /// reads the state as gone, else [`State::Present`].
    pub async fn state(&self, r: &Resource) -> Result<State, ProviderError> {
        let (aws, native) = self.target("describe", r)?;
        Ok(match aws.describe(self, &r.id, &native).await? {
            None => State::Gone,
            Some(current) if aws.phase(&current.state) == Phase::Gone => State::Gone,
            Some(current) => State::Present(current.state),
        })
    }
}

/// The partition of a region's ARNs.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Tags as a map (entries without a key are dropped; a missing value is empty), for any SDK's
/// `(key, value)` pairs.
pub fn tag_map<'a>(
    pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// EC2 tags as a map.
pub fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// Writes EC2 tags (CreateTags, DeleteTags) on one resource id.
pub async fn ec2_write_tags(
    aws: &AwsScope,
    arn: &str,
    native: &str,
    set: &[(String, String)],
    remove: &[String],
) -> Result<(), ProviderError> {
    use aws_sdk_ec2::types::Tag;
    let ec2 = &aws.clients.ec2;
    if !set.is_empty() {
        aws.throttle().await;
        ec2.create_tags()
            .resources(native)
            .set_tags(Some(
                set.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| error::failed(e, "tag", arn))?;
    }
    if !remove.is_empty() {
        aws.throttle().await;
        ec2.delete_tags()
            .resources(native)
            .set_tags(Some(
                remove
                    .iter()
                    .map(|k| Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| error::failed(e, "untag", arn))?;
    }
    Ok(())
}

/// RDS tags as a map.
pub fn rds_tags(tags: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// Writes RDS tags (AddTagsToResource, RemoveTagsFromResource) by ARN.
pub async fn rds_write_tags(
    aws: &AwsScope,
    arn: &str,
    set: &[(String, String)],
    remove: &[String],
) -> Result<(), ProviderError> {
    use aws_sdk_rds::types::Tag;
    let rds = &aws.clients.rds;
    if !set.is_empty() {
        aws.throttle().await;
        rds.add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(
                set.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| error::failed(e, "tag", arn))?;
    }
    if !remove.is_empty() {
        aws.throttle().await;
        rds.remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(|e| error::failed(e, "untag", arn))?;
    }
    Ok(())
}

/// The ambient credentials' account id (STS GetCallerIdentity), for configurations that name no
/// account: ARNs need the real id.
pub async fn caller_account(sdk: &SdkConfig) -> Result<String, ProviderError> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| error::failed(e, "get-caller-identity", "sts"))?;
    out.account()
        .map(str::to_string)
        .ok_or_else(|| refusal("get-caller-identity", "sts", "STS returned no account id"))
}

/// The AWS actions the scope itself calls (beyond the kinds').
pub const SCOPE_IAM_ACTIONS: &[&str] = &["sts:GetCallerIdentity"];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scope() -> AwsScope {
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsScope::new(&sdk, "123456789012", "us-east-1", true)
    }

    #[test]
    fn arns_route_to_their_kind_only_in_this_scope() {
        let s = scope();
        let kind = |arn: &str| s.parse_arn(arn).map(|(k, _, native)| (k.name(), native));
        assert_eq!(
            kind("arn:aws:ec2:us-east-1:123456789012:instance/i-1"),
            Some(("ec2-instance", "i-1".to_string()))
        );
        assert_eq!(
            kind("arn:aws:rds:us-east-1:123456789012:db:db1"),
            Some(("rds-instance", "db1".to_string()))
        );
        assert_eq!(
            kind("arn:aws:iam::123456789012:role/path/app-role"),
            Some(("iam-role", "app-role".to_string()))
        );
        assert_eq!(
            kind("arn:aws:s3:::my-bucket"),
            Some(("s3-bucket", "my-bucket".to_string()))
        );
        for foreign in [
            "arn:aws:ec2:us-east-1:999999999999:instance/i-1",
            "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
            "arn:aws:ec2:us-east-1:123456789012:instance/",
            "arn:aws-cn:ec2:us-east-1:123456789012:instance/i-1",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:s3:::bucket/key",
            "arn:aws:ec2:us-east-1:123456789012:volume",
            "i-1",
        ] {
            assert_eq!(kind(foreign), None, "{foreign} routed");
        }
    }

    #[test]
    fn target_refuses_foreign_scopes_and_mismatched_kinds() {
        let s = scope();
        let mut r = s.resource(
            "ebs-volume",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1".into(),
            "i-1".into(),
        );
        let e = s.target("delete", &r).err().expect("kind mismatch");
        assert!(e.message.contains("is a ec2-instance ARN"), "{e}");
        assert!(!e.retryable);
        r.kind = "ec2-instance";
        r.scope = Scope::Aws {
            account: "999999999999".into(),
            region: "us-east-1".into(),
        };
        let e = s.target("delete", &r).err().expect("foreign scope");
        assert!(e.message.contains("is not this scope"), "{e}");
    }

    #[test]
    fn arns_are_built_by_shape() {
        let s = scope();
        let shape = |k: &str| {
            crate::kinds::by_name(k)
                .and_then(|k| k.aws())
                .expect("aws kind")
                .arn()
        };
        assert_eq!(
            s.arn(shape("ec2-instance"), "i-1"),
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
        );
        assert_eq!(
            s.arn(shape("iam-role"), "app"),
            "arn:aws:iam::123456789012:role/app"
        );
        assert_eq!(s.arn(shape("s3-bucket"), "b"), "arn:aws:s3:::b");
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
