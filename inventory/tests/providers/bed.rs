//! A moto server with SDK clients to seed it, and what every AWS test shares: the scope under
//! test, tags of an opted-in resource, lookups in a listing.
//!
//! Seeding goes through the SDK directly, never through the inventory: what is listed must have
//! been made by someone else.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use common::clients::{AwsTarget, aws_sdk_config_from};
use common::config::{AwsConfig, HttpUrl};
use inventory::aws::AwsScope;
use inventory::{Providers, Resource, State};
use testbed::moto::Moto;

pub use testbed::moto::REGION;

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// A moto server and clients of every service the kinds use, in [`REGION`].
pub struct Bed {
    /// The server (dropping it stops it).
    pub moto: Moto,
    /// SDK config pointing at it.
    pub sdk: SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub iam: aws_sdk_iam::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub eks: aws_sdk_eks::Client,
}

impl Bed {
    /// Starts moto and builds the clients.
    pub async fn start() -> Result<Bed> {
        let moto = Moto::start().await.context("start moto")?;
        let sdk = sdk_config(&moto, REGION).await?;
        Ok(Bed {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            rds: aws_sdk_rds::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            s3: s3_client(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            eks: aws_sdk_eks::Client::new(&sdk),
            sdk,
            moto,
        })
    }

    /// SDK config for another region of the same server.
    pub async fn sdk_in(&self, region: &str) -> Result<SdkConfig> {
        sdk_config(&self.moto, region).await
    }

    /// The home scope of [`ACCOUNT`] in [`REGION`], as the jobs build it.
    pub fn scope(&self) -> AwsScope {
        AwsScope::new(&self.sdk, ACCOUNT, REGION, true)
    }

    /// [`Providers`] of that one scope.
    pub fn providers(&self) -> Providers {
        Providers::from_scopes(vec![self.scope()], None)
    }

    /// An AMI to launch instances from (see [`ami_in`]).
    pub async fn ami(&self) -> Result<String> {
        ami_in(&self.ec2).await
    }

    pub async fn instance(
        &self,
        ami: &str,
        groups: &[&str],
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.instance_with(ami, groups, tags, None).await
    }

    /// An instance, with an instance profile when `profile` names one.
    pub async fn instance_with(
        &self,
        ami: &str,
        groups: &[&str],
        tags: &BTreeMap<String, String>,
        profile: Option<&str>,
    ) -> Result<String> {
        let out = self
            .ec2
            .run_instances()
            .image_id(ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .set_security_group_ids(Some(groups.iter().map(|g| g.to_string()).collect()))
            .tag_specifications(spec(ResourceType::Instance, tags))
            .set_iam_instance_profile(profile.map(|p| {
                aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                    .name(p)
                    .build()
            }))
            .send()
            .await?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .context("no instance id")
    }

    pub async fn group(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<String> {
        let out = self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(name)
            .tag_specifications(spec(ResourceType::SecurityGroup, tags))
            .send()
            .await?;
        out.group_id().map(str::to_string).context("no group id")
    }

    pub async fn volume(&self, size: i32, tags: &BTreeMap<String, String>) -> Result<String> {
        let out = self
            .ec2
            .create_volume()
            .size(size)
            .availability_zone(format!("{REGION}a"))
            .tag_specifications(spec(ResourceType::Volume, tags))
            .send()
            .await?;
        out.volume_id().map(str::to_string).context("no volume id")
    }

    /// Attaches `volume` to `instance` as `device` (moto: not deleted on termination).
    pub async fn attach(&self, volume: &str, instance: &str, device: &str) -> Result<()> {
        self.ec2
            .attach_volume()
            .volume_id(volume)
            .instance_id(instance)
            .device(device)
            .send()
            .await?;
        Ok(())
    }

    pub async fn db(
        &self,
        id: &str,
        groups: &[&str],
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let out = self
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("admin_user")
            .master_user_password("password-123")
            .multi_az(true)
            .set_vpc_security_group_ids(Some(groups.iter().map(|g| g.to_string()).collect()))
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await?;
        out.db_instance()
            .and_then(|d| d.db_instance_arn())
            .map(str::to_string)
            .context("no DB ARN")
    }

    pub async fn snapshot(
        &self,
        db: &str,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let out = self
            .rds
            .create_db_snapshot()
            .db_instance_identifier(db)
            .db_snapshot_identifier(id)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await?;
        out.db_snapshot()
            .and_then(|s| s.db_snapshot_arn())
            .map(str::to_string)
            .context("no snapshot ARN")
    }

    /// Re-tags an EC2 resource behind the inventory's back.
    pub async fn retag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        self.ec2
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await?;
        Ok(())
    }

    /// The default VPC and its subnets, one per availability zone.
    pub async fn default_vpc(&self) -> Result<(String, Vec<String>)> {
        let vpcs = self.ec2.describe_vpcs().send().await?;
        let vpc = vpcs
            .vpcs()
            .iter()
            .find(|v| v.is_default() == Some(true))
            .and_then(|v| v.vpc_id())
            .context("moto has a default VPC")?
            .to_string();
        let subnets = self
            .ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc)
                    .build(),
            )
            .send()
            .await?;
        let mut by_zone: BTreeMap<String, String> = BTreeMap::new();
        for s in subnets.subnets() {
            if let (Some(zone), Some(id)) = (s.availability_zone(), s.subnet_id()) {
                by_zone
                    .entry(zone.to_string())
                    .or_insert_with(|| id.to_string());
            }
        }
        ensure!(
            by_zone.len() >= 2,
            "the default VPC spans two zones: {by_zone:?}"
        );
        Ok((vpc, by_zone.into_values().collect()))
    }

