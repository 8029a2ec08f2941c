//! The job's own `job:` config section, its platform defaults and its cross-field validation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use common::config::{Email, HttpUrl, HumanDuration};
use serde::{Deserialize, Deserializer};

use crate::value::Rules;

/// The kinds of secret the platform rotates, each with its own policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretType {
    /// An API key (30 days).
    ApiKey,
    /// An OAuth client secret (90 days).
    OauthClientSecret,
    /// A database password (90 days).
    DatabasePassword,
    /// A service account's credential (180 days).
    ServiceAccount,
    /// An encryption key (365 days, never rotated by the job: manual).
    EncryptionKey,
}

impl SecretType {
    /// Every type, in the policy table's order.
    pub const ALL: [SecretType; 5] = [
        SecretType::ApiKey,
        SecretType::OauthClientSecret,
        SecretType::DatabasePassword,
        SecretType::ServiceAccount,
        SecretType::EncryptionKey,
    ];

    /// The name used in config, findings and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::ApiKey => "api-key",
            SecretType::OauthClientSecret => "oauth-client-secret",
            SecretType::DatabasePassword => "database-password",
            SecretType::ServiceAccount => "service-account",
            SecretType::EncryptionKey => "encryption-key",
        }
    }

    /// Whether the job may ever write a secret of this type. A manual type gets notices and an
    /// "action required" finding, never a write, whatever the config says.
    pub fn may_be_automated(self) -> bool {
        self != SecretType::EncryptionKey
    }

    /// The platform's default policy.
    pub fn default_policy(self) -> Policy {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        let (period, auto, notice) = match self {
            SecretType::ApiKey => (30, true, 7),
            SecretType::OauthClientSecret => (90, true, 14),
            SecretType::DatabasePassword => (90, true, 14),
            SecretType::ServiceAccount => (180, true, 30),
            SecretType::EncryptionKey => (365, false, 60),
        };
        Policy {
            period: days(period),
            auto,
            notice_before: days(notice),
        }
    }
}

impl fmt::Display for SecretType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SecretType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SecretType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown secret type {s:?} (known: {})",
                    SecretType::ALL.map(SecretType::as_str).join(", ")
                )
            })
    }
}

/// How often a type is rotated, whether automatically, and how early its owner hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Age at which a secret is due.
    pub period: Duration,
    /// Whether the job rotates it (false: notices and findings only).
    pub auto: bool,
    /// How long before the due date the owner gets a notice.
    pub notice_before: Duration,
}

/// Overrides of a type's default policy; unset fields keep the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    /// Age at which a secret is due, e.g. `30d`.
    #[serde(default)]
    pub period: Option<HumanDuration>,
    /// Whether the job rotates it; `true` is refused for manual types.
    #[serde(default)]
    pub auto: Option<bool>,
    /// How long before the due date the owner gets a notice.
    #[serde(default)]
    pub notice_before: Option<HumanDuration>,
}

/// A KV v2 location: `mount/path`, the first segment being the mount (or `{mount, path}` for
/// mounts whose name has a slash).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VaultPath {
    /// The KV v2 mount, e.g. `secret`.
    pub mount: String,
    /// The path inside the mount, e.g. `apps/payments/api-key` (a prefix for discovery).
    pub path: String,
}

impl VaultPath {
    /// Splits `mount/path`.
    pub fn parse(s: &str) -> Result<VaultPath, String> {
        let s = s.trim_matches('/');
        match s.split_once('/') {
            Some((mount, path)) if !mount.is_empty() && !path.is_empty() => Ok(VaultPath {
                mount: mount.to_string(),
                path: path.to_string(),
            }),
            _ => Err(format!(
                "expected a KV v2 location such as secret/apps/name, got {s:?}"
            )),
        }
    }

    /// `vault:<mount>/<path>`, the finding's resource.
    pub fn resource(&self) -> String {
        format!("vault:{self}")
    }
}

