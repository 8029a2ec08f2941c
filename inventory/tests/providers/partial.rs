//! A listing that fails for one kind in one scope (or a read of parts that fails): that kind is a
//! [`ListFailure`] of that scope only, everything else is listed, and
//! `Listing::blocking_failure` holds back exactly what may depend on the kind that failed, or
//! have parts of it.
//!
//! A service is made unreachable by pointing its client at a closed port
//! (`AwsScope::with_clients`), with retries off so the test does not sit out the backoff.

use anyhow::Result;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use inventory::aws::AwsScope;
use inventory::{ListFailure, Providers, Scope};

use crate::bed::{ACCOUNT, Bed, REGION, eligible, find};

/// Nothing listens there.
const DEAD: &str = "http://127.0.0.1:1";

const OTHER_REGION: &str = "eu-west-1";

fn dead_elbv2(sdk: &SdkConfig) -> aws_sdk_elasticloadbalancingv2::Client {
    aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .endpoint_url(DEAD)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

fn dead_lambda(sdk: &SdkConfig) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(sdk)
            .endpoint_url(DEAD)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

fn failed(f: &ListFailure) -> (String, &'static str) {
    (f.scope.label(), f.kind)
}

#[tokio::test]
async fn one_kind_failing_in_one_scope_holds_back_only_what_waits_for_it() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let lb_sg = bed.group("lb-sg", &eligible("lb-sg")).await?;
    bed.load_balancer("web-lb", &lb_sg, &eligible("web-lb"))
        .await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let vol = bed.volume(5, &eligible("vol")).await?;
    bed.role("app-role", &eligible("app-role")).await?;
    bed.bucket("stoa-artifacts", &eligible("stoa-artifacts"))
        .await?;
    let eu_sdk = bed.sdk_in(OTHER_REGION).await?;
    let eu_sg = aws_sdk_ec2::Client::new(&eu_sdk)
        .create_security_group()
        .group_name("eu-sg")
        .description("eu-sg")
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("owner")
                        .value("a@b.io")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?
        .group_id()
        .map(str::to_string)
        .expect("group id");
    let eu_vpc = aws_sdk_ec2::Client::new(&eu_sdk)
        .describe_vpcs()
        .send()
        .await?
        .vpcs()
        .iter()
        .find(|v| v.is_default() == Some(true))
        .and_then(|v| v.vpc_id())
        .map(str::to_string)
        .expect("a default VPC in eu-west-1");
    aws_sdk_elasticloadbalancingv2::Client::new(&eu_sdk)
        .create_target_group()
        .name("eu-tg")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(eu_vpc)
        .send()
        .await?;

    // ELBv2 unreachable at home; Lambda unreachable in the other region.
    let home = bed.scope().with_clients(|c| c.elbv2 = dead_elbv2(&bed.sdk));
    let eu = AwsScope::new(&eu_sdk, ACCOUNT, OTHER_REGION, false)
        .with_clients(|c| c.lambda = dead_lambda(&eu_sdk));
    let p = Providers::from_scopes(vec![home, eu], None);
    let listing = p.list().await;

    let home_label = format!("aws:{ACCOUNT}/{REGION}");
    let eu_label = format!("aws:{ACCOUNT}/{OTHER_REGION}");
    let mut failures: Vec<_> = listing.failures.iter().map(failed).collect();
    failures.sort_unstable();
    assert_eq!(
        failures,
        [
            (eu_label.clone(), "lambda-function"),
            (home_label.clone(), "load-balancer"),
            (home_label.clone(), "target-group"),
        ],
        "the kinds of the unreachable service, in their scope only"
    );
    for f in &listing.failures {
        assert!(
            f.error.retryable,
            "a connection failure may pass: {}",
            f.error
        );
        assert_eq!(f.error.action, format!("list {}", f.kind));
    }

    // Everything else is listed, in both scopes.
    let all = &listing.resources;
    let group = find(all, "security-group", &lb_sg);
    let instance = find(all, "ec2-instance", &web);
    let volume = find(all, "ebs-volume", &vol);
    let role = find(all, "iam-role", "app-role");
    let bucket = find(all, "s3-bucket", "stoa-artifacts");
    let eu_group = find(all, "security-group", &eu_sg);
    let eu_target_group = find(all, "target-group", "eu-tg");
    assert_eq!(
        eu_group.scope,
        Scope::Aws {
            account: ACCOUNT.into(),
            region: OTHER_REGION.into()
        }
    );
    assert!(all.iter().all(|r| r.kind != "load-balancer"));
    // The unlisted load balancer cannot add its edge: the group looks free...
    assert!(group.wait_for.is_empty());

    // ...which is why a group is held back while load balancers of its scope are unknown.
    let blocking = |r| listing.blocking_failure(r).map(failed);
    assert_eq!(blocking(group), Some((home_label.clone(), "load-balancer")));
    // In the other region the load balancers were listed: a target group (which waits for
    // load balancers only) is not held; a group is, by that region's own Lambda failure.
    assert_eq!(blocking(eu_target_group), None);
    assert_eq!(
        blocking(eu_group),
        Some((eu_label.clone(), "lambda-function"))
    );
    // Kinds that wait for none of the failed ones are not held back.
    for r in [instance, volume, bucket] {
        assert_eq!(blocking(r), None, "{}", r.kind);
    }
    // A global kind (IAM roles, listed at home) waits for Lambda functions of every region of
    // the account: the other region's failure holds it.
    assert_eq!(blocking(role), Some((eu_label.clone(), "lambda-function")));
    Ok(())
}

fn dead_ec2(sdk: &SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(sdk)
            .endpoint_url(DEAD)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

#[tokio::test]
async fn parts_that_cannot_be_read_hold_their_owner_back() -> Result<()> {
    let bed = Bed::start().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let mut listing = bed.providers().list_candidates().await;
    assert!(listing.failures.is_empty(), "{:?}", listing.failures);
    let instance = find(&listing.resources, "ec2-instance", &web).clone();
    assert_eq!(listing.blocking_failure(&instance).map(failed), None);

    // EC2 unreachable once the instances were listed: web's root volume cannot be read, so
    // what would go with web is unknown.
    let unreachable = bed.scope().with_clients(|c| c.ec2 = dead_ec2(&bed.sdk));
    let p = Providers::from_scopes(vec![unreachable], None);
    assert!(p.read_parts(&mut listing, &[instance.id.as_str()]).await);
    let home_label = format!("aws:{ACCOUNT}/{REGION}");
    assert_eq!(
        listing.failures.iter().map(failed).collect::<Vec<_>>(),
        [(home_label.clone(), "ebs-volume")]
    );
    assert!(
        listing.failures[0].error.retryable,
        "a connection failure may pass"
    );
    assert_eq!(
        listing.blocking_failure(&instance).map(failed),
        Some((home_label, "ebs-volume"))
    );
    assert!(listing.resources.iter().all(|r| r.kind != "ebs-volume"));
    Ok(())
}