    /// A launch template and an Auto Scaling group of `size` instances from it, tagged `tags`
    /// (propagated to the instances). Returns the group's ARN.
    pub async fn autoscaling_group(
        &self,
        name: &str,
        ami: &str,
        size: i32,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
        let template = format!("{name}-template");
        self.ec2
            .create_launch_template()
            .launch_template_name(&template)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(ami)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await?;
        self.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(size)
            .max_size(size)
            .desired_capacity(size)
            .availability_zones(format!("{REGION}a"))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| {
                        AsgTag::builder()
                            .resource_id(name)
                            .resource_type("auto-scaling-group")
                            .key(k)
                            .value(v)
                            .propagate_at_launch(true)
                            .build()
                    })
                    .collect(),
            ))
            .send()
            .await?;
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await?;
        out.auto_scaling_groups()
            .first()
            .and_then(|g| g.auto_scaling_group_arn())
            .map(str::to_string)
            .context("no group ARN")
    }

    /// An application load balancer in two subnets of the default VPC with `group`.
    pub async fn load_balancer(
        &self,
        name: &str,
        group: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let (_, subnets) = self.default_vpc().await?;
        let out = self
            .elbv2
            .create_load_balancer()
            .name(name)
            .set_subnets(Some(subnets.into_iter().take(2).collect()))
            .security_groups(group)
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await?;
        out.load_balancers()
            .first()
            .and_then(|lb| lb.load_balancer_arn())
            .map(str::to_string)
            .context("no load balancer ARN")
    }

    /// An HTTP target group in the default VPC.
    pub async fn target_group(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let (vpc, _) = self.default_vpc().await?;
        let out = self
            .elbv2
            .create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await?;
        out.target_groups()
            .first()
            .and_then(|tg| tg.target_group_arn())
            .map(str::to_string)
            .context("no target group ARN")
    }

    /// An HTTP listener of `lb` forwarding to `tg`: what makes the target group the load
    /// balancer's.
    pub async fn listener(&self, lb: &str, tg: &str) -> Result<()> {
        use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
        self.elbv2
            .create_listener()
            .load_balancer_arn(lb)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(tg)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// Registers instance `instance` as a target of `tg` (port 80).
    pub async fn register_target(&self, tg: &str, instance: &str) -> Result<()> {
        self.elbv2
            .register_targets()
            .target_group_arn(tg)
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(instance)
                    .port(80)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// A bucket in [`REGION`], tagged `tags` (none when empty).
    pub async fn bucket(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.s3.create_bucket().bucket(name).send().await?;
        self.tag_bucket(&self.s3, name, tags).await
    }

    /// Puts `tags` on a bucket through `s3`.
    pub async fn tag_bucket(
        &self,
        s3: &aws_sdk_s3::Client,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let set = tags
            .iter()
            .map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()?;
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .set_tag_set(Some(set))
                    .build()?,
            )
            .send()
            .await?;
        Ok(())
    }

    /// Makes `bucket` versioned and gives it two versions of an object, a delete marker and an
    /// unfinished multipart upload: everything a bucket's removal must take apart.
    pub async fn fill_versioned(&self, bucket: &str) -> Result<()> {
        use aws_sdk_s3::primitives::ByteStream;
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.s3
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
        for _ in 0..2 {
            self.s3
                .put_object()
                .bucket(bucket)
                .key("a.txt")
                .body(ByteStream::from_static(b"abc"))
                .send()
                .await?;
        }
        self.s3
            .delete_object()
            .bucket(bucket)
            .key("a.txt")
            .send()
            .await?;
        self.s3
            .create_multipart_upload()
            .bucket(bucket)
            .key("big.bin")
            .send()
            .await?;
        Ok(())
    }

    /// Gives `role` a managed policy (`<role>-read`, attached), an inline policy and the
    /// instance profile `profile`: everything a role's removal must take apart.
    pub async fn furnish_role(&self, role: &str, profile: &str) -> Result<()> {
        const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let policy = self
            .iam
            .create_policy()
            .policy_name(format!("{role}-read"))
            .policy_document(POLICY)
            .send()
            .await?
            .policy()
            .and_then(|p| p.arn())
            .map(str::to_string)
            .context("policy ARN")?;
        self.iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy)
            .send()
            .await?;
        self.iam
            .put_role_policy()
            .role_name(role)
            .policy_name("inline")
            .policy_document(POLICY)
            .send()
            .await?;
        self.iam
            .create_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await?;
        self.iam
            .add_role_to_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await?;
        Ok(())
    }

    /// An IAM role any service may assume, tagged `tags` (none when empty). Returns its ARN.
    pub async fn role(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<String> {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ec2.amazonaws.com","eks.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;
        let out = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .set_tags(Some(iam_tags(tags)?).filter(|t| !t.is_empty()))
            .send()
            .await?;
        Ok(out.role().context("no role")?.arn().to_string())
    }

    /// A Lambda function run by `role`, in `groups` (a VPC function) when any, tagged `tags`.
    /// moto stores the code without running it: an empty zip archive is enough.
    pub async fn function(
        &self,
        name: &str,
        role: &str,
        groups: &[&str],
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        use aws_sdk_lambda::primitives::Blob;
        use aws_sdk_lambda::types::{FunctionCode, Runtime, VpcConfig};
        let vpc = if groups.is_empty() {
            None
        } else {
            let (_, subnets) = self.default_vpc().await?;
            Some(
                VpcConfig::builder()
                    .set_subnet_ids(Some(subnets))
                    .set_security_group_ids(Some(groups.iter().map(|g| g.to_string()).collect()))
                    .build(),
            )
        };
        let out = self
            .lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(role)
            .handler("main.handler")
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(EMPTY_ZIP))
                    .build(),
            )
            .set_vpc_config(vpc)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await?;
        out.function_arn()
            .map(str::to_string)
            .context("no function ARN")
    }

    /// An EKS cluster run by `role` in the default VPC.
    pub async fn cluster(&self, name: &str, role: &str) -> Result<()> {
        let (_, subnets) = self.default_vpc().await?;
        self.eks
            .create_cluster()
            .name(name)
            .role_arn(role)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(subnets))
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// A managed node group of `cluster` with node role `role`, tagged `tags`. Returns its ARN.
    pub async fn nodegroup(
        &self,
        cluster: &str,
        name: &str,
        role: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let (_, subnets) = self.default_vpc().await?;
        let out = self
            .eks
            .create_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .node_role(role)
            .set_subnets(Some(subnets))
            .instance_types("t3.large")
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await?;
        out.nodegroup()
            .and_then(|g| g.nodegroup_arn())
            .map(str::to_string)
            .context("no node group ARN")
    }

    /// One resource of every AWS kind, named `<prefix><name>`, all tagged `t`; the bucket
    /// versioned and holding versions, a marker and an upload, the role furnished and in use by
    /// the instance, the target group pointing at the instance.
    #[allow(dead_code)] // the TTL and fault tiers' fixture (they include this file by path)
    pub async fn platform(&self, prefix: &str, t: &BTreeMap<String, String>) -> Result<()> {
        let n = |name: &str| format!("{prefix}{name}");
        let ami = self.ami().await?;
        let role = self.role(&n("app-role"), t).await?;
        self.furnish_role(&n("app-role"), &n("app-profile")).await?;
        let sg = self.group(&n("app"), t).await?;
        let web = self
            .instance_with(&ami, &[&sg], t, Some(&n("app-profile")))
            .await?;
        self.volume(5, t).await?;
        self.db(&n("db1"), &[], t).await?;
        self.snapshot(&n("db1"), &n("s1"), t).await?;
        self.autoscaling_group(&n("workers"), &ami, 1, t).await?;
        let lb_sg = self.group(&n("lb"), t).await?;
        let lb = self.load_balancer(&n("front"), &lb_sg, t).await?;
        let tg = self.target_group(&n("front-tg"), t).await?;
        self.listener(&lb, &tg).await?;
        self.register_target(&tg, &web).await?;
        self.bucket(&n("scratch"), t).await?;
        self.fill_versioned(&n("scratch")).await?;
        self.function(&n("api"), &role, &[], t).await?;
        self.cluster(&n("dev"), &role).await?;
        self.nodegroup(&n("dev"), &n("pool"), &role, t).await?;
        Ok(())
    }

    /// One opted-in resource of every AWS kind.
    pub async fn one_of_each_kind(&self) -> Result<Vec<Seeded>> {
        let ami = self.ami().await?;
        let sg = self.group("app", &eligible("app")).await?;
        let web = self.instance(&ami, &[&sg], &eligible("web")).await?;
        let vol = self.volume(5, &eligible("vol")).await?;
        self.db("db1", &[], &eligible("db1")).await?;
        self.snapshot("db1", "s1", &eligible("s1")).await?;
        self.autoscaling_group("workers", &ami, 1, &eligible("workers"))
            .await?;
        let lb_sg = self.group("lb", &eligible("lb")).await?;
        let lb = self
            .load_balancer("front", &lb_sg, &eligible("front"))
            .await?;
        let tg = self.target_group("front-tg", &eligible("front-tg")).await?;
        self.listener(&lb, &tg).await?;
        self.register_target(&tg, &web).await?;
        self.bucket("stoa-artifacts", &eligible("stoa-artifacts"))
            .await?;
        let role = self.role("app-role", &eligible("app-role")).await?;
        self.function("api", &role, &[], &eligible("api")).await?;
        self.cluster("dev", &role).await?;
        self.nodegroup("dev", "pool", &role, &eligible("pool"))
            .await?;
        Ok([
            ("ec2-instance", web, "web"),
            ("ebs-volume", vol, "vol"),
            ("security-group", sg, "app"),
            ("rds-instance", "db1".into(), "db1"),
            ("rds-snapshot", "s1".into(), "s1"),
            ("autoscaling-group", "workers".into(), "workers"),
            ("load-balancer", "front".into(), "front"),
            ("target-group", "front-tg".into(), "front-tg"),
            ("s3-bucket", "stoa-artifacts".into(), "stoa-artifacts"),
            ("lambda-function", "api".into(), "api"),
            ("iam-role", "app-role".into(), "app-role"),
            ("eks-nodegroup", "pool".into(), "pool"),
        ]
        .into_iter()
        .map(|(kind, name, label)| Seeded {
            kind,
            name,
            tags: eligible(label),
        })
        .collect())
    }
}

