//! Security groups: deletion fails with `DependencyViolation` while an instance or ENI uses the
//! group or another group references it, so groups go after instances.

use super::{Kind, Platform};

/// `security-group`.
pub struct SecurityGroup;

impl Kind for SecurityGroup {
    fn name(&self) -> &'static str {
        "security-group"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &["ec2-instance", "rds-instance"]
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
}
