//! The AWS provider against a real moto server: what it lists (kinds, ARNs, tags, cost basis,
//! dependency edges), tagging, removal and its refusals, state, pagination.
//!
//! Each test starts its own moto (under a second) and seeds it with the SDK directly.
//!
//! moto 5.2 quirks these tests rely on (checked by hand, asserted where they matter):
//! - every instance gets an untagged root volume (`/dev/sda1`, attached) and a primary network
//!   interface attached to it;
//! - DeleteSecurityGroup never fails with `DependencyViolation` (not for a group used by a
//!   running instance, nor for one another group references): the retryable mapping of that
//!   code is covered by the unit tests in `src/aws/error.rs`; here an attached volume's
//!   `VolumeInUse` covers the retryable path against a real server;
//! - a terminated instance is `terminated` on the next describe; a deleted DB instance is gone
//!   on the next describe;
//! - CreateDBInstance creates an automated snapshot too;
//! - only DescribeInstances honours `MaxResults` (below 5, too); DescribeVolumes,
//!   DescribeSecurityGroups and DescribeNetworkInterfaces answer in one page whatever it is.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{IpPermission, ResourceType, Tag, TagSpecification, UserIdGroupPair};
use common::clients::{AwsTarget, aws_sdk_config_from};
use common::config::{AwsConfig, HttpUrl};
use testbed::moto::{Moto, REGION};
use ttl_teardown::aws::{AwsProvider, IN_USE_BY_ENI, caller_account};
use ttl_teardown::inventory::{CostBasis, Resource, Scope};
use ttl_teardown::provider::{Removal, State};

/// moto's default account.
const ACCOUNT: &str = "123456789012";

/// A moto server with SDK clients for seeding.
struct Bed {
    // Kept alive for the test; dropping it stops the server.
    _moto: Moto,
    sdk: SdkConfig,
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
}

async fn bed() -> Result<Bed> {
    let moto = Moto::start().await.context("start moto")?;
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"));
    let config = AwsConfig {
        endpoint_url: Some(HttpUrl::parse(&moto.endpoint()).map_err(anyhow::Error::msg)?),
        ..AwsConfig::default()
    };
    let target = AwsTarget {
        account: ACCOUNT.into(),
        region: REGION.into(),
        role_arn: None,
    };
    let sdk = aws_sdk_config_from(loader, &config, &target).await;
    Ok(Bed {
        ec2: aws_sdk_ec2::Client::new(&sdk),
        rds: aws_sdk_rds::Client::new(&sdk),
        sdk,
        _moto: moto,
    })
}

impl Bed {
    fn provider(&self) -> AwsProvider {
        AwsProvider::new(&self.sdk, ACCOUNT, REGION)
    }

    async fn ami(&self) -> Result<String> {
        let images = self.ec2.describe_images().send().await?;
        images
            .images()
            .iter()
            .find_map(|i| i.image_id())
            .map(str::to_string)
            .context("moto has no AMI")
    }

    async fn instance(&self, ami: &str, groups: &[&str], tags: &[(&str, &str)]) -> Result<String> {
        let out = self
            .ec2
            .run_instances()
            .image_id(ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .set_security_group_ids(Some(groups.iter().map(|g| g.to_string()).collect()))
            .tag_specifications(spec(ResourceType::Instance, tags))
            .send()
            .await?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .context("no instance id")
    }

    async fn group(&self, name: &str, tags: &[(&str, &str)]) -> Result<String> {
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

    async fn volume(&self, size: i32, tags: &[(&str, &str)]) -> Result<String> {
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

    async fn db(&self, id: &str, groups: &[&str], tags: &[(&str, &str)]) -> Result<String> {
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

    async fn snapshot(&self, db: &str, id: &str, tags: &[(&str, &str)]) -> Result<String> {
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

    /// One eligible resource of each kind (an instance in a security group, a volume, a DB and
    /// its snapshot); returns the names they are listed under: instance, volume, group, DB,
    /// snapshot.
    async fn one_of_each_kind(&self) -> Result<[String; 5]> {
        let ami = self.ami().await?;
        let sg = self.group("app", &pairs(&eligible("app"))).await?;
        let web = self
            .instance(&ami, &[&sg], &pairs(&eligible("web")))
            .await?;
        let vol = self.volume(5, &pairs(&eligible("vol"))).await?;
        self.db("db1", &[], &pairs(&eligible("db1"))).await?;
        self.snapshot("db1", "s1", &pairs(&eligible("s1"))).await?;
        Ok([web, vol, sg, "db1".into(), "s1".into()])
    }

    /// Re-tags an EC2 resource behind the provider's back.
    async fn retag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        self.ec2
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await?;
        Ok(())
    }
}

fn spec(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

fn rds_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// Tags of an opted-in development resource (eligibility itself is the planner's business).
fn eligible(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Name", name.to_string()),
        ("environment", "dev".into()),
        ("owner", "a@b.io".into()),
        ("project", "preview".into()),
        ("cost-center", "cc-1".into()),
        ("ttl", "7d".into()),
        ("created_at", "2020-01-02T03:04:05Z".into()),
        ("auto-teardown", "true".into()),
        ("data-class", "internal".into()),
    ]
}

fn pairs<'a>(tags: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    tags.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn map(tags: &[(&'static str, String)]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn ec2_arn(kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}")
}

fn find<'a>(all: &'a [Resource], name: &str) -> &'a Resource {
    all.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} not listed in {:#?}", names(all)))
}

