//! EC2 instances: deleted first among AWS kinds; terminating one releases its volumes and frees
//! its security groups (once it reaches `terminated`).

use super::{Kind, Platform};

/// `ec2-instance`.
pub struct Ec2Instance;

impl Kind for Ec2Instance {
    fn name(&self) -> &'static str {
        "ec2-instance"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &[]
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
}
