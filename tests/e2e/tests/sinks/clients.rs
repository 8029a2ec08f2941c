use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use common::clients::{AwsTarget, aws_sdk_config_from, kube_client};
use common::config::{AwsAccount, AwsConfig, HttpUrl, KubernetesConfig};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use testbed::fakekube::FakeKube;
use testbed::moto::Moto;

#[tokio::test]
async fn aws_client_reaches_the_configured_endpoint_in_each_target_region() {
    let moto = Moto::start().await.expect("moto");
    let config = AwsConfig {
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        endpoint_url: Some(HttpUrl::parse(&moto.endpoint()).expect("url")),
        accounts: vec![AwsAccount {
            id: "123456789012".into(),
            role_arn: None,
            regions: vec![],
        }],
    };
    let targets = common::clients::aws_targets(&config);
    assert_eq!(targets.len(), 2);
    for target in &targets {
        let loader = aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "static"));
        let sdk = aws_sdk_config_from(loader, &config, target).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let vpcs = ec2.describe_vpcs().send().await.expect("moto answers");
        // moto creates one default VPC per region on first use.
        assert_eq!(vpcs.vpcs().len(), 1, "{}: {vpcs:?}", target.region);
    }
}

#[tokio::test]
async fn assumed_role_credentials_are_used_for_an_account_with_a_role() {
    let moto = Moto::start().await.expect("moto");
    let config = AwsConfig {
        regions: vec!["us-east-1".into()],
        endpoint_url: Some(HttpUrl::parse(&moto.endpoint()).expect("url")),
        accounts: vec![],
    };
    let target = AwsTarget {
        account: "210987654321".into(),
        region: "us-east-1".into(),
        role_arn: Some("arn:aws:iam::210987654321:role/ttl-teardown".into()),
    };
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"));
    let sdk = aws_sdk_config_from(loader, &config, &target).await;
    // moto's STS answers AssumeRole; the identity seen afterwards is the assumed role's account.
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    ec2.describe_vpcs()
        .send()
        .await
        .expect("calls succeed with assumed-role credentials");
    let sts = aws_sdk_ec2::config::SharedCredentialsProvider::clone(
        sdk.credentials_provider().as_ref().expect("provider"),
    );
    let creds = aws_credential_types::provider::ProvideCredentials::provide_credentials(&sts)
        .await
        .expect("assumed");
    assert_ne!(
        creds.access_key_id(),
        "testing",
        "the role's temporary credentials, not the base ones"
    );
}

#[tokio::test]
async fn kube_client_from_a_kubeconfig_file_talks_to_the_fake_api_server() {
    let fake = FakeKube::start().await.expect("fake kube");
    fake.insert(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "preview-1"}}))
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = fake.write_kubeconfig(dir.path()).expect("kubeconfig");
    let client = kube_client(&KubernetesConfig {
        kubeconfig: Some(kubeconfig),
        context: None,
        cluster_name: None,
    })
    .await
    .expect("client");
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"preview-1".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_missing_kubeconfig_is_an_error_naming_the_cause() {
    let err = kube_client(&KubernetesConfig {
        kubeconfig: Some("/nonexistent/kubeconfig".into()),
        context: None,
        cluster_name: None,
    })
    .await
    .err()
    .expect("no such file");
    assert!(err.to_string().starts_with("kubernetes client:"), "{err}");
}
