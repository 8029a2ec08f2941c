//! The managed secrets of a run: declared in config, discovered from Vault metadata under a
//! prefix, or read from an offline file; each with what Vault says about it.
//!
//! A discovered secret declares itself in its KV `custom_metadata` (values are strings; the
//! structured ones are JSON): `type` (required), `owner` (required), `name`, `field`, `length`,
//! `target` (`{"kind": "keycloak", "server": "sso", "client_id": "orders"}`), `kubernetes`
//! (`[{"namespace": "shop", "name": "orders-oauth"}]`), `consumers`
//! (`[{"kind": "Deployment", "namespace": "shop", "name": "orders"}]`). A declaration that does
//! not parse is an error of that secret, never of the run.

use std::collections::BTreeMap;
use std::path::Path;

use common::config::Email;
use futures::StreamExt as _;
use jiff::Timestamp;
use serde::Deserialize;

use crate::config::{
    ConsumerRef, KubeSecretRef, RotationConfig, SecretDecl, SecretType, TargetRef, VaultPath,
    check_target,
};
use crate::vault::{Metadata, Vault};

/// One managed secret and its Vault state.
#[derive(Debug, Clone)]
pub struct Item {
    /// What it is.
    pub decl: SecretDecl,
    /// Where it was declared.
    pub origin: Origin,
    /// Its KV metadata (`None` offline, or when it could not be read).
    pub meta: Option<Metadata>,
    /// When it was last rotated (or created), if known.
    pub rotated_at: Option<Timestamp>,
    /// Why it cannot be handled, if it cannot.
    pub problem: Option<String>,
}

/// Where a secret was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// In `job.secrets`.
    Config,
    /// In Vault metadata under a `job.discover` prefix.
    Discovered,
    /// In the `--offline` file.
    Offline,
}

impl Origin {
    /// The name in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Discovered => "vault-metadata",
            Origin::Offline => "offline",
        }
    }
}

/// How many metadata reads run at once.
const CONCURRENCY: usize = 16;

fn rotated_at(meta: &Metadata) -> Option<Timestamp> {
    crate::journal::Journal::from_metadata(&meta.custom)
        .last_rotated
        .or_else(|| meta.current_created())
}

async fn with_metadata(vault: &Vault, decl: SecretDecl, origin: Origin) -> Item {
    match vault.metadata(&decl.vault).await {
        Ok(Some(meta)) => Item {
            rotated_at: rotated_at(&meta),
            decl,
            origin,
            meta: Some(meta),
            problem: None,
        },
        Ok(None) => Item {
            problem: Some(format!("{} does not exist in Vault", decl.vault)),
            decl,
            origin,
            meta: None,
            rotated_at: None,
        },
        Err(e) => Item {
            problem: Some(e.to_string()),
            decl,
            origin,
            meta: None,
            rotated_at: None,
        },
    }
}

