//! RDS manual snapshots. A snapshot of an instance being deleted goes *after* the instance: if the
//! instance deletion fails, its backups are still there.

use super::{Kind, Platform};

/// `rds-snapshot`.
pub struct RdsSnapshot;

impl Kind for RdsSnapshot {
    fn name(&self) -> &'static str {
        "rds-snapshot"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &["rds-instance"]
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
}
