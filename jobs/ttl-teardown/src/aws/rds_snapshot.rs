//! RDS manual snapshots: tags from `TagList`, or ListTagsForResource when the list came back
//! without any; removal is DeleteDBSnapshot. Automated snapshots belong to their instance's
//! backup retention and are neither listed nor removed.

use aws_sdk_rds::types::DbSnapshot;

use super::error::Failure;
use super::{AwsProvider, Current, rds_tags};
use crate::inventory::{CostBasis, Resource};
use crate::provider::{ProviderError, Removal};

/// Registry kind name.
pub(super) const KIND: &str = "rds-snapshot";

/// What AWS says when the snapshot does not exist (any more).
const NOT_FOUND: &[&str] = &["DBSnapshotNotFound", "DBSnapshotNotFoundFault"];

/// A listed snapshot and the identifier of the DB instance it was taken from.
pub(super) struct Listed {
    pub resource: Resource,
    pub db: Option<String>,
}

pub(super) async fn list(p: &AwsProvider) -> Result<Vec<Listed>, ProviderError> {
    let mut pages = p
        .rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .max_records(p.rds_page())
        .into_paginator()
        .send();
    let mut out = Vec::new();
    loop {
        p.limiter.acquire().await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page =
            page.map_err(|e| Failure::of(&e).into_provider_error("list", &p.scope_label()))?;
        for s in page.db_snapshots() {
            let (Some(identifier), Some(arn)) = (s.db_snapshot_identifier(), s.db_snapshot_arn())
            else {
                continue;
            };
            if s.snapshot_type() != Some("manual") {
                continue;
            }
            let account = arn.split(':').nth(4).unwrap_or_default();
            p.check_account(account, &format!("RDS snapshot {arn}"))?;
            let mut resource = p.resource(
                KIND,
                arn.to_string(),
                identifier.to_string(),
                Default::default(),
                s.status().unwrap_or("unknown").to_string(),
                CostBasis {
                    size_gb: s.allocated_storage().map(f64::from),
                    ..CostBasis::default()
                },
            );
            match tags(p, s, arn).await {
                Ok(tags) => resource.tags = tags,
                // Listed, but protected: the planner never deletes a resource it cannot read.
                Err(e) => resource.tags_unreadable = Some(e),
            }
            out.push(Listed {
                resource,
                db: s.db_instance_identifier().map(str::to_string),
            });
        }
    }
    Ok(out)
}

/// The snapshot's tags: inline when AWS included any, else ListTagsForResource (older API
/// behaviour and some partitions omit `TagList`). The error is the text for `tags_unreadable`.
async fn tags(
    p: &AwsProvider,
    s: &DbSnapshot,
    arn: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    if !s.tag_list().is_empty() {
        return Ok(rds_tags(s.tag_list()));
    }
    p.limiter.acquire().await;
    match p
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

pub(super) async fn describe(
    p: &AwsProvider,
    arn: &str,
    id: &str,
) -> Result<Option<Current>, ProviderError> {
    p.limiter.acquire().await;
    let out = match p
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let f = Failure::of(&e);
            return if f.is(NOT_FOUND) {
                Ok(None)
            } else {
                Err(f.into_provider_error("describe", arn))
            };
        }
    };
    let Some(s) = out
        .db_snapshots()
        .iter()
        .find(|s| s.db_snapshot_arn() == Some(arn))
    else {
        return Ok(None);
    };
    Ok(Some(Current {
        state: s.status().unwrap_or("unknown").to_string(),
        tags: tags(p, s, arn).await,
        never: (s.snapshot_type() != Some("manual")).then(|| {
            format!(
                "snapshot type is {:?}, not manual: automated snapshots are never deleted",
                s.snapshot_type().unwrap_or("unknown")
            )
        }),
    }))
}

pub(super) async fn delete(p: &AwsProvider, arn: &str, id: &str) -> Result<Removal, ProviderError> {
    p.limiter.acquire().await;
    match p
        .rds
        .delete_db_snapshot()
        .db_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(_) => Ok(Removal::Done),
        Err(e) => {
            let f = Failure::of(&e);
            if f.is(NOT_FOUND) {
                Ok(Removal::Done)
            } else {
                Err(f.into_provider_error("delete", arn))
            }
        }
    }
}