/// Every managed secret with its metadata: the declared ones, then the discovered ones (a path
/// declared in config wins over the same path discovered). Errors listing a prefix are errors of
/// the run; a secret whose metadata cannot be read is an item with a problem.
pub async fn collect(
    vault: &Vault,
    config: &RotationConfig,
    aws_regions: &[String],
) -> (Vec<Item>, Vec<String>) {
    let mut errors = Vec::new();
    let declared: Vec<SecretDecl> = config.secrets.clone();
    let mut items: Vec<Item> = futures::stream::iter(declared)
        .map(|d| with_metadata(vault, d, Origin::Config))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let known: std::collections::BTreeSet<VaultPath> =
        items.iter().map(|i| i.decl.vault.clone()).collect();
    let pending = config
        .vault
        .as_ref()
        .map(|v| v.pending_prefix.trim_matches('/').to_string())
        .unwrap_or_default();
    let policies = &config.policies();
    for (i, d) in config.discover.iter().enumerate() {
        let paths = match vault
            .list_recursive(&d.vault.mount, &d.vault.path, &pending)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("job.discover[{i}] ({}): {e}", d.vault));
                continue;
            }
        };
        let candidates: Vec<VaultPath> = paths
            .into_iter()
            .map(|path| VaultPath {
                mount: d.vault.mount.clone(),
                path,
            })
            .filter(|p| !known.contains(p))
            .collect();
        let found: Vec<Option<Item>> = futures::stream::iter(candidates)
            .map(|p| async move {
                match vault.metadata(&p).await {
                    Ok(Some(meta)) => {
                        discovered(&p, &meta, policies, config, aws_regions).map(|r| match r {
                            Ok(decl) => Item {
                                rotated_at: rotated_at(&meta),
                                decl,
                                origin: Origin::Discovered,
                                meta: Some(meta),
                                problem: None,
                            },
                            Err((decl, problem)) => Item {
                                rotated_at: rotated_at(&meta),
                                decl,
                                origin: Origin::Discovered,
                                meta: Some(meta),
                                problem: Some(problem),
                            },
                        })
                    }
                    Ok(None) => None,
                    Err(e) => Some(Item {
                        decl: placeholder(&p),
                        origin: Origin::Discovered,
                        meta: None,
                        rotated_at: None,
                        problem: Some(e.to_string()),
                    }),
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        items.extend(found.into_iter().flatten());
    }
    (items, errors)
}

/// A stand-in declaration for a secret whose own cannot be read (the finding still names it).
fn placeholder(p: &VaultPath) -> SecretDecl {
    SecretDecl {
        name: p.to_string(),
        kind: SecretType::EncryptionKey,
        owner: Email::parse("unknown@invalid.example").expect("a valid placeholder address"),
        vault: p.clone(),
        field: None,
        length: None,
        target: None,
        kubernetes: Vec::new(),
        consumers: Vec::new(),
    }
}

/// The declaration a secret makes in its own metadata; `None` when it makes none (no `type`),
/// `Err` with a placeholder when it makes a broken one.
fn discovered(
    p: &VaultPath,
    meta: &Metadata,
    policies: &crate::config::Policies,
    config: &RotationConfig,
    aws_regions: &[String],
) -> Option<Result<SecretDecl, (SecretDecl, String)>> {
    let m = &meta.custom;
    let kind = m.get("type")?;
    let fail = |why: String| {
        Some(Err((
            placeholder(p),
            format!("{p}: custom_metadata: {why}"),
        )))
    };
    let kind: SecretType = match kind.parse() {
        Ok(k) => k,
        Err(e) => return fail(format!("type: {e}")),
    };
    let owner = match m.get("owner").map(|o| Email::parse(o)) {
        Some(Ok(o)) => o,
        Some(Err(e)) => return fail(format!("owner: {e}")),
        None => return fail("owner: required".into()),
    };
    fn json<T: for<'de> Deserialize<'de>>(
        m: &BTreeMap<String, String>,
        k: &str,
    ) -> Result<Option<T>, String> {
        m.get(k)
            .map(|v| serde_json::from_str::<T>(v).map_err(|e| format!("{k}: {e}")))
            .transpose()
    }
    let target: Option<TargetRef> = match json(m, "target") {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let kubernetes: Vec<KubeSecretRef> = match json(m, "kubernetes") {
        Ok(k) => k.unwrap_or_default(),
        Err(e) => return fail(e),
    };
    let consumers: Vec<ConsumerRef> = match json(m, "consumers") {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return fail(e),
    };
    let length = match m.get("length").map(|l| l.parse::<usize>()) {
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return fail(format!("length: {e}")),
        None => None,
    };
    let decl = SecretDecl {
        name: m.get("name").cloned().unwrap_or_else(|| p.to_string()),
        kind,
        owner,
        vault: p.clone(),
        field: m.get("field").cloned(),
        length,
        target,
        kubernetes,
        consumers,
    };
    let auto = policies[&kind].auto;
    if let Some((field, why)) = check_target(&decl, auto, &config.targets, aws_regions) {
        return Some(Err((decl, format!("{p}: custom_metadata: {field}: {why}"))));
    }
    Some(Ok(decl))
}

/// One line of an `--offline` file: a declared secret and the Vault state it had.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfflineRecord {
    name: String,
    #[serde(rename = "type")]
    kind: SecretType,
    owner: Email,
    // Text, parsed after: serde's untagged VaultPath form buffers every value (slow at 100k).
    vault: String,
    #[serde(default)]
    created_time: Option<Timestamp>,
    #[serde(default)]
    custom_metadata: BTreeMap<String, String>,
}

/// Reads an offline file: JSON lines, one secret per line (blank lines and `#` comments
/// skipped). A bad line is an error naming its line.
pub fn load_offline(path: &Path) -> Result<Vec<Item>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let r: OfflineRecord =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        let vault = VaultPath::parse(&r.vault)
            .map_err(|e| format!("{}:{}: vault: {e}", path.display(), n + 1))?;
        let meta = Metadata {
            current_version: 1,
            versions: BTreeMap::from([(
                1,
                crate::vault::VersionInfo {
                    created_time: r.created_time,
                    gone: false,
                },
            )]),
            custom: r.custom_metadata,
            metadata_version: None,
        };
        let rotated = rotated_at(&meta);
        items.push(Item {
            problem: rotated
                .is_none()
                .then(|| "neither last_rotated nor created_time is known".to_string()),
            rotated_at: rotated,
            decl: SecretDecl {
                name: r.name,
                kind: r.kind,
                owner: r.owner,
                vault,
                field: None,
                length: None,
                target: None,
                kubernetes: Vec::new(),
                consumers: Vec::new(),
            },
            origin: Origin::Offline,
            meta: Some(meta),
        });
    }
    Ok(items)
}