/// A resource [`Bed::one_of_each_kind`] made.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Its kind.
    pub kind: &'static str,
    /// The name it is listed under (an EC2 id, or the name it was given).
    pub name: String,
    /// The tags it was made with.
    pub tags: BTreeMap<String, String>,
}

/// One of the AMIs moto has in every region. Asked for by id: an unfiltered DescribeImages
/// returns moto's thousands of AMIs and costs seconds per call.
const MOTO_AMI: &str = "ami-12c6146b";

/// [`MOTO_AMI`], checked to exist in `ec2`'s region.
pub async fn ami_in(ec2: &aws_sdk_ec2::Client) -> Result<String> {
    let images = ec2.describe_images().image_ids(MOTO_AMI).send().await?;
    images
        .images()
        .iter()
        .find_map(|i| i.image_id())
        .map(str::to_string)
        .with_context(|| format!("moto has no {MOTO_AMI} (a new moto version?)"))
}

/// SDK config for `moto` in `region`, with static credentials, built the way the jobs build
/// theirs (`common::clients`).
async fn sdk_config(moto: &Moto, region: &str) -> Result<SdkConfig> {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"));
    let config = AwsConfig {
        endpoint_url: Some(HttpUrl::parse(&moto.endpoint()).map_err(anyhow::Error::msg)?),
        ..AwsConfig::default()
    };
    let target = AwsTarget {
        account: ACCOUNT.into(),
        region: region.into(),
        role_arn: None,
    };
    Ok(aws_sdk_config_from(loader, &config, &target).await)
}

