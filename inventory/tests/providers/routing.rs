//! `Providers::get`: one resource by id, read with a describe or two (what the snooze service
//! does on a click), routed to the scope responsible for it: the ARN's account and region; the
//! account's home scope for IAM (no region in the ARN); the scope of the bucket's region for S3
//! (neither account nor region in the ARN). Anything no scope is responsible for is `None`.

use anyhow::{Context, Result};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use inventory::aws::AwsScope;
use inventory::{Providers, Scope};

use crate::bed::{
    ACCOUNT, Bed, REGION, ami_in, ec2_arn, eligible, find, list, s3_client, wait_gone,
};
use crate::guard::KeepGuard;

const OTHER_REGION: &str = "eu-west-1";

fn aws_scope(region: &str) -> Scope {
    Scope::Aws {
        account: ACCOUNT.into(),
        region: region.into(),
    }
}

#[tokio::test]
async fn get_reads_one_resource_as_list_describes_it_for_every_aws_kind() -> Result<()> {
    let bed = Bed::start().await?;
    let seeded = bed.one_of_each_kind().await?;
    let p = bed.providers();
    let listed = list(&p).await?;
    for s in &seeded {
        let (kind, name) = (s.kind, &s.name);
        let want = find(&listed, kind, name);
        let got = p
            .get(&want.id)
            .await?
            .with_context(|| format!("get {}", want.id))?;
        assert_eq!(
            (
                got.kind, &got.id, &got.name, &got.scope, &got.tags, &got.state
            ),
            (
                want.kind,
                &want.id,
                &want.name,
                &want.scope,
                &want.tags,
                &want.state
            ),
            "{kind} {name}"
        );
        assert_eq!(got.tags_unreadable, None, "{kind} {name}");
    }

    // Not there: unknown ids of each shape, another account or region, another service, gone.
    let default_sg = bed
        .ec2
        .describe_security_groups()
        .group_names("default")
        .send()
        .await?
        .security_groups()[0]
        .group_id()
        .context("default group id")?
        .to_string();
    let web = &seeded[0].name;
    let member = listed
        .iter()
        .find(|r| r.kind == "ec2-instance" && r.part_of.is_some())
        .context("the Auto Scaling group's instance")?;
    let lb = &find(&listed, "load-balancer", "front").id;
    let missing = [
        ec2_arn("instance", "i-0000000000000dead"),
        ec2_arn("volume", "vol-0000000000000dead"),
        ec2_arn("security-group", "sg-0000000000000dead"),
        format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:nope"),
        format!("arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:nope"),
        format!(
            "arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0f2c1a3e-1111-2222-3333-444455556666:autoScalingGroupName/nope"
        ),
        format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/nope/50dc6c495c0c9188"
        ),
        format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/nope/73e2d6bc24d8a067"
        ),
        "arn:aws:s3:::no-such-bucket".to_string(),
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope"),
        format!("arn:aws:iam::{ACCOUNT}:role/nope"),
        format!(
            "arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/dev/nope/8ec0c8e6-0000-4e1a-9f00-0123456789ab"
        ),
        format!(
            "arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/nope/pool/8ec0c8e6-0000-4e1a-9f00-0123456789ab"
        ),
        // Not ours: another account, another region, another service, a qualified function,
        // an object rather than a bucket, not an ARN at all.
        format!("arn:aws:ec2:{REGION}:999999999999:instance/{web}"),
        format!("arn:aws:ec2:eu-west-3:{ACCOUNT}:instance/{web}"),
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:queue"),
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:api:1"),
        "arn:aws:s3:::stoa-artifacts/some/key".to_string(),
        format!("{lb}/extra"),
        "i-0123".to_string(),
        "k8s:preview".to_string(),
        // Never removable, so never found: a default security group, an instance of an Auto
        // Scaling group.
        ec2_arn("security-group", &default_sg),
        member.id.clone(),
    ];
    for id in &missing {
        assert!(p.get(id).await?.is_none(), "{id}");
    }
    let r = find(&listed, "ec2-instance", web).clone();
    p.remove(&r, &KeepGuard::default()).await?;
    wait_gone(&p, &r).await?;
    assert!(p.get(&r.id).await?.is_none(), "a terminated instance");
    Ok(())
}

