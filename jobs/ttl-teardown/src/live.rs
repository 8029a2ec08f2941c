//! The live providers of a run: one [`AwsProvider`] per (account, region) and the
//! [`KubeProvider`], dispatched by each resource's scope.

use std::collections::BTreeMap;

use common::clients::{aws_sdk_config, aws_targets, kube_client};
use common::config::JobConfig;

use crate::aws::AwsProvider;
use crate::config::TtlConfig;
use crate::execute::Actuator;
use crate::inventory::{Resource, Scope};
use crate::kube::KubeProvider;
use crate::provider::{ProviderError, Removal, State};

/// Every provider the config names.
pub struct Live {
    aws: BTreeMap<(String, String), AwsProvider>,
    kube: Option<KubeProvider>,
}

impl Live {
    /// Builds the providers; an AWS target without an explicit account is resolved to the
    /// ambient account (STS GetCallerIdentity).
    pub async fn connect(config: &JobConfig<TtlConfig>) -> anyhow::Result<Live> {
        let mut aws = BTreeMap::new();
        if config.job.sources.aws {
            let targets = aws_targets(&config.aws);
            anyhow::ensure!(
                !targets.is_empty(),
                "job.sources.aws is true but aws.regions is empty"
            );
            for target in targets {
                let sdk = aws_sdk_config(&config.aws, &target).await;
                let account = if target.account == "default" {
                    crate::aws::caller_account(&sdk).await?
                } else {
                    target.account.clone()
                };
                aws.insert(
                    (account.clone(), target.region.clone()),
                    AwsProvider::new(&sdk, &account, &target.region)
                        .with_tag_policy(&config.job.policy),
                );
            }
        }
        let kube_client = match &config.job.sources.kubernetes {
            Some(_) => Some(kube_client(&config.kubernetes).await?),
            None => None,
        };
        let cluster = config
            .kubernetes
            .cluster_name
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let kube = match (&config.job.sources.kubernetes, &kube_client) {
            (Some(source), Some(client)) => Some(
                KubeProvider::new(client.clone(), &cluster, source).with_policy(&config.job.policy),
            ),
            _ => None,
        };
        Ok(Live { aws, kube })
    }

    /// Wraps providers built elsewhere (tests and tools that make their own SDK clients).
    pub fn from_providers(aws: Vec<AwsProvider>, kube: Option<KubeProvider>) -> Live {
        Live {
            aws: aws
                .into_iter()
                .map(|p| ((p.account().to_string(), p.region().to_string()), p))
                .collect(),
            kube,
        }
    }

    /// The current state of one resource, by id, or `None` when no provider lists it.
    ///
    /// An ARN (`arn:<partition>:<service>:<region>:<account>:…`) goes to the AWS provider of that
    /// account and region; `k8s:…` to the Kubernetes provider. An id no configured provider is
    /// responsible for (another account, no Kubernetes source, anything else) is `None`, like a
    /// resource that does not exist. AWS reads the one resource ([`AwsProvider::get`]: a
    /// describe call); Kubernetes lists the selected objects and finds it ([`KubeProvider::get`]).
    pub async fn get(&self, id: &str) -> Result<Option<Resource>, ProviderError> {
        if id.starts_with("k8s:") {
            return match &self.kube {
                Some(k) => k.get(id).await,
                None => Ok(None),
            };
        }
        let parts: Vec<&str> = id.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _partition, _service, region, account, _rest] => {
                match self
                    .aws
                    .get(&((*account).to_string(), (*region).to_string()))
                {
                    Some(p) => p.get(id).await,
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// Lists every scope; a scope that fails is reported and the others still count.
    pub async fn list(&self) -> (Vec<Resource>, Vec<String>) {
        // Every (account, region) and the cluster are scanned concurrently; each AWS provider
        // keeps its own rate limit, so concurrency never exceeds the per-region budget. The
        // results keep the configured order, so plans are stable run to run.
        let aws = futures::future::join_all(self.aws.values().map(AwsProvider::list));
        let kube = async {
            match &self.kube {
                Some(k) => Some(k.list().await),
                None => None,
            }
        };
        let (aws, kube) = tokio::join!(aws, kube);
        let mut resources = Vec::new();
        let mut errors = Vec::new();
        for result in aws.into_iter().chain(kube) {
            match result {
                Ok(r) => resources.extend(r),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (resources, errors)
    }

    fn aws_for(&self, r: &Resource) -> Result<&AwsProvider, ProviderError> {
        let no_provider = || ProviderError {
            action: "route".into(),
            resource: r.id.clone(),
            message: "no provider for this resource's scope".into(),
            retryable: false,
        };
        match &r.scope {
            Scope::Aws { account, region } => self
                .aws
                .get(&(account.clone(), region.clone()))
                .ok_or_else(no_provider),
            Scope::Kubernetes { .. } => Err(no_provider()),
        }
    }

    fn kube_for(&self, r: &Resource) -> Result<&KubeProvider, ProviderError> {
        self.kube.as_ref().ok_or_else(|| ProviderError {
            action: "route".into(),
            resource: r.id.clone(),
            message: "no kubernetes provider configured".into(),
            retryable: false,
        })
    }
}

impl Actuator for Live {
    async fn set_tags(&self, r: &Resource, tags: &[(String, String)]) -> Result<(), ProviderError> {
        match r.scope {
            Scope::Aws { .. } => self.aws_for(r)?.set_tags(r, tags).await,
            Scope::Kubernetes { .. } => self.kube_for(r)?.set_tags(r, tags).await,
        }
    }

    async fn remove(&self, r: &Resource) -> Result<Removal, ProviderError> {
        match r.scope {
            Scope::Aws { .. } => self.aws_for(r)?.remove(r).await,
            Scope::Kubernetes { .. } => self.kube_for(r)?.remove(r).await,
        }
    }

    async fn state(&self, r: &Resource) -> Result<State, ProviderError> {
        match r.scope {
            Scope::Aws { .. } => self.aws_for(r)?.state(r).await,
            Scope::Kubernetes { .. } => self.kube_for(r)?.state(r).await,
        }
    }
}
