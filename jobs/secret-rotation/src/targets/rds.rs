//! RDS master passwords: `ModifyDBInstance` with `MasterUserPassword` applied immediately, then
//! `DescribeDBInstances` until the instance no longer shows the password as a pending
//! modification. The old password stops working when RDS applies the new one (disruptive).
//! The test step checks that the change is applied and the instance is available; a login test
//! needs network access to the instance, which the job does not assume.

use std::time::{Duration, Instant};

use super::TargetError;

/// The IAM actions this target calls (the chart's `iam/secret-rotation.json`, via
/// [`crate::iam`]), sorted.
pub const IAM_ACTIONS: &[&str] = &["rds:DescribeDBInstances", "rds:ModifyDBInstance"];

/// An RDS instance.
pub struct Rds {
    /// The SDK client for its account and region.
    pub client: aws_sdk_rds::Client,
    /// The DB instance identifier.
    pub instance: String,
    /// How often to poll.
    pub poll_interval: Duration,
    /// How long the change may take to apply.
    pub timeout: Duration,
}

impl Rds {
    /// `rds <instance>`.
    pub fn describe(&self) -> String {
        format!("rds {}", self.instance)
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> TargetError {
        TargetError::new(&self.describe(), format!("{what}: {e}"))
    }

    /// Sets the master password and waits until it is applied.
    pub async fn set(&self, password: &str) -> Result<(), TargetError> {
        let sent = self
            .client
            .modify_db_instance()
            .db_instance_identifier(&self.instance)
            .master_user_password(password)
            .apply_immediately(true)
            .send()
            .await;
        if let Err(e) = sent {
            let service = e.as_service_error();
            let code = service.and_then(|s| aws_sdk_rds::error::ProvideErrorMetadata::code(s));
            let message = format!(
                "ModifyDBInstance: {}",
                aws_sdk_rds::error::DisplayErrorContext(&e)
            );
            // InvalidParameterValue: the password broke a rule of the engine.
            return Err(match code {
                Some("InvalidParameterValue" | "InvalidParameterCombination") => {
                    TargetError::rejected(&self.describe(), message)
                }
                _ => TargetError::new(&self.describe(), message),
            });
        }
        self.wait_applied().await
    }

    async fn wait_applied(&self) -> Result<(), TargetError> {
        let start = Instant::now();
        loop {
            let out = self
                .client
                .describe_db_instances()
                .db_instance_identifier(&self.instance)
                .send()
                .await
                .map_err(|e| {
                    self.err(
                        "DescribeDBInstances",
                        aws_sdk_rds::error::DisplayErrorContext(&e),
                    )
                })?;
            let db = out
                .db_instances()
                .first()
                .ok_or_else(|| self.err("DescribeDBInstances", "instance not found"))?;
            let pending = db
                .pending_modified_values()
                .and_then(|p| p.master_user_password())
                .is_some();
            if !pending {
                return Ok(());
            }
            if start.elapsed() > self.timeout {
                return Err(self.err(
                    "ModifyDBInstance",
                    format!(
                        "the new password was still pending after {}s",
                        self.timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// The change is applied and the instance is available.
    pub async fn test(&self) -> Result<(), TargetError> {
        self.wait_applied().await?;
        let out = self
            .client
            .describe_db_instances()
            .db_instance_identifier(&self.instance)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    "DescribeDBInstances",
                    aws_sdk_rds::error::DisplayErrorContext(&e),
                )
            })?;
        let status = out
            .db_instances()
            .first()
            .and_then(|d| d.db_instance_status())
            .unwrap_or("unknown")
            .to_string();
        match status.as_str() {
            "available" | "modifying" | "resetting-master-credentials" => Ok(()),
            other => Err(self.err("test", format!("instance is {other}"))),
        }
    }
}