fn names(all: &[Resource]) -> Vec<(&str, &str)> {
    all.iter().map(|r| (r.kind, r.name.as_str())).collect()
}

/// Polls `state` until it is `Gone` (moto: on the next describe; AWS: minutes).
async fn wait_gone(p: &AwsProvider, r: &Resource) -> Result<()> {
    for _ in 0..20 {
        if p.state(r).await? == State::Gone {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{} never gone: {:?}", r.id, p.state(r).await?)
}

#[tokio::test]
async fn lists_every_kind_with_arns_tags_costs_and_dependency_edges() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    let app_tags = eligible("app");
    let app = bed.group("app", &pairs(&app_tags)).await?;
    let lb = bed.group("lb", &pairs(&eligible("lb"))).await?;
    // lb's rule allows traffic from app: app cannot go before lb.
    bed.ec2
        .authorize_security_group_ingress()
        .group_id(&lb)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&app).build())
                .build(),
        )
        .send()
        .await?;
    let dbsg = bed.group("db", &pairs(&eligible("db"))).await?;
    let web_tags = eligible("web");
    let web = bed.instance(&ami, &[&app], &pairs(&web_tags)).await?;
    let data_tags = eligible("data");
    let data = bed.volume(10, &pairs(&data_tags)).await?;
    bed.ec2
        .attach_volume()
        .volume_id(&data)
        .instance_id(&web)
        .device("/dev/sdf")
        .send()
        .await?;
    let db_tags = eligible("db1");
    let db_arn = bed.db("db1", &[&dbsg], &pairs(&db_tags)).await?;
    let snap_tags = eligible("s1");
    let snap_arn = bed.snapshot("db1", "s1", &pairs(&snap_tags)).await?;

    let all = bed.provider().list().await?;

    // The exact set: moto's root volume of `web` comes along; no default group, no automated
    // snapshot.
    let root = all
        .iter()
        .find(|r| r.kind == "ebs-volume" && r.name != data)
        .context("root volume")?
        .name
        .clone();
    let mut want = vec![
        ("ec2-instance", web.as_str()),
        ("ebs-volume", data.as_str()),
        ("ebs-volume", root.as_str()),
        ("security-group", app.as_str()),
        ("security-group", lb.as_str()),
        ("security-group", dbsg.as_str()),
        ("rds-instance", "db1"),
        ("rds-snapshot", "s1"),
    ];
    want.sort();
    let mut got = names(&all);
    got.sort();
    assert_eq!(got, want);

    let scope = Scope::Aws {
        account: ACCOUNT.into(),
        region: REGION.into(),
    };
    let instance = find(&all, &web);
    assert_eq!(instance.id, ec2_arn("instance", &web));
    assert_eq!(instance.kind, "ec2-instance");
    assert_eq!(instance.scope, scope);
    assert_eq!(instance.tags, map(&web_tags));
    assert_eq!(instance.state.as_deref(), Some("running"));
    assert_eq!(
        instance.cost,
        CostBasis {
            instance_type: Some("t3.micro".into()),
            ..CostBasis::default()
        }
    );
    assert!(instance.wait_for.is_empty());
    assert_eq!(instance.created_fallback, None);
    assert_eq!(instance.tags_unreadable, None);

    let volume = find(&all, &data);
    assert_eq!(volume.id, ec2_arn("volume", &data));
    assert_eq!(volume.tags, map(&data_tags));
    assert_eq!(volume.state.as_deref(), Some("in-use"));
    assert_eq!(volume.cost.size_gb, Some(10.0));
    assert_eq!(volume.wait_for, std::slice::from_ref(&instance.id));
    assert_eq!(
        find(&all, &root).wait_for,
        std::slice::from_ref(&instance.id)
    );

    let group = find(&all, &app);
    assert_eq!(group.id, ec2_arn("security-group", &app));
    assert_eq!(group.tags, map(&app_tags));
    assert_eq!(group.state.as_deref(), Some("available"));
    let mut app_waits = vec![instance.id.clone(), ec2_arn("security-group", &lb)];
    app_waits.sort();
    assert_eq!(group.wait_for, app_waits);
    assert!(find(&all, &lb).wait_for.is_empty());
    assert_eq!(find(&all, &dbsg).wait_for, std::slice::from_ref(&db_arn));

    let db = find(&all, "db1");
    assert_eq!(db.id, db_arn);
    assert_eq!(db.id, format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:db1"));
    assert_eq!(db.tags, map(&db_tags));
    assert_eq!(db.state.as_deref(), Some("available"));
    assert_eq!(
        db.cost,
        CostBasis {
            db_class: Some("db.t3.micro".into()),
            multi_az: true,
            ..CostBasis::default()
        }
    );

    let snapshot = find(&all, "s1");
    assert_eq!(snapshot.id, snap_arn);
    assert_eq!(snapshot.tags, map(&snap_tags));
    assert_eq!(snapshot.cost.size_gb, Some(20.0));
    assert_eq!(snapshot.wait_for, [db_arn]);
    assert_eq!(snapshot.tags_unreadable, None);
    Ok(())
}

