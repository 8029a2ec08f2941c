//! RDS manual snapshots: tags from `TagList`, or ListTagsForResource when the list came back
//! without any; removal is DeleteDBSnapshot. Automated snapshots belong to their instance's
//! backup retention and are neither listed nor removed.
//!
//! A snapshot of a listed DB instance waits for that instance: if the instance's deletion fails,
//! its backups are still there (the platform's order puts snapshots before instances; keeping
//! the backup until the instance is gone is the safer reading, see ARCHITECTURE.md).

use std::collections::BTreeMap;

use aws_sdk_rds::types::DbSnapshot;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::error::{Failure, failed, found};
use crate::aws::{AwsScope, rds_tags, rds_write_tags};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Phase, Platform, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `rds-snapshot`.
pub struct RdsSnapshot;

/// Registry name.
pub const NAME: &str = "rds-snapshot";

/// What AWS says when the snapshot does not exist (any more).
const NOT_FOUND: &[&str] = &["DBSnapshotNotFound", "DBSnapshotNotFoundFault"];

const SHAPE: ArnShape = ArnShape {
    service: "rds",
    prefix: "snapshot:",
    regional: true,
    has_account: true,
};

impl Kind for RdsSnapshot {
    fn name(&self) -> &'static str {
        NAME
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[super::rds_instance::NAME]
    }
    fn cost(&self, r: &Resource, p: &Pricing) -> Cost {
        Pricing::per_gb(r.attributes.size_gb, p.snapshot_gb_month)
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for RdsSnapshot {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    fn native_id(&self, resource_part: &str) -> Option<String> {
        super::ec2_instance::simple_id(resource_part, SHAPE.prefix)
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "rds:AddTagsToResource",
            "rds:DeleteDBSnapshot",
            "rds:DescribeDBSnapshots",
            "rds:ListTagsForResource",
            "rds:RemoveTagsFromResource",
        ]
    }

    fn list<'a>(
        &'a self,
        aws: &'a AwsScope,
    ) -> BoxFuture<'a, Result<Vec<Resource>, ProviderError>> {
        async move {
            let mut pages = aws
                .clients
                .rds
                .describe_db_snapshots()
                .snapshot_type("manual")
                .max_records(aws.page(20, 100))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list rds-snapshot", &aws.scope_label()))?;
                for s in page.db_snapshots() {
                    let (Some(identifier), Some(arn)) =
                        (s.db_snapshot_identifier(), s.db_snapshot_arn())
                    else {
                        continue;
                    };
                    if s.snapshot_type() != Some("manual") {
                        continue;
                    }
                    let account = arn.split(':').nth(4).unwrap_or_default();
                    aws.check_account(account, &format!("RDS snapshot {arn}"))?;
                    let mut r = aws.resource(NAME, arn.to_string(), identifier.to_string());
                    r.state = Some(s.status().unwrap_or("unknown").to_string());
                    r.attributes.size_gb = s.allocated_storage().map(f64::from);
                    r.attributes.created = s
                        .snapshot_create_time()
                        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
                    match tags(aws, s, arn).await {
                        Ok(tags) => r.tags = tags,
                        // Listed, but protected: nothing acts on a resource it cannot read.
                        Err(e) => r.tags_unreadable = Some(e),
                    }
                    if let Some(db) = s.db_instance_identifier() {
                        r.refs
                            .push(Ref::new(Relation::WaitsFor, super::rds_instance::NAME, db));
                    }
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
            aws.throttle().await;
            let sent = aws
                .clients
                .rds
                .describe_db_snapshots()
                .db_snapshot_identifier(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let Some(s) = out
                .db_snapshots()
                .iter()
                .find(|s| s.db_snapshot_arn() == Some(arn))
            else {
                return Ok(None);
            };
            Ok(Some(Current {
                attributes: None,
                state: s.status().unwrap_or("unknown").to_string(),
                tags: tags(aws, s, arn).await,
                never: (s.snapshot_type() != Some("manual")).then(|| {
                    format!(
                        "snapshot type is {:?}, not manual: automated snapshots are never deleted",
                        s.snapshot_type().unwrap_or("unknown")
                    )
                }),
            }))
        }
        .boxed()
    }

    fn write_tags<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        _native: &'a str,
        set: &'a [(String, String)],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        rds_write_tags(aws, arn, set, remove).boxed()
    }

    fn delete<'a>(
        &'a self,
        aws: &'a AwsScope,
        arn: &'a str,
        native: &'a str,
    ) -> BoxFuture<'a, Result<Removal, ProviderError>> {
        async move {
            aws.throttle().await;
            let sent = aws
                .clients
                .rds
                .delete_db_snapshot()
                .db_snapshot_identifier(native)
                .send()
                .await;
            found(sent, NOT_FOUND, "delete", arn).map(|_| Removal::Done)
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        match state {
            "deleted" => Phase::Gone,
            // Nothing waits for snapshots: a deletion under way is as good as done.
            "deleting" => Phase::Removing(Removal::Done),
            _ => Phase::Live,
        }
    }
}

/// The snapshot's tags: inline when AWS included any, else ListTagsForResource (older API
/// behaviour and some partitions omit `TagList`). The error is the text for `tags_unreadable`.
async fn tags(
    aws: &AwsScope,
    s: &DbSnapshot,
    arn: &str,
) -> Result<BTreeMap<String, String>, String> {
    if !s.tag_list().is_empty() {
        return Ok(rds_tags(s.tag_list()));
    }
    aws.throttle().await;
    match aws
        .clients
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
    {
        Ok(out) => Ok(rds_tags(out.tag_list())),
        Err(e) => Err(format!(
            "ListTagsForResource failed: {}",
            Failure::of(&e).message
        )),
    }
}
