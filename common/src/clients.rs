//! AWS and Kubernetes clients, configured the same way for every job.
//!
//! AWS credentials come from aws-config's default chain (IRSA web identity in a cluster, the
//! environment or profile by hand); a per-account role is assumed on top when configured. The
//! endpoint can be overridden (moto in tests). Kubernetes uses the in-cluster service account or
//! `KUBECONFIG`, over rustls.

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::Error;
use crate::config::{AwsConfig, KubernetesConfig};

/// Where to act in AWS: one account in one region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AwsTarget {
    /// Account id (as configured; the ambient account when none are configured: `default`).
    pub account: String,
    /// Region name.
    pub region: String,
    /// Role assumed in that account, if any.
    pub role_arn: Option<String>,
}

/// Every (account, region) pair the config names, in a stable order.
pub fn aws_targets(config: &AwsConfig) -> Vec<AwsTarget> {
    let mut targets = Vec::new();
    if config.accounts.is_empty() {
        for region in &config.regions {
            targets.push(AwsTarget {
                account: "default".to_string(),
                region: region.clone(),
                role_arn: None,
            });
        }
    }
    for account in &config.accounts {
        let regions = if account.regions.is_empty() {
            &config.regions
        } else {
            &account.regions
        };
        for region in regions {
            targets.push(AwsTarget {
                account: account.id.clone(),
                region: region.clone(),
                role_arn: account.role_arn.clone(),
            });
        }
    }
    targets.sort();
    targets
}

/// The AWS actions [`aws_sdk_config`] itself calls: assuming an account's configured role (the
/// IAM policy documents of the jobs that take `aws.accounts[].role_arn`).
pub const IAM_ACTIONS: &[&str] = &["sts:AssumeRole"];

/// The SDK config for one target: default credential chain, the region, the endpoint override,
/// and the account's role assumed on top when one is configured.
pub async fn aws_sdk_config(config: &AwsConfig, target: &AwsTarget) -> SdkConfig {
    aws_sdk_config_from(
        aws_config::defaults(BehaviorVersion::latest()),
        config,
        target,
    )
    .await
}

/// [`aws_sdk_config`] starting from a given loader (tests pass one with static credentials).
pub async fn aws_sdk_config_from(
    loader: ConfigLoader,
    config: &AwsConfig,
    target: &AwsTarget,
) -> SdkConfig {
    let mut loader = loader.region(Region::new(target.region.clone()));
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url.as_str());
    }
    let base = loader.load().await;
    match &target.role_arn {
        None => base,
        Some(role) => {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("governance-jobs")
                .configure(&base)
                .build()
                .await;
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
    }
}

/// A Kubernetes client: the configured kubeconfig file and/or context, else in-cluster or the
/// default kubeconfig (`kube::Config::infer`).
pub async fn kube_client(config: &KubernetesConfig) -> Result<kube::Client, Error> {
    let kube_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Kube { source: e };
    let options = kube::config::KubeConfigOptions {
        context: config.context.clone(),
        ..Default::default()
    };
    let kube_config = match (&config.kubeconfig, &config.context) {
        (Some(path), _) => {
            let file =
                kube::config::Kubeconfig::read_from(path).map_err(|e| kube_err(Box::new(e)))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| kube_err(Box::new(e)))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| kube_err(Box::new(e)))?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| kube_err(Box::new(e)))?,
    };
    kube_client_from(kube_config).map_err(kube_err)
}

/// Retries of one Kubernetes API request answered 429, 503 or 504 (its `Retry-After` honoured),
/// after the first try: 0.2, 0.4, 0.8 and 1.6 s apart at most (capped at 5 s), then the error.
pub const KUBE_RETRIES: u32 = 4;

/// A kube-rs error in one line: for an API answer its code, reason and message (kube's own
/// `Display` appends the whole `Status` in debug form); anything else as kube says it.
pub fn describe_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let message = status.message.trim();
            let reason = status.reason.trim();
            match (reason.is_empty(), message.is_empty()) {
                (false, false) => format!("API answered {} ({reason}): {message}", status.code),
                (false, true) => format!("API answered {} ({reason})", status.code),
                (true, false) => format!("API answered {}: {message}", status.code),
                (true, true) => format!("API answered {}", status.code),
            }
        }
        other => other.to_string(),
    }
}

/// A client for `config` with [`KUBE_RETRIES`] bounded retries. kube's own default retries
/// the same statuses up to 15 times with delays growing to 1,000 s: against an API server that
/// answers 503, a run waited minutes on each call before it could refuse (found by the fault
/// suite, `tests/faults`).
fn kube_client_from(
    mut config: kube::Config,
) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
    config.default_retry = false;
    let policy = kube::client::retry::RetryPolicy::new(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
        KUBE_RETRIES,
        true,
    )
    .map_err(Box::new)?;
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(Box::new)?
        // Retry clones its inner service: a buffer in front of kube's boxed stack makes it so.
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(policy))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AwsAccount;

    #[test]
    fn targets_expand_accounts_by_region() {
        let config = AwsConfig {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            endpoint_url: None,
            accounts: vec![
                AwsAccount {
                    id: "111111111111".into(),
                    role_arn: Some("arn:aws:iam::111111111111:role/teardown".into()),
                    regions: vec![],
                },
                AwsAccount {
                    id: "222222222222".into(),
                    role_arn: None,
                    regions: vec!["ap-south-1".into()],
                },
            ],
        };
        let t: Vec<(String, String)> = aws_targets(&config)
            .into_iter()
            .map(|t| (t.account, t.region))
            .collect();
        assert_eq!(
            t,
            [
                ("111111111111".to_string(), "eu-west-1".to_string()),
                ("111111111111".to_string(), "us-east-1".to_string()),
                ("222222222222".to_string(), "ap-south-1".to_string()),
            ]
        );
    }
}