impl fmt::Display for VaultPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mount, self.path)
    }
}

impl<'de> Deserialize<'de> for VaultPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Parts {
            mount: String,
            path: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Parts(Parts),
        }
        match Form::deserialize(d)? {
            Form::Text(s) => VaultPath::parse(&s).map_err(serde::de::Error::custom),
            Form::Parts(p) if !p.mount.is_empty() && !p.path.is_empty() => Ok(VaultPath {
                mount: p.mount.trim_matches('/').to_string(),
                path: p.path.trim_matches('/').to_string(),
            }),
            Form::Parts(_) => Err(serde::de::Error::custom("mount and path must not be empty")),
        }
    }
}

/// The system that owns the credential: where a new value is set and tested.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetRef {
    /// A PostgreSQL role's password on a server of `job.targets.postgres`: `role` for one user
    /// (old password dead at once: disruptive), or `roles: [app, app_clone]` to alternate.
    Postgres {
        /// Name of the server in `job.targets.postgres`.
        server: String,
        /// The one role whose password changes.
        #[serde(default)]
        role: Option<String>,
        /// Two roles used in turn: the idle one gets the new password.
        #[serde(default)]
        roles: Option<Vec<String>>,
    },
    /// An RDS instance's master password (`ModifyDBInstance`).
    Rds {
        /// The DB instance identifier.
        instance: String,
        /// Its region (default: the first of `aws.regions`).
        #[serde(default)]
        region: Option<String>,
        /// Its account, one of `aws.accounts` (default: the ambient credentials).
        #[serde(default)]
        account: Option<String>,
    },
    /// A Keycloak client's secret.
    Keycloak {
        /// Name of the server in `job.targets.keycloak`.
        server: String,
        /// The client's `clientId`.
        client_id: String,
    },
    /// A key of a principal at an API-key issuer (two active keys).
    ApiKeyIssuer {
        /// Name of the issuer in `job.targets.api_key_issuers`.
        server: String,
        /// Whose key it is.
        principal: String,
    },
}

impl TargetRef {
    /// `postgres`, `rds`, `keycloak` or `api-key-issuer`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetRef::Postgres { .. } => "postgres",
            TargetRef::Rds { .. } => "rds",
            TargetRef::Keycloak { .. } => "keycloak",
            TargetRef::ApiKeyIssuer { .. } => "api-key-issuer",
        }
    }

    /// The Vault data field holding the secret value by default.
    pub fn default_field(&self) -> &'static str {
        match self {
            TargetRef::Postgres { .. } | TargetRef::Rds { .. } => "password",
            TargetRef::Keycloak { .. } => "client_secret",
            TargetRef::ApiKeyIssuer { .. } => "api_key",
        }
    }

    /// The rules a generated value must follow; `None` when the target generates it itself.
    pub fn rules(&self) -> Option<Rules> {
        match self {
            TargetRef::Postgres { .. } => Some(Rules::POSTGRES),
            TargetRef::Rds { .. } => Some(Rules::RDS),
            TargetRef::Keycloak { .. } => None,
            TargetRef::ApiKeyIssuer { .. } => Some(Rules::API_KEY),
        }
    }

    /// Whether the old credential stops working the moment the new one is set.
    pub fn disruptive(&self) -> bool {
        matches!(
            self,
            TargetRef::Postgres { roles: None, .. } | TargetRef::Rds { .. }
        )
    }
}

/// A Kubernetes Secret that carries the value to consumers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSecretRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The ExternalSecret that owns it, if that is not visible from its ownerReferences: the
    /// Secret is then never written; the ExternalSecret is made to sync.
    #[serde(default)]
    pub external_secret: Option<String>,
}

/// The workload kinds whose pods are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    /// Every kind, in the order they are listed.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
}

