//! EBS volumes: an attached volume cannot be deleted; it waits for the instance it is attached to.

use super::{Kind, Platform};

/// `ebs-volume`.
pub struct EbsVolume;

impl Kind for EbsVolume {
    fn name(&self) -> &'static str {
        "ebs-volume"
    }
    fn wait_for(&self) -> &'static [&'static str] {
        &["ec2-instance"]
    }
    fn platform(&self) -> Platform {
        Platform::Aws
    }
}
