//! RDS DB instances: tags come inline (`TagList`); removal is DeleteDBInstance without a final
//! snapshot and without automated backups, after which the instance is `deleting` until AWS no
//! longer knows it.

use super::error::Failure;
use super::{AwsProvider, Current, rds_tags};
use crate::inventory::{CostBasis, Resource};
use crate::provider::{ProviderError, Removal};

/// Registry kind name.
pub(super) const KIND: &str = "rds-instance";

/// What AWS says when the instance does not exist (any more).
const NOT_FOUND: &[&str] = &["DBInstanceNotFound", "DBInstanceNotFoundFault"];

/// A listed DB instance and the VPC security groups it uses.
pub(super) struct Listed {
    pub resource: Resource,
    pub groups: Vec<String>,
}

pub(super) async fn list(p: &AwsProvider) -> Result<Vec<Listed>, ProviderError> {
    let mut pages = p
        .rds
        .describe_db_instances()
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
        for db in page.db_instances() {
            let (Some(identifier), Some(arn)) = (db.db_instance_identifier(), db.db_instance_arn())
            else {
                continue;
            };
            let account = arn.split(':').nth(4).unwrap_or_default();
            p.check_account(account, &format!("RDS instance {arn}"))?;
            let groups = db
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id())
                .map(str::to_string)
                .collect();
            let resource = p.resource(
                KIND,
                arn.to_string(),
                identifier.to_string(),
                rds_tags(db.tag_list()),
                db.db_instance_status().unwrap_or("unknown").to_string(),
                CostBasis {
                    db_class: db.db_instance_class().map(str::to_string),
                    multi_az: db.multi_az().unwrap_or(false),
                    ..CostBasis::default()
                },
            );
            out.push(Listed { resource, groups });
        }
    }
    Ok(out)
}

pub(super) async fn describe(
    p: &AwsProvider,
    arn: &str,
    id: &str,
) -> Result<Option<Current>, ProviderError> {
    p.limiter.acquire().await;
    let out = match p
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
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
    let db = out
        .db_instances()
        .iter()
        .find(|d| d.db_instance_arn() == Some(arn));
    Ok(db.map(|d| Current {
        state: d.db_instance_status().unwrap_or("unknown").to_string(),
        tags: Ok(rds_tags(d.tag_list())),
        never: None,
    }))
}

pub(super) async fn delete(p: &AwsProvider, arn: &str, id: &str) -> Result<Removal, ProviderError> {
    p.limiter.acquire().await;
    let sent = p
        .rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Removal::Pending {
            state: out
                .db_instance()
                .and_then(|d| d.db_instance_status())
                .unwrap_or("deleting")
                .to_string(),
        }),
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