/// A workload named in config as a consumer (besides those found from pod templates).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerRef {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// One managed secret, declared in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDecl {
    /// A name for findings and metric labels (unique).
    pub name: String,
    /// Its type, which picks its policy.
    #[serde(rename = "type")]
    pub kind: SecretType,
    /// Who gets notices and failure alerts.
    pub owner: Email,
    /// The KV v2 path that is the source of truth.
    pub vault: VaultPath,
    /// The data field holding the value (default by target: `password`, `client_secret`,
    /// `api_key`; `value` without a target).
    #[serde(default)]
    pub field: Option<String>,
    /// Length of a generated value (default 32, or the target's maximum if lower).
    #[serde(default)]
    pub length: Option<usize>,
    /// The system that owns the credential; required for automatically rotated types.
    #[serde(default)]
    pub target: Option<TargetRef>,
    /// Kubernetes Secrets carrying the value (every Vault data field becomes a data key).
    #[serde(default)]
    pub kubernetes: Vec<KubeSecretRef>,
    /// Workloads to restart besides those whose pod templates reference the Secrets.
    #[serde(default)]
    pub consumers: Vec<ConsumerRef>,
}

impl SecretDecl {
    /// The data field holding the value.
    pub fn value_field(&self) -> String {
        self.field.clone().unwrap_or_else(|| {
            self.target
                .as_ref()
                .map_or("value", TargetRef::default_field)
                .to_string()
        })
    }
}

/// Where to find secrets declared in Vault itself (their KV metadata names their type, owner
/// and target; see README).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discover {
    /// A KV v2 prefix, e.g. `secret/managed`: every secret under it whose `custom_metadata` has
    /// a `type` is managed.
    pub vault: VaultPath,
}

/// Vault, the source of truth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// `https://vault.example:8200`.
    pub address: HttpUrl,
    /// A file holding the token (a Vault Agent sink or a mounted Secret).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The environment variable holding the token when there is no file (default `VAULT_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Extra PEM roots for Vault's HTTPS certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each request.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Where pending values live, under each secret's mount: `<mount>/<prefix>/<path>/<id>`.
    #[serde(default = "default_pending_prefix")]
    pub pending_prefix: String,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_pending_prefix() -> String {
    "_rotation".to_string()
}

/// A credential read from a file or an environment variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSource {
    /// A file holding it (trailing newline ignored); relative to the config file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
}

/// A PostgreSQL server whose roles' passwords are rotated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresServer {
    /// Host name or address.
    pub host: String,
    /// Port (default 5432).
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// The database logins are tested against (default `postgres`).
    #[serde(default = "default_pg_database")]
    pub database: String,
    /// A role allowed to `ALTER ROLE … PASSWORD` (CREATEROLE).
    pub admin_user: String,
    /// Its password.
    pub admin_password: CredentialSource,
    /// Connect timeout.
    #[serde(default = "default_timeout")]
    pub connect_timeout: HumanDuration,
}

fn default_pg_port() -> u16 {
    5432
}

fn default_pg_database() -> String {
    "postgres".to_string()
}

/// A Keycloak realm whose clients' secrets are rotated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakServer {
    /// Base URL, e.g. `https://sso.example` (no `/auth` unless the server has it).
    pub url: HttpUrl,
    /// The realm of the rotated clients.
    pub realm: String,
    /// The realm of the admin client (default `master`).
    #[serde(default = "default_admin_realm")]
    pub admin_realm: String,
    /// The admin client's `clientId` (a service account with manage-clients).
    pub admin_client_id: String,
    /// Its secret.
    pub admin_secret: CredentialSource,
    /// Timeout of each request.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_admin_realm() -> String {
    "master".to_string()
}

/// An HTTP API-key issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerServer {
    /// Base URL.
    pub url: HttpUrl,
    /// The admin bearer token.
    pub admin_token: CredentialSource,
    /// Timeout of each request.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