#[tokio::test]
async fn a_group_used_only_by_a_foreign_network_interface_is_marked() -> Result<()> {
    let bed = bed().await?;
    let sg = bed.group("lambda", &pairs(&eligible("lambda"))).await?;
    let subnet = bed
        .ec2
        .describe_subnets()
        .send()
        .await?
        .subnets()
        .first()
        .and_then(|s| s.subnet_id())
        .map(str::to_string)
        .context("moto has a default subnet")?;
    bed.ec2
        .create_network_interface()
        .subnet_id(subnet)
        .groups(&sg)
        .send()
        .await?;
    let free = bed.group("free", &pairs(&eligible("free"))).await?;

    let all = bed.provider().list().await?;
    assert_eq!(find(&all, &sg).state.as_deref(), Some(IN_USE_BY_ENI));
    assert!(find(&all, &sg).wait_for.is_empty());
    assert_eq!(find(&all, &free).state.as_deref(), Some("available"));
    Ok(())
}

#[tokio::test]
async fn set_tags_is_visible_on_the_next_list_for_every_kind() -> Result<()> {
    let bed = bed().await?;
    let names = bed.one_of_each_kind().await?;
    let p = bed.provider();
    let before = p.list().await?;
    let stage = (
        "ttl-notified-stage".to_string(),
        "48h@2026-01-01T00:00:00Z".to_string(),
    );
    for name in &names {
        p.set_tags(find(&before, name), std::slice::from_ref(&stage))
            .await?;
    }
    let after = p.list().await?;
    for name in &names {
        let r = find(&after, name);
        assert_eq!(
            r.tags.get("ttl-notified-stage").map(String::as_str),
            Some("48h@2026-01-01T00:00:00Z"),
            "{name}"
        );
        // The other tags are untouched.
        assert_eq!(
            r.tags.get("auto-teardown").map(String::as_str),
            Some("true")
        );
    }
    Ok(())
}