#[tokio::test]
async fn get_routes_regional_global_and_bucket_arns_to_the_responsible_scope() -> Result<()> {
    let bed = Bed::start().await?;
    let eu_sdk = bed.sdk_in(OTHER_REGION).await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &eligible("web")).await?;
    let eu_ec2 = aws_sdk_ec2::Client::new(&eu_sdk);
    let eu_ami = ami_in(&eu_ec2).await?;
    let eu_web = eu_ec2
        .run_instances()
        .image_id(eu_ami)
        .min_count(1)
        .max_count(1)
        .send()
        .await?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .context("instance id")?;
    let role_arn = bed.role("app-role", &eligible("app-role")).await?;
    bed.bucket("home-bucket", &eligible("home-bucket")).await?;
    let eu_s3 = s3_client(&eu_sdk);
    eu_s3
        .create_bucket()
        .bucket("eu-bucket")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await?;
    bed.tag_bucket(&eu_s3, "eu-bucket", &eligible("eu-bucket"))
        .await?;

    let p = Providers::from_scopes(
        vec![
            bed.scope(),
            AwsScope::new(&eu_sdk, ACCOUNT, OTHER_REGION, false),
        ],
        None,
    );
    let get = |id: String| {
        let p = &p;
        async move {
            p.get(&id)
                .await
                .map(|r| r.map(|r| (r.kind, r.name, r.scope)))
        }
    };

    // Regional: the ARN's region.
    assert_eq!(
        get(ec2_arn("instance", &web)).await?,
        Some(("ec2-instance", web.clone(), aws_scope(REGION)))
    );
    assert_eq!(
        get(format!(
            "arn:aws:ec2:{OTHER_REGION}:{ACCOUNT}:instance/{eu_web}"
        ))
        .await?,
        Some(("ec2-instance", eu_web.clone(), aws_scope(OTHER_REGION)))
    );
    // The instance is in one region only: its id under the other region is nobody's.
    assert_eq!(
        get(format!(
            "arn:aws:ec2:{OTHER_REGION}:{ACCOUNT}:instance/{web}"
        ))
        .await?,
        None
    );

    // IAM: no region in the ARN; the account's home scope answers.
    assert_eq!(
        get(role_arn.clone()).await?,
        Some(("iam-role", "app-role".to_string(), aws_scope(REGION)))
    );

    // S3: neither account nor region; the scope of the bucket's region answers, the other
    // says it is not its bucket.
    assert_eq!(
        get("arn:aws:s3:::home-bucket".into()).await?,
        Some(("s3-bucket", "home-bucket".to_string(), aws_scope(REGION)))
    );
    assert_eq!(
        get("arn:aws:s3:::eu-bucket".into()).await?,
        Some((
            "s3-bucket",
            "eu-bucket".to_string(),
            aws_scope(OTHER_REGION)
        ))
    );
    for (bucket, region) in [("home-bucket", REGION), ("eu-bucket", OTHER_REGION)] {
        for scope in p.aws_scopes() {
            let got = scope.get(&format!("arn:aws:s3:::{bucket}")).await?;
            assert_eq!(
                got.is_some(),
                scope.region() == region,
                "{bucket} from {}",
                scope.scope_label()
            );
        }
    }
    // The listing agrees: each bucket is planned by one scope.
    let all = list(&p).await?;
    assert_eq!(
        find(&all, "s3-bucket", "eu-bucket").scope,
        aws_scope(OTHER_REGION)
    );
    assert_eq!(
        find(&all, "s3-bucket", "home-bucket").scope,
        aws_scope(REGION)
    );
    assert_eq!(
        all.iter().filter(|r| r.kind == "iam-role").count(),
        1,
        "the role is listed once, at home"
    );

    // Unknown or foreign: no scope is responsible, or none finds it.
    for id in [
        format!("arn:aws:ec2:ap-south-1:{ACCOUNT}:instance/{web}"),
        format!("arn:aws:ec2:{REGION}:999999999999:instance/{web}"),
        "arn:aws:iam::999999999999:role/app-role".to_string(),
        format!("arn:aws-cn:ec2:{REGION}:{ACCOUNT}:instance/{web}"),
        "arn:aws:s3:::nobodys-bucket".to_string(),
        "k8s:deployment/preview/web".to_string(),
        "not-an-id".to_string(),
    ] {
        assert_eq!(get(id.clone()).await?, None, "{id}");
    }
    Ok(())
}