/// The servers secrets' targets refer to by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// PostgreSQL servers.
    #[serde(default)]
    pub postgres: BTreeMap<String, PostgresServer>,
    /// Keycloak realms.
    #[serde(default)]
    pub keycloak: BTreeMap<String, KeycloakServer>,
    /// API-key issuers.
    #[serde(default)]
    pub api_key_issuers: BTreeMap<String, IssuerServer>,
}

/// Blast-radius caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// Rotations started or resumed in one run (default 10); the rest wait for the next run.
    pub max_rotations_per_run: usize,
    /// Consumers restarted at once; the next wave starts when this one is verified (default 5).
    pub max_restarts_per_wave: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_rotations_per_run: 10,
            max_restarts_per_wave: 5,
        }
    }
}

/// How long restarts and syncs may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    /// One wave's rollouts must be verified within this (default 10m), or the rotation is
    /// rolled back.
    pub timeout: HumanDuration,
    /// How often rollout status is read (default 2s).
    pub poll_interval: HumanDuration,
    /// How long an ExternalSecret may take to sync its Secret after `force-sync` (default 2m).
    pub sync_timeout: HumanDuration,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            timeout: HumanDuration(Duration::from_secs(600)),
            poll_interval: HumanDuration(Duration::from_secs(2)),
            sync_timeout: HumanDuration(Duration::from_secs(120)),
        }
    }
}

/// The run lock of `--execute` runs (a Kubernetes Lease).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockConfig {
    /// Namespace of the Lease (default `governance-jobs`).
    pub namespace: String,
    /// Name of the Lease (default `secret-rotation`).
    pub name: String,
    /// How long a claim lasts without renewal (default 30m).
    pub duration: HumanDuration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            namespace: "governance-jobs".to_string(),
            name: "secret-rotation".to_string(),
            duration: HumanDuration(Duration::from_secs(30 * 60)),
        }
    }
}

/// The `job:` section of `secret-rotation`'s config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// Vault, the source of truth (not needed with `--offline`).
    #[serde(default)]
    pub vault: Option<VaultConfig>,
    /// Overrides of the platform's policies, per type.
    #[serde(default)]
    pub policies: BTreeMap<SecretType, PolicyOverride>,
    /// Secrets declared here.
    #[serde(default)]
    pub secrets: Vec<SecretDecl>,
    /// Prefixes under which secrets declare themselves in Vault metadata.
    #[serde(default)]
    pub discover: Vec<Discover>,
    /// The servers targets refer to.
    #[serde(default)]
    pub targets: Targets,
    /// Blast-radius caps.
    #[serde(default)]
    pub caps: Caps,
    /// Restart verification.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// How long the old credential keeps working after a verified rotation (default 7d);
    /// retired by the first run after that.
    #[serde(default = "default_grace")]
    pub grace_period: HumanDuration,
    /// How long past its due date a secret becomes overdue (critical; default 7d).
    #[serde(default = "default_overdue")]
    pub overdue_after: HumanDuration,
    /// The forced run (`--forced`) also rotates what would become due within this (default 31d:
    /// until the next monthly forced run).
    #[serde(default = "default_horizon")]
    pub forced_horizon: HumanDuration,
    /// The run lock.
    #[serde(default)]
    pub lock: LockConfig,
}

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

fn default_overdue() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

fn default_horizon() -> HumanDuration {
    HumanDuration(Duration::from_secs(31 * 86_400))
}

/// Each type's effective policy: the defaults with the config's overrides.
pub type Policies = BTreeMap<SecretType, Policy>;

impl RotationConfig {
    /// The effective policy of every type.
    pub fn policies(&self) -> Policies {
        SecretType::ALL
            .into_iter()
            .map(|t| {
                let mut p = t.default_policy();
                if let Some(o) = self.policies.get(&t) {
                    if let Some(period) = o.period {
                        p.period = period.0;
                    }
                    if let Some(auto) = o.auto {
                        // A manual type stays manual: validate() refuses the override, and
                        // nothing downstream can be talked into writing one.
                        p.auto = auto && t.may_be_automated();
                    }
                    if let Some(n) = o.notice_before {
                        p.notice_before = n.0;
                    }
                }
                (t, p)
            })
            .collect()
    }