#[tokio::test]
async fn get_reads_one_resource_as_list_describes_it() -> Result<()> {
    let bed = bed().await?;
    let names = bed.one_of_each_kind().await?;
    let web = &names[0];
    let p = bed.provider();
    let listed = p.list().await?;
    for name in &names {
        let want = find(&listed, name);
        let got = p
            .get(&want.id)
            .await?
            .with_context(|| format!("get {}", want.id))?;
        assert_eq!(
            (got.kind, &got.name, &got.scope, &got.tags, &got.state),
            (want.kind, &want.name, &want.scope, &want.tags, &want.state),
            "{name}"
        );
        assert_eq!(got.tags_unreadable, None, "{name}");
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
    let missing = [
        ec2_arn("instance", "i-0000000000000dead"),
        ec2_arn("volume", "vol-0000000000000dead"),
        ec2_arn("security-group", "sg-0000000000000dead"),
        format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:nope"),
        format!("arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:nope"),
        format!("arn:aws:ec2:{REGION}:999999999999:instance/{web}"),
        format!("arn:aws:ec2:eu-west-3:{ACCOUNT}:instance/{web}"),
        format!("arn:aws:s3:::{web}"),
        // Never listed, so never found: a default security group.
        ec2_arn("security-group", &default_sg),
    ];
    for arn in &missing {
        assert!(p.get(arn).await?.is_none(), "{arn}");
    }
    let r = find(&listed, web).clone();
    p.remove(&r).await?;
    wait_gone(&p, &r).await?;
    assert!(p.get(&r.id).await?.is_none(), "a terminated instance");
    Ok(())
}

#[tokio::test]
async fn instance_removal_is_pending_then_gone_and_idempotent() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &pairs(&eligible("web"))).await?;
    let p = bed.provider();
    let all = p.list().await?;
    let r = find(&all, &web);
    assert_eq!(p.state(r).await?, State::Present("running".into()));

    assert_eq!(
        p.remove(r).await?,
        Removal::Pending {
            state: "shutting-down".into()
        }
    );
    wait_gone(&p, r).await?;
    // Already terminated: nothing to do (moto would answer a second TerminateInstances with
    // `shutting-down` again; the provider does not call it).
    assert_eq!(p.remove(r).await?, Removal::Done);
    // Terminated instances are not listed.
    assert!(p.list().await?.iter().all(|x| x.name != web));
    Ok(())
}

#[tokio::test]
async fn removal_of_volumes_groups_databases_and_snapshots_is_idempotent() -> Result<()> {
    let bed = bed().await?;
    let sg = bed.group("free", &pairs(&eligible("free"))).await?;
    let vol = bed.volume(5, &pairs(&eligible("vol"))).await?;
    bed.db("db1", &[], &pairs(&eligible("db1"))).await?;
    bed.snapshot("db1", "s1", &pairs(&eligible("s1"))).await?;
    let p = bed.provider();
    let all = p.list().await?;

    for name in [vol.as_str(), sg.as_str(), "s1"] {
        let r = find(&all, name);
        assert_eq!(p.remove(r).await?, Removal::Done, "{name}");
        assert_eq!(p.state(r).await?, State::Gone, "{name}");
        assert_eq!(p.remove(r).await?, Removal::Done, "{name} twice");
    }

    let db = find(&all, "db1");
    assert_eq!(
        p.remove(db).await?,
        Removal::Pending {
            state: "deleting".into()
        }
    );
    wait_gone(&p, db).await?;
    assert_eq!(p.remove(db).await?, Removal::Done);

    let left = p.list().await?;
    assert!(left.is_empty(), "{:?}", names(&left));
    Ok(())
}

#[tokio::test]
async fn resources_still_in_use() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    let sg = bed.group("app", &pairs(&eligible("app"))).await?;
    let web = bed.instance(&ami, &[&sg], &pairs(&eligible("web"))).await?;
    let vol = bed.volume(5, &pairs(&eligible("vol"))).await?;
    bed.ec2
        .attach_volume()
        .volume_id(&vol)
        .instance_id(&web)
        .device("/dev/sdf")
        .send()
        .await?;
    let p = bed.provider();
    let all = p.list().await?;

    // An attached volume: AWS and moto answer VolumeInUse, which is retryable.
    let volume = find(&all, &vol);
    let e = p.remove(volume).await.expect_err("attached volume");
    assert!(e.retryable, "{e}");
    assert!(e.message.starts_with("VolumeInUse: "), "{e}");
    assert_eq!(e.action, "delete");
    assert_eq!(e.resource, volume.id);
    assert_eq!(p.state(volume).await?, State::Present("in-use".into()));

    // A group used by a running instance: AWS answers DependencyViolation (retryable, see the
    // unit tests); moto 5.2 deletes it. Asserted so that a moto that learns the real behaviour
    // makes this test point here.
    let group = find(&all, &sg);
    assert_eq!(group.wait_for, [find(&all, &web).id.clone()]);
    assert_eq!(p.remove(group).await?, Removal::Done);
    Ok(())
}

