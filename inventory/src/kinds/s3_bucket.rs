//! S3 buckets. ListBuckets is one account-wide call; each (account, region) scope keeps the
//! buckets located in its region (`BucketRegion` when the answer has it, else
//! GetBucketLocation), so a bucket is planned by exactly one scope and deleted through a client of
//! its own region. Tags from GetBucketTagging; size from ListObjectVersions (every version and
//! delete marker counts toward storage), measured up to [`MEASURE_PAGES`] pages and reported as
//! a lower bound beyond.
//!
//! Removal empties the bucket first, as S3 requires: every object version and delete marker
//! (DeleteObjects, 1,000 per call), every unfinished multipart upload (AbortMultipartUpload),
//! then DeleteBucket. A bucket with Object Lock is never removed (its locked versions cannot be
//! deleted, and emptying the rest would destroy data for nothing). Every call names the
//! account as `ExpectedBucketOwner`: a bucket recreated by someone else under the same name is
//! refused by S3 itself.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{Delete, ObjectIdentifier, Tag, Tagging};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::AwsScope;
use crate::aws::error::{Failure, failed, found};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Measure, Platform, Quota, Removal};
use crate::resource::Resource;

/// `s3-bucket`.
pub struct S3Bucket;

/// Registry name.
pub const NAME: &str = "s3-bucket";

/// Pages of ListObjectVersions read to measure a bucket's size while listing.
pub const MEASURE_PAGES: usize = 10;

/// Rounds of list-then-delete one removal makes (1,000 versions each) before it gives up for
/// this run (retryable: the next run goes on where it stopped).
const EMPTY_ROUNDS: usize = 10_000;

/// Rounds of list-then-abort for multipart uploads before giving up for this run.
const ABORT_ROUNDS: usize = 100;

/// What S3 says when the bucket does not exist (any more).
const NOT_FOUND: &[&str] = &["NoSuchBucket"];

/// What S3 says when a bucket has no tags at all.
const NO_TAGS: &[&str] = &["NoSuchTagSet", "NoSuchTagSetError"];

/// What S3 says when a bucket has no Object Lock configuration.
const NO_LOCK: &[&str] = &["ObjectLockConfigurationNotFoundError"];

const SHAPE: ArnShape = ArnShape {
    service: "s3",
    prefix: "",
    regional: false,
    has_account: false,
};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