    /// Cross-field problems as `(field path, message)`; empty when valid.
    pub fn validate(&self, aws_regions: &[String]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut push = |field: String, message: String| problems.push((field, message));
        for (t, o) in &self.policies {
            let base = format!("job.policies.{t}");
            if o.auto == Some(true) && !t.may_be_automated() {
                push(
                    format!("{base}.auto"),
                    format!("{t} is rotated by hand only: auto: true is not allowed"),
                );
            }
            if o.period.is_some_and(|p| p.0.is_zero()) {
                push(format!("{base}.period"), "must be longer than 0s".into());
            }
        }
        for (t, p) in self.policies() {
            if p.notice_before >= p.period {
                push(
                    format!("job.policies.{t}.notice_before"),
                    format!(
                        "must be shorter than the period ({} >= {})",
                        HumanDuration(p.notice_before),
                        HumanDuration(p.period)
                    ),
                );
            }
        }
        if self.vault.is_none() && (!self.secrets.is_empty() || !self.discover.is_empty()) {
            push(
                "job.vault".into(),
                "required: managed secrets live in Vault".into(),
            );
        }
        if let Some(v) = &self.vault {
            if v.token_file.is_some() && v.token_env.is_some() {
                push(
                    "job.vault".into(),
                    "set token_file or token_env, not both".into(),
                );
            }
            if v.pending_prefix.trim_matches('/').is_empty() || v.pending_prefix.contains("..") {
                push(
                    "job.vault.pending_prefix".into(),
                    format!(
                        "expected a path such as _rotation, got {:?}",
                        v.pending_prefix
                    ),
                );
            }
        }
        let pending = self
            .vault
            .as_ref()
            .map(|v| v.pending_prefix.trim_matches('/').to_string());
        let policies = self.policies();
        let mut names = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for (i, s) in self.secrets.iter().enumerate() {
            let base = format!("job.secrets[{i}]");
            if s.name.trim().is_empty() {
                push(format!("{base}.name"), "must not be empty".into());
            } else if !names.insert(s.name.as_str()) {
                push(
                    format!("{base}.name"),
                    format!("{:?} is declared twice", s.name),
                );
            }
            if !paths.insert(&s.vault) {
                push(
                    format!("{base}.vault"),
                    format!("{} is declared twice", s.vault),
                );
            }
            if let Some(prefix) = &pending
                && (s.vault.path == *prefix || s.vault.path.starts_with(&format!("{prefix}/")))
            {
                push(
                    format!("{base}.vault"),
                    format!("{} is under the pending prefix {prefix}", s.vault),
                );
            }
            if s.field.as_deref().is_some_and(|f| f.trim().is_empty()) {
                push(format!("{base}.field"), "must not be empty".into());
            }
            let policy = policies[&s.kind];
            if let Some(problem) = check_target(s, policy.auto, &self.targets, aws_regions) {
                push(format!("{base}.{}", problem.0), problem.1);
            }
        }
        for (i, d) in self.discover.iter().enumerate() {
            if let Some(prefix) = &pending
                && (d.vault.path == *prefix || d.vault.path.starts_with(&format!("{prefix}/")))
            {
                push(
                    format!("job.discover[{i}].vault"),
                    format!("{} is under the pending prefix {prefix}", d.vault),
                );
            }
        }
        if self.caps.max_rotations_per_run == 0 {
            push(
                "job.caps.max_rotations_per_run".into(),
                "must be at least 1".into(),
            );
        }
        if self.caps.max_restarts_per_wave == 0 {
            push(
                "job.caps.max_restarts_per_wave".into(),
                "must be at least 1".into(),
            );
        }
        for (field, d) in [
            ("job.rollout.timeout", self.rollout.timeout),
            ("job.rollout.poll_interval", self.rollout.poll_interval),
            ("job.rollout.sync_timeout", self.rollout.sync_timeout),
        ] {
            if d.0.is_zero() {
                push(field.into(), "must be longer than 0s".into());
            }
        }
        for (name, s) in &self.targets.postgres {
            check_credential(
                &mut push,
                &format!("job.targets.postgres.{name}.admin_password"),
                &s.admin_password,
            );
        }
        for (name, s) in &self.targets.keycloak {
            check_credential(
                &mut push,
                &format!("job.targets.keycloak.{name}.admin_secret"),
                &s.admin_secret,
            );
        }
        for (name, s) in &self.targets.api_key_issuers {
            check_credential(
                &mut push,
                &format!("job.targets.api_key_issuers.{name}.admin_token"),
                &s.admin_token,
            );
        }
        problems
    }
}

