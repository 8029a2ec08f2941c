//! ARNs as parts: `arn:<partition>:<service>:<region>:<account>:<resource>`.
//!
//! Region and account may be empty (IAM ARNs have no region, S3 bucket ARNs neither region nor
//! account); the resource part keeps its own `:` and `/` (`db:mydb`,
//! `loadbalancer/app/web/50dc6c495c0c9188`).

/// The parts of an ARN, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: &'a str,
    /// `ec2`, `s3`, `iam`, …
    pub service: &'a str,
    /// The region, empty for global services.
    pub region: &'a str,
    /// The account id, empty for S3 buckets.
    pub account: &'a str,
    /// Everything after the account.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// The parts of `text`, or `None` when it is not an ARN (six `:`-separated parts starting
    /// with `arn`, a non-empty partition, service and resource).
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let mut parts = text.splitn(6, ':');
        let (prefix, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        (prefix == "arn" && !partition.is_empty() && !service.is_empty() && !resource.is_empty())
            .then_some(Arn {
                partition,
                service,
                region,
                account,
                resource,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_global_and_accountless_arns() {
        let a = Arn::parse("arn:aws:rds:us-east-1:123456789012:db:mydb").expect("arn");
        assert_eq!(
            (a.service, a.region, a.account, a.resource),
            ("rds", "us-east-1", "123456789012", "db:mydb")
        );
        let iam = Arn::parse("arn:aws:iam::123456789012:role/team/app").expect("arn");
        assert_eq!((iam.region, iam.resource), ("", "role/team/app"));
        let s3 = Arn::parse("arn:aws:s3:::stoa-artifacts").expect("arn");
        assert_eq!(
            (s3.region, s3.account, s3.resource),
            ("", "", "stoa-artifacts")
        );
        for bad in [
            "",
            "arn:aws:s3:::",
            "i-1",
            "arn::ec2:r:a:x",
            "urn:aws:s3:::b",
        ] {
            assert_eq!(Arn::parse(bad), None, "{bad}");
        }
    }
}