impl Kind for S3Bucket {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn quota(&self) -> Option<Quota> {
        Some(Quota {
            dimension: "s3_buckets",
            measure: Measure::Count,
        })
    }
    fn cost(&self, r: &Resource, p: &Pricing) -> Cost {
        Pricing::per_gb(r.attributes.size_gb, p.s3_gb_month)
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for S3Bucket {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    // A bucket ARN is its name; anything with a `/` is an object.
    fn native_id(&self, resource_part: &str) -> Option<String> {
        (!resource_part.is_empty() && !resource_part.contains(['/', ':']))
            .then(|| resource_part.to_string())
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "s3:AbortMultipartUpload",
            "s3:DeleteBucket",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:GetBucketLocation",
            "s3:GetBucketObjectLockConfiguration",
            "s3:GetBucketTagging",
            "s3:ListAllMyBuckets",
            "s3:ListBucketMultipartUploads",
            "s3:ListBucketVersions",
            "s3:PutBucketTagging",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let label = aws.scope_label();
            let mut pages = aws.clients.s3.list_buckets().into_paginator().send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list s3-bucket", &label))?;
                for b in page.buckets() {
                    let Some(name) = b.name() else { continue };
                    let region = match b.bucket_region() {
                        Some(r) => r.to_string(),
                        None => match location(aws, name).await? {
                            Some(r) => r,
                            None => continue, // deleted since the listing
                        },
                    };
                    if region != aws.region() {
                        continue;
                    }
                    let mut r = aws.resource(NAME, aws.arn(SHAPE, name), name.to_string());
                    r.state = Some("available".to_string());
                    r.attributes.created = b
                        .creation_date()
                        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
                    match tags(aws, name).await {
                        Ok(Some(t)) => r.tags = t,
                        Ok(None) => continue,
                        Err(e) => r.tags_unreadable = Some(e.message),
                    }
                    r.attributes.size_gb = measure(aws, name).await?;
                    out.push(r);
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn describe<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Option<Current>, ProviderError>> {
        async move {
            // Only the scope of the bucket's region answers for it.
            match location(aws, native).await? {
                Some(region) if region == aws.region() => {}
                _ => return Ok(None),
            }
            let tags = match tags(aws, native).await {
                Ok(None) => return Ok(None),
                Ok(Some(t)) => Ok(t),
                Err(e) => Err(e.message),
            };
            aws.throttle().await;
            let lock = aws
                .clients
                .s3
                .get_object_lock_configuration()
                .bucket(native)
                .expected_bucket_owner(aws.account())
                .send()
                .await;
            let never = match found(lock, NO_LOCK, "describe object lock of", arn) {
                Ok(Some(out)) => out
                    .object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    .is_some_and(|e| e.as_str() == "Enabled")
                    .then(|| {
                        "Object Lock is enabled: locked versions cannot be deleted".to_string()
                    }),
                Ok(None) => None,
                // Unknown lock state: never remove what we cannot see into.
                Err(e) => Some(format!("object lock state unreadable ({})", e.message)),
            };
            Ok(Some(Current {
                attributes: None,
                state: "available".to_string(),
                tags,
                never,
            }))
        }
        .boxed()
    }

    // S3 replaces the whole tag set: read, merge, write (or delete when nothing is left).
    fn write_tags<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
        set: &'a [(String, String)],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            let mut current = match tags(aws, native).await? {
                Some(t) => t,
                None => return Err(ProviderError::refusal("tag", arn, "the bucket is gone")),
            };
            for k in remove {
                current.remove(k);
            }
            for (k, v) in set {
                current.insert(k.clone(), v.clone());
            }
            aws.throttle().await;
            let s3 = &aws.clients.s3;
            if current.is_empty() {
                s3.delete_bucket_tagging()
                    .bucket(native)
                    .expected_bucket_owner(aws.account())
                    .send()
                    .await
                    .map_err(|e| failed(e, "untag", arn))?;
                return Ok(());
            }
            let tag_set = current
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ProviderError::refusal("tag", arn, e.to_string()))?;
            let tagging = Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .map_err(|e| ProviderError::refusal("tag", arn, e.to_string()))?;
            s3.put_bucket_tagging()
                .bucket(native)
                .expected_bucket_owner(aws.account())
                .tagging(tagging)
                .send()
                .await
                .map_err(|e| failed(e, "tag", arn))?;
            Ok(())
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Removal, ProviderError>> {
        async move {
            if !empty_versions(aws, arn, native).await? {
                return Ok(Removal::Done);
            }
            if !abort_uploads(aws, arn, native).await? {
                return Ok(Removal::Done);
            }
            aws.throttle().await;
            let sent = aws
                .clients
                .s3
                .delete_bucket()
                .bucket(native)
                .expected_bucket_owner(aws.account())
                .send()
                .await;
            found(sent, NOT_FOUND, "delete", arn).map(|_| Removal::Done)
        }
        .boxed()
    }
}

/// The bucket's region (`None`: it does not exist). An empty location is us-east-1, `EU` the
/// legacy name of eu-west-1.
async fn location(aws: &AwsScope, bucket: &str) -> Result<Option<String>, ProviderError> {
    aws.throttle().await;
    let sent = aws
        .clients
        .s3
        .get_bucket_location()
        .bucket(bucket)
        .expected_bucket_owner(aws.account())
        .send()
        .await;
    let arn = format!("arn:aws:s3:::{bucket}");
    Ok(found(sent, NOT_FOUND, "locate", &arn)?.map(|out| {
        match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        }
    }))
}

/// The bucket's tags (`Ok(None)`: the bucket does not exist).
async fn tags(
    aws: &AwsScope,
    bucket: &str,
) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
    aws.throttle().await;
    let sent = aws
        .clients
        .s3
        .get_bucket_tagging()
        .bucket(bucket)
        .expected_bucket_owner(aws.account())
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Some(
            out.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        )),
        Err(e) => {
            let f = Failure::of(&e);
            if f.is(NO_TAGS) {
                Ok(Some(BTreeMap::new()))
            } else if f.is(NOT_FOUND) {
                Ok(None)
            } else {
                Err(f.into_provider_error("read tags of", &format!("arn:aws:s3:::{bucket}")))
            }
        }
    }
}

