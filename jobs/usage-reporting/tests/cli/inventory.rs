//! Resources per tenant from the shared inventory, listed in moto: instances, buckets and
//! functions tagged per project; one tenant over its instance quota.

use aws_credential_types::Credentials;
use serde_json::Value;
use testbed::moto::Moto;

use crate::{Env, NOW, result_event, run_with, tenants, text};

async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(testbed::moto::REGION))
        .endpoint_url(moto.endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await
}

fn quota<'a>(report: &'a Value, dimension: &str) -> &'a Value {
    report["quotas"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["dimension"] == dimension))
        .unwrap_or_else(|| panic!("no quota {dimension}: {:#}", report["quotas"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_from_moto_count_against_each_tenants_quotas() {
    let env = Env::start(tenants()).await;
    let moto = Moto::start().await.expect("moto");
    let sdk = sdk(&moto).await;

    // EC2: acme 11 instances (its quota is the default 10), bravo 2, one untagged.
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let ami = ec2.describe_images().send().await.expect("images").images()[0]
        .image_id()
        .expect("ami")
        .to_string();
    for (project, count) in [(Some("acme"), 11), (Some("bravo"), 2), (None, 1)] {
        let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value("x")
                    .build(),
            );
        if let Some(p) = project {
            spec = spec.tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("project")
                    .value(p)
                    .build(),
            );
        }
        ec2.run_instances()
            .image_id(&ami)
            .min_count(count)
            .max_count(count)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .tag_specifications(spec.build())
            .send()
            .await
            .expect("run instances");
    }
    // S3: bravo 2 buckets, acme 1.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    for (bucket, project) in [
        ("bravo-a", "bravo"),
        ("bravo-b", "bravo"),
        ("acme-a", "acme"),
    ] {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket");
        s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(
                        aws_sdk_s3::types::Tag::builder()
                            .key("project")
                            .value(project)
                            .build()
                            .expect("tag"),
                    )
                    .build()
                    .expect("tagging"),
            )
            .send()
            .await
            .expect("tag bucket");
    }
    // Lambda: one function of acme's.
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = iam
        .create_role()
        .role_name("fn-role")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("role");
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    // An empty zip archive (just its end-of-central-directory record).
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend([0u8; 18]);
    lambda
        .create_function()
        .function_name("acme-resize")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role.role().map(|r| r.arn()).expect("arn"))
        .handler("main.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                .build(),
        )
        .tags("project", "acme")
        .send()
        .await
        .expect("function");

    let config = env.config(
        "inventory.yaml",
        &env.prom.url(),
        "",
        "  inventory: {aws: true}\n",
    );
    let text_config =
        std::fs::read_to_string(&config).expect("config") + "aws:\n  regions: [us-east-1]\n";
    std::fs::write(&config, text_config).expect("config");
    let mut envs: Vec<(&str, String)> = moto.env();
    envs.push(("GOV_AWS_ENDPOINT_URL", moto.endpoint()));
    let out = run_with(
        env.dir.path(),
        &[
            "--config",
            &config.display().to_string(),
            "--now",
            NOW,
            "--output",
            "json",
        ],
        &envs,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let event = result_event(&out);
    let reports = env.events("tenant-usage-report", 4).await;
    let report = |slug: &str| {
        reports
            .iter()
            .find(|r| r["tenant"]["slug"] == slug)
            .unwrap_or_else(|| panic!("{slug}"))
    };
    let acme = report("acme");
    assert_eq!(acme["resources_source"]["state"], "ok");
    let instances = quota(acme, "ec2_instances");
    assert_eq!(
        (instances["used"].as_f64(), instances["limit"].as_f64()),
        (Some(11.0), Some(10.0))
    );
    assert_eq!(instances["state"], "exceeded");
    assert_eq!(quota(acme, "s3_buckets")["used"], 1.0);
    assert_eq!(quota(acme, "lambda_functions")["used"], 1.0);
    let bravo = report("bravo");
    assert_eq!(quota(bravo, "ec2_instances")["used"], 2.0);
    assert_eq!(quota(bravo, "ec2_instances")["state"], "ok");
    assert_eq!(quota(bravo, "s3_buckets")["used"], 2.0);
    // A tenant with nothing shows 0 of its quota, not nothing.
    assert_eq!(quota(report("delta"), "ec2_instances")["used"], 0.0);
    let f = event["findings"]
        .as_array()
        .and_then(|f| {
            f.iter()
                .find(|f| f["resource"] == "tenant:acme" && f["dimension"] == "ec2_instances")
        })
        .expect("finding");
    assert_eq!(
        (f["type"].as_str(), f["severity"].as_str()),
        (Some("quota_exceeded"), Some("critical"))
    );
    let row = acme["table"]
        .as_array()
        .and_then(|t| t.iter().find(|r| r["metric"] == "ec2 instances"))
        .expect("row");
    assert_eq!(
        (
            row["value"].as_str(),
            row["quota"].as_str(),
            row["used"].as_str()
        ),
        (Some("11"), Some("10"), Some("110%"))
    );
}