#[tokio::test]
async fn removal_refuses_when_the_current_tags_forbid_it() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &pairs(&eligible("web"))).await?;
    let vol = bed.volume(5, &pairs(&eligible("vol"))).await?;
    let sg = bed.group("snoozed", &pairs(&eligible("snoozed"))).await?;
    bed.db("db1", &[], &pairs(&eligible("db1"))).await?;
    let p = bed.provider();
    let all = p.list().await?;

    // Re-tagged production after the plan was made.
    bed.retag(&web, "environment", "prod").await?;
    let instance = find(&all, &web);
    let e = p.remove(instance).await.expect_err("prod instance");
    assert!(!e.retryable);
    assert!(e.message.contains("environment=prod"), "{e}");
    assert_eq!(p.state(instance).await?, State::Present("running".into()));

    // Opted out after the plan.
    bed.retag(&vol, "auto-teardown", "false").await?;
    let e = p.remove(find(&all, &vol)).await.expect_err("opted out");
    assert!(e.message.contains("auto-teardown=false"), "{e}");

    // Snoozed after the plan: any tag change but our own warning stage refuses.
    bed.retag(&sg, "ttl-extended-days", "7").await?;
    let e = p.remove(find(&all, &sg)).await.expect_err("snoozed");
    assert!(
        e.message.contains("ttl-extended-days: (absent) -> 7"),
        "{e}"
    );

    // Restricted data, on RDS.
    let db = find(&all, "db1");
    bed.rds
        .add_tags_to_resource()
        .resource_name(&db.id)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("data-class")
                .value("restricted")
                .build(),
        )
        .send()
        .await?;
    let e = p.remove(db).await.expect_err("restricted");
    assert!(e.message.contains("data-class=restricted"), "{e}");

    // Nothing was deleted.
    let after = p.list().await?;
    for name in [web.as_str(), vol.as_str(), sg.as_str(), "db1"] {
        assert_eq!(find(&after, name).state, find(&all, name).state, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn removal_refuses_foreign_scopes_and_unknown_kinds() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    let web = bed.instance(&ami, &[], &pairs(&eligible("web"))).await?;
    let p = bed.provider();
    let all = p.list().await?;
    let instance = find(&all, &web);

    let mut elsewhere = instance.clone();
    elsewhere.scope = Scope::Aws {
        account: "999999999999".into(),
        region: REGION.into(),
    };
    elsewhere.id = format!("arn:aws:ec2:{REGION}:999999999999:instance/{web}");
    let e = p.remove(&elsewhere).await.expect_err("foreign account");
    assert!(!e.retryable);

    let mut wrong_kind = instance.clone();
    wrong_kind.kind = "k8s-namespace";
    let e = p.remove(&wrong_kind).await.expect_err("unknown kind");
    assert!(e.message.contains("not an AWS kind"), "{e}");

    // An instance ARN presented as a volume.
    let mut mislabelled = instance.clone();
    mislabelled.kind = "ebs-volume";
    let e = p
        .remove(&mislabelled)
        .await
        .expect_err("ARN of another kind");
    assert!(e.message.contains("not a volume ARN"), "{e}");

    assert_eq!(p.state(instance).await?, State::Present("running".into()));
    Ok(())
}

#[tokio::test]
async fn listing_fails_when_the_credentials_act_in_another_account() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    bed.instance(&ami, &[], &pairs(&eligible("web"))).await?;
    let p = AwsProvider::new(&bed.sdk, "111111111111", REGION);
    let e = p.list().await.expect_err("wrong account");
    assert!(!e.retryable);
    assert!(e.message.contains("belongs to account 123456789012"), "{e}");
    assert_eq!(caller_account(&bed.sdk).await?, ACCOUNT);
    Ok(())
}

#[tokio::test]
async fn lists_across_pages() -> Result<()> {
    let bed = bed().await?;
    let ami = bed.ami().await?;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            bed.instance(&ami, &[], &pairs(&eligible(&format!("web-{n}"))))
                .await?,
        );
    }
    ids.sort();
    // Pages of 5: instances take three pages (moto pages DescribeInstances by reservation, one
    // per instance here). moto ignores MaxResults for volumes, groups and network interfaces
    // and answers in one page, so only the instance paginator is exercised across pages.
    let all = bed.provider().with_page_size(5).list().await?;
    let mut instances: Vec<&str> = all
        .iter()
        .filter(|r| r.kind == "ec2-instance")
        .map(|r| r.name.as_str())
        .collect();
    instances.sort();
    assert_eq!(instances, ids);
    let volumes: Vec<&Resource> = all.iter().filter(|r| r.kind == "ebs-volume").collect();
    assert_eq!(volumes.len(), 12);
    let mut waited: Vec<String> = volumes.iter().flat_map(|v| v.wait_for.clone()).collect();
    waited.sort();
    let want: Vec<String> = ids.iter().map(|i| ec2_arn("instance", i)).collect();
    assert_eq!(waited, want);
    Ok(())
}