/// Stored GiB over every version and delete marker, from up to [`MEASURE_PAGES`] pages of
/// ListObjectVersions; `None` when the bucket is gone. A bigger bucket reports what was
/// counted (a lower bound) and the log says so.
async fn measure(aws: &AwsScope, bucket: &str) -> Result<Option<f64>, ProviderError> {
    let mut bytes: i64 = 0;
    let mut markers: (Option<String>, Option<String>) = (None, None);
    for _ in 0..MEASURE_PAGES {
        aws.throttle().await;
        let sent = aws
            .clients
            .s3
            .list_object_versions()
            .bucket(bucket)
            .expected_bucket_owner(aws.account())
            .set_key_marker(markers.0.clone())
            .set_version_id_marker(markers.1.clone())
            .send()
            .await;
        let arn = format!("arn:aws:s3:::{bucket}");
        let Some(page) = found(sent, NOT_FOUND, "measure", &arn)? else {
            return Ok(None);
        };
        bytes += page.versions().iter().filter_map(|v| v.size()).sum::<i64>();
        if page.is_truncated() != Some(true) {
            return Ok(Some(bytes as f64 / GIB));
        }
        markers = (
            page.next_key_marker().map(str::to_string),
            page.next_version_id_marker().map(str::to_string),
        );
    }
    tracing::info!(
        bucket,
        pages = MEASURE_PAGES,
        "bucket size is a lower bound: more versions than measured"
    );
    Ok(Some(bytes as f64 / GIB))
}

/// Deletes every object version and delete marker; `false` when the bucket is already gone.
async fn empty_versions(aws: &AwsScope, arn: &str, bucket: &str) -> Result<bool, ProviderError> {
    let s3 = &aws.clients.s3;
    for _ in 0..EMPTY_ROUNDS {
        // Always from the start: what was deleted is no longer listed.
        aws.throttle().await;
        let sent = s3
            .list_object_versions()
            .bucket(bucket)
            .expected_bucket_owner(aws.account())
            .max_keys(1000)
            .send()
            .await;
        let Some(page) = found(sent, NOT_FOUND, "list versions of", arn)? else {
            return Ok(false);
        };
        let objects: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if objects.is_empty() {
            return Ok(true);
        }
        let count = objects.len();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| ProviderError::refusal("empty", arn, e.to_string()))?;
        aws.throttle().await;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .expected_bucket_owner(aws.account())
            .delete(delete)
            .send()
            .await
            .map_err(|e| failed(e, "empty", arn))?;
        if let Some(err) = out.errors().first() {
            return Err(ProviderError {
                action: "empty".into(),
                resource: arn.to_string(),
                message: format!(
                    "{} of {count} object versions not deleted, first {}: {} {}",
                    out.errors().len(),
                    err.key().unwrap_or("?"),
                    err.code().unwrap_or("?"),
                    err.message().unwrap_or_default()
                ),
                retryable: true,
            });
        }
        tracing::debug!(bucket, count, "object versions deleted");
    }
    Err(not_empty(arn, "object versions", EMPTY_ROUNDS))
}

/// The bucket still holds `what` after `rounds` rounds: retried by a later pass or run.
fn not_empty(arn: &str, what: &str, rounds: usize) -> ProviderError {
    ProviderError {
        action: "empty".into(),
        resource: arn.to_string(),
        message: format!("{what} still present after {rounds} rounds; the next attempt goes on"),
        retryable: true,
    }
}

/// Aborts every unfinished multipart upload; `false` when the bucket is already gone.
async fn abort_uploads(aws: &AwsScope, arn: &str, bucket: &str) -> Result<bool, ProviderError> {
    let s3 = &aws.clients.s3;
    for _ in 0..ABORT_ROUNDS {
        aws.throttle().await;
        let sent = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .expected_bucket_owner(aws.account())
            .send()
            .await;
        let Some(page) = found(sent, NOT_FOUND, "list uploads of", arn)? else {
            return Ok(false);
        };
        if page.uploads().is_empty() {
            return Ok(true);
        }
        for u in page.uploads() {
            let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                continue;
            };
            aws.throttle().await;
            let sent = s3
                .abort_multipart_upload()
                .bucket(bucket)
                .expected_bucket_owner(aws.account())
                .key(key)
                .upload_id(id)
                .send()
                .await;
            found(sent, &["NoSuchUpload"], "abort an upload of", arn)?;
        }
    }
    Err(not_empty(arn, "multipart uploads", ABORT_ROUNDS))
}