fn check_credential(push: &mut impl FnMut(String, String), field: &str, c: &CredentialSource) {
    match (&c.file, &c.env) {
        (Some(_), Some(_)) => push(field.into(), "set file or env, not both".into()),
        (None, None) => push(field.into(), "set file or env".into()),
        _ => {}
    }
}

/// What is wrong with a secret's target, as `(field below the secret, message)`.
pub fn check_target(
    s: &SecretDecl,
    auto: bool,
    targets: &Targets,
    aws_regions: &[String],
) -> Option<(String, String)> {
    let Some(target) = &s.target else {
        return auto.then(|| {
            (
                "target".to_string(),
                format!(
                    "required: {} secrets are rotated automatically (or set the type's policy to auto: false)",
                    s.kind
                ),
            )
        });
    };
    let missing = |section: &str, server: &str| {
        Some((
            "target.server".to_string(),
            format!("no server {server:?} in job.targets.{section}"),
        ))
    };
    match target {
        TargetRef::Postgres {
            server,
            role,
            roles,
        } => {
            if !targets.postgres.contains_key(server) {
                return missing("postgres", server);
            }
            match (role, roles) {
                (Some(_), Some(_)) | (None, None) => {
                    return Some((
                        "target".into(),
                        "set role (one user) or roles (two alternating users), not both".into(),
                    ));
                }
                (None, Some(r)) if r.len() != 2 || r[0] == r[1] => {
                    return Some((
                        "target.roles".into(),
                        format!("expected two different roles, got {r:?}"),
                    ));
                }
                _ => {}
            }
        }
        TargetRef::Rds { region, .. } => {
            if region.is_none() && aws_regions.is_empty() {
                return Some((
                    "target.region".into(),
                    "required when aws.regions is empty".into(),
                ));
            }
        }
        TargetRef::Keycloak { server, .. } => {
            if !targets.keycloak.contains_key(server) {
                return missing("keycloak", server);
            }
        }
        TargetRef::ApiKeyIssuer { server, .. } => {
            if !targets.api_key_issuers.contains_key(server) {
                return missing("api_key_issuers", server);
            }
        }
    }
    match (s.length, target.rules()) {
        (Some(_), None) => Some((
            "length".into(),
            format!(
                "{} generates its secrets itself: length does not apply",
                target.kind()
            ),
        )),
        (Some(n), Some(rules)) if n < rules.min_len || n > rules.max_len => Some((
            "length".into(),
            format!(
                "{} allows {}..={} characters, got {n}",
                target.kind(),
                rules.min_len,
                rules.max_len
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> RotationConfig {
        common::config::parse_str(yaml, "t.yaml").expect("parses")
    }

    #[test]
    fn defaults_are_the_platform_table() {
        let c = parse("{}");
        let p = c.policies();
        let days = |t: SecretType| {
            (
                p[&t].period.as_secs() / 86_400,
                p[&t].auto,
                p[&t].notice_before.as_secs() / 86_400,
            )
        };
        assert_eq!(days(SecretType::ApiKey), (30, true, 7));
        assert_eq!(days(SecretType::OauthClientSecret), (90, true, 14));
        assert_eq!(days(SecretType::DatabasePassword), (90, true, 14));
        assert_eq!(days(SecretType::ServiceAccount), (180, true, 30));
        assert_eq!(days(SecretType::EncryptionKey), (365, false, 60));
        assert_eq!(c.caps.max_rotations_per_run, 10);
        assert_eq!(c.grace_period.0.as_secs(), 7 * 86_400);
        assert!(c.validate(&[]).is_empty());
    }

    #[test]
    fn a_manual_type_cannot_be_made_automatic() {
        let c = parse("policies:\n  encryption-key: {auto: true}\n");
        let fields: Vec<String> = c.validate(&[]).into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["job.policies.encryption-key.auto"]);
        assert!(
            !c.policies()[&SecretType::EncryptionKey].auto,
            "even unvalidated, the effective policy stays manual"
        );
    }

    #[test]
    fn targets_are_checked_against_servers_and_rules() {
        let c = parse(
            "vault: {address: http://v:8200}\n\
             targets:\n  postgres:\n    db: {host: h, admin_user: a, admin_password: {env: P}}\n\
             secrets:\n\
             \x20 - {name: a, type: database-password, owner: a@b.io, vault: secret/a}\n\
             \x20 - {name: b, type: database-password, owner: a@b.io, vault: secret/b,\n\
             \x20    target: {kind: postgres, server: nope, role: app}}\n\
             \x20 - {name: c, type: database-password, owner: a@b.io, vault: secret/c,\n\
             \x20    target: {kind: postgres, server: db, roles: [app, app]}}\n\
             \x20 - {name: d, type: database-password, owner: a@b.io, vault: secret/d, length: 64,\n\
             \x20    target: {kind: rds, instance: x, region: us-east-1}}\n\
             \x20 - {name: e, type: encryption-key, owner: a@b.io, vault: secret/e}\n\
             \x20 - {name: e, type: api-key, owner: a@b.io, vault: secret/_rotation/x,\n\
             \x20    target: {kind: postgres, server: db, role: app}}\n",
        );
        let fields: Vec<String> = c.validate(&[]).into_iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            [
                "job.secrets[0].target",
                "job.secrets[1].target.server",
                "job.secrets[2].target.roles",
                "job.secrets[3].length",
                "job.secrets[5].name",
                "job.secrets[5].vault",
            ]
        );
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/secret-rotation.yaml");
        let c: common::config::JobConfig<RotationConfig> =
            common::config::load_job_config(&path).expect("examples/secret-rotation.yaml");
        assert!(
            c.job.validate(&c.aws.regions).is_empty(),
            "{:?}",
            c.job.validate(&c.aws.regions)
        );
        assert_eq!(c.job.secrets.len(), 5);
        let kinds: Vec<&str> = c
            .job
            .secrets
            .iter()
            .filter_map(|s| s.target.as_ref().map(TargetRef::kind))
            .collect();
        assert_eq!(kinds, ["api-key-issuer", "postgres", "keycloak", "rds"]);
        assert!(!c.job.policies()[&SecretType::EncryptionKey].auto);
        assert_eq!(c.job.discover.len(), 1);
    }

    #[test]
    fn vault_paths_split_mount_and_path() {
        let p = VaultPath::parse("secret/apps/pay/key").expect("valid");
        assert_eq!(
            (p.mount.as_str(), p.path.as_str()),
            ("secret", "apps/pay/key")
        );
        assert_eq!(p.resource(), "vault:secret/apps/pay/key");
        assert!(VaultPath::parse("secret").is_err());
        let c = parse("discover:\n  - vault: {mount: kv/team, path: managed}\n");
        assert_eq!(c.discover[0].vault.mount, "kv/team");
    }
}
