//! RDS DB instances: tags come inline (`TagList`); removal is DeleteDBInstance without a final
//! snapshot and without automated backups (what a TTL means for a non-production database whose
//! owner opted in; manual snapshots are separate resources with their own tags), after which
//! the instance is `deleting` until AWS no longer knows it. Its VPC security groups wait for it.

use aws_sdk_rds::types::DbInstance;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::error::{failed, found};
use crate::aws::{AwsScope, rds_tags, rds_write_tags};
use crate::cost::{Cost, Pricing};
use crate::error::ProviderError;
use crate::kind::{ArnShape, AwsKind, Current, Kind, Measure, Phase, Platform, Quota, Removal};
use crate::resource::{Ref, Relation, Resource};

/// `rds-instance`.
pub struct RdsInstance;

/// Registry name.
pub const NAME: &str = "rds-instance";

/// What AWS says when the instance does not exist (any more).
const NOT_FOUND: &[&str] = &["DBInstanceNotFound", "DBInstanceNotFoundFault"];

const SHAPE: ArnShape = ArnShape {
    service: "rds",
    prefix: "db:",
    regional: true,
    has_account: true,
};

impl Kind for RdsInstance {
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
            dimension: "rds_instances",
            measure: Measure::Count,
        })
    }
    fn cost(&self, r: &Resource, p: &Pricing) -> Cost {
        match Pricing::lookup(&p.db_hourly, r.attributes.db_class.as_deref(), "db class") {
            Cost::Hourly(h) if r.attributes.multi_az => Cost::Hourly(h * p.multi_az_factor),
            other => other,
        }
    }
    fn aws(&self) -> Option<&dyn AwsKind> {
        Some(self)
    }
}

impl AwsKind for RdsInstance {
    fn arn(&self) -> ArnShape {
        SHAPE
    }
    fn native_id(&self, resource_part: &str) -> Option<String> {
        super::ec2_instance::simple_id(resource_part, SHAPE.prefix)
    }
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "rds:AddTagsToResource",
            "rds:DeleteDBInstance",
            "rds:DescribeDBInstances",
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
                .describe_db_instances()
                .max_records(aws.page(20, 100))
                .into_paginator()
                .send();
            let mut out = Vec::new();
            loop {
                aws.throttle().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| failed(e, "list rds-instance", &aws.scope_label()))?;
                for db in page.db_instances() {
                    if let Some(r) = resource(aws, db)? {
                        out.push(r);
                    }
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
                .describe_db_instances()
                .db_instance_identifier(native)
                .send()
                .await;
            let Some(out) = found(sent, NOT_FOUND, "describe", arn)? else {
                return Ok(None);
            };
            let db = out
                .db_instances()
                .iter()
                .find(|d| d.db_instance_arn() == Some(arn));
            Ok(db.map(|d| Current {
                attributes: Some(crate::Attributes {
                    db_class: d.db_instance_class().map(str::to_string),
                    multi_az: d.multi_az().unwrap_or(false),
                    ..crate::Attributes::default()
                }),
                state: d.db_instance_status().unwrap_or("unknown").to_string(),
                tags: Ok(rds_tags(d.tag_list())),
                never: None,
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
                .delete_db_instance()
                .db_instance_identifier(native)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await;
            Ok(match found(sent, NOT_FOUND, "delete", arn)? {
                None => Removal::Done,
                Some(out) => Removal::Pending {
                    state: out
                        .db_instance()
                        .and_then(|d| d.db_instance_status())
                        .unwrap_or("deleting")
                        .to_string(),
                },
            })
        }
        .boxed()
    }

    fn phase(&self, state: &str) -> Phase {
        match state {
            "deleting" => Phase::Removing(Removal::Pending {
                state: state.to_string(),
            }),
            _ => Phase::Live,
        }
    }
}

fn resource(aws: &AwsScope, db: &DbInstance) -> Result<Option<Resource>, ProviderError> {
    let (Some(identifier), Some(arn)) = (db.db_instance_identifier(), db.db_instance_arn()) else {
        return Ok(None);
    };
    let account = arn.split(':').nth(4).unwrap_or_default();
    aws.check_account(account, &format!("RDS instance {arn}"))?;
    let mut r = aws.resource(NAME, arn.to_string(), identifier.to_string());
    r.tags = rds_tags(db.tag_list());
    r.state = Some(db.db_instance_status().unwrap_or("unknown").to_string());
    r.attributes.db_class = db.db_instance_class().map(str::to_string);
    r.attributes.multi_az = db.multi_az().unwrap_or(false);
    r.attributes.size_gb = db.allocated_storage().map(f64::from);
    r.attributes.created = db
        .instance_create_time()
        .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok());
    r.refs.extend(
        db.vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(|g| Ref::new(Relation::Blocks, super::security_group::NAME, g)),
    );
    Ok(Some(r))
}