/// An S3 client for moto: path-style, as the inventory's own.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The smallest valid zip archive: an end-of-central-directory record and nothing else.
const EMPTY_ZIP: &[u8] = &[
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn spec(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn elb_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<aws_sdk_iam::types::Tag>> {
    Ok(tags
        .iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?)
}

/// Tags of an opted-in development resource (eligibility itself is the TTL job's business):
/// nine tags, one under moto's limit of ten per ELBv2 resource (AWS allows 50).
pub fn eligible(name: &str) -> BTreeMap<String, String> {
    [
        ("Name", name),
        ("environment", "dev"),
        ("owner", "a@b.io"),
        ("project", "preview"),
        ("cost-center", "cc-1"),
        ("ttl", "7d"),
        ("created_at", "2020-01-02T03:04:05Z"),
        ("auto-teardown", "true"),
        ("data-class", "internal"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `tags` plus `key=value`.
pub fn with(
    mut tags: BTreeMap<String, String>,
    key: &str,
    value: &str,
) -> BTreeMap<String, String> {
    tags.insert(key.to_string(), value.to_string());
    tags
}

pub fn ec2_arn(kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}")
}

/// The resource of `kind` listed as `name`.
pub fn find<'a>(all: &'a [Resource], kind: &str, name: &str) -> &'a Resource {
    all.iter()
        .find(|r| r.kind == kind && r.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} not listed in {:#?}", names(all)))
}

/// (kind, name) of every resource, sorted.
pub fn names(all: &[Resource]) -> Vec<(&str, &str)> {
    let mut n: Vec<(&str, &str)> = all.iter().map(|r| (r.kind, r.name.as_str())).collect();
    n.sort_unstable();
    n
}

/// Lists every scope of `p` and fails on any listing failure.
pub async fn list(p: &Providers) -> Result<Vec<Resource>> {
    let listing = p.list().await;
    if let Some(f) = listing.failures.first() {
        bail!(
            "{} kind listings failed, first {} in {}: {}",
            listing.failures.len(),
            f.kind,
            f.scope.label(),
            f.error
        );
    }
    Ok(listing.resources)
}

/// Polls `state` until it is `Gone` (moto: on the next describe; AWS: minutes).
pub async fn wait_gone(p: &Providers, r: &Resource) -> Result<()> {
    for _ in 0..20 {
        if p.state(r).await? == State::Gone {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{} never gone: {:?}", r.id, p.state(r).await?)
}
