//! RDS DB instances, deleted with `SkipFinalSnapshot` (the resource's tags said its data may go).

use super::{Kind, Platform};

/// `rds-instance`.
pub struct RdsInstance;

impl Kind for RdsInstance {
    fn name(&self) -> &'static str {
        "rds-instance"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
}
