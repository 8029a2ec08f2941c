//! `whitelist`: validate a never-delete file in a GitOps pull request, or explain a verdict.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jiff::Timestamp;
use whitelist::{Error, KubeObject, Protection, Resource, Section, Whitelist};

/// Check and explain never-delete whitelists.
///
/// The whitelist decides what destructive jobs must never touch. `check` validates a file the
/// way the jobs will (any error means they refuse destructive mode); `explain` says whether a
/// resource is protected and by which rule.
#[derive(Parser)]
#[command(name = "whitelist", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size difference between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Validate a whitelist file: print every problem, the rule count per section, warnings.
    ///
    /// Exit status: 0 valid; 1 valid but with warnings, when --deny-warnings is given; 2
    /// invalid or unreadable (the jobs would refuse it). Problems and warnings are printed to
    /// stderr as FILE:LINE:COLUMN: PATH: MESSAGE.
    Check {
        /// The whitelist file (YAML).
        file: PathBuf,
        /// Evaluate expiry as of this instant (RFC 3339, e.g. 2026-06-01T00:00:00Z) instead
        /// of now.
        #[arg(long, value_name = "RFC3339")]
        now: Option<Timestamp>,
        /// Exit with status 1 when there are warnings (lapsed rules, rules that can never
        /// match, ...).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Say whether a resource is protected, and by which rule.
    ///
    /// Prints `protected: <reason>` or `not protected`, then every other matching rule,
    /// lapsed ones included. Exit status 0 either way; 2 when the file is invalid.
    ///
    /// Describe an AWS resource with --arn (and --tag, --account), a Kubernetes object with
    /// --kind and --name (and --namespace, --label, --namespace-label); --namespace alone is
    /// the namespace itself.
    Explain {
        /// The whitelist file (YAML).
        file: PathBuf,
        /// The resource's ARN.
        #[arg(long)]
        arn: Option<String>,
        /// An AWS tag of the resource (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = key_value)]
        tags: Vec<(String, String)>,
        /// Mark the resource's tags as unreadable, with what went wrong.
        #[arg(long, value_name = "DETAIL")]
        tags_unreadable: Option<String>,
        /// The AWS account, when the ARN has none (S3 buckets) or for a Kubernetes object's
        /// cluster.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// The Kubernetes namespace of the object (or, alone, the namespace itself).
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        /// The Kubernetes kind of the object, e.g. Deployment.
        #[arg(long, value_name = "K", requires = "name")]
        kind: Option<String>,
        /// The Kubernetes object's name.
        #[arg(long, value_name = "N", requires = "kind")]
        name: Option<String>,
        /// A label of the Kubernetes object (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// A label of the object's namespace (repeatable).
        #[arg(long = "namespace-label", value_name = "KEY=VALUE", value_parser = key_value)]
        namespace_labels: Vec<(String, String)>,
        /// Evaluate expiry as of this instant (RFC 3339) instead of now.
        #[arg(long, value_name = "RFC3339")]
        now: Option<Timestamp>,
    },
}

/// `KEY=VALUE`, split at the first `=` (the value may be empty).
fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, found {s:?}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Check {
            file,
            now,
            deny_warnings,
        } => check(&file, now.unwrap_or_else(Timestamp::now), deny_warnings),
        Command::Explain {
            file,
            arn,
            tags,
            tags_unreadable,
            account,
            namespace,
            kind,
            name,
            labels,
            namespace_labels,
            now,
        } => {
            let kubernetes = match (kind, name, &namespace) {
                (Some(kind), Some(name), _) => Some(KubeObject {
                    kind,
                    namespace: namespace.clone(),
                    name,
                    ..KubeObject::default()
                }),
                (None, None, Some(ns)) => Some(KubeObject {
                    kind: "Namespace".to_owned(),
                    name: ns.clone(),
                    ..KubeObject::default()
                }),
                _ if !labels.is_empty() || !namespace_labels.is_empty() => {
                    anyhow::bail!("--label and --namespace-label need --kind and --name")
                }
                _ => None,
            }
            .map(|mut k| {
                k.labels = labels.into_iter().collect();
                k.namespace_labels = namespace_labels.into_iter().collect();
                k
            });
            let resource = Resource {
                arn,
                account,
                tags: tags.into_iter().collect(),
                tags_unreadable,
                kubernetes,
            };
            if resource == Resource::default() {
                anyhow::bail!(
                    "describe the resource with --arn, --tag, --account, --namespace or --kind/--name"
                );
            }
            explain(&file, &resource, now.unwrap_or_else(Timestamp::now))
        }
    }
}

/// Loads the file; an invalid file's problems are printed, and `None` returned.
fn load(file: &std::path::Path) -> anyhow::Result<Option<Whitelist>> {
    match Whitelist::load(file) {
        Ok(w) => Ok(Some(w)),
        Err(Error::Invalid { problems }) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            let n = problems.len();
            eprintln!(
                "{}: invalid ({n} problem{}): destructive jobs will refuse this whitelist",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(None)
        }
        Err(e) => Err(e).context("whitelist not loaded: destructive jobs will refuse to run"),
    }
}

fn check(file: &std::path::Path, now: Timestamp, deny_warnings: bool) -> anyhow::Result<ExitCode> {
    let Some(whitelist) = load(file)? else {
        return Ok(ExitCode::from(2));
    };
    let n = whitelist.len();
    println!(
        "{}: valid, {n} rule{}",
        file.display(),
        if n == 1 { "" } else { "s" }
    );
    for section in Section::ALL {
        let rules = whitelist.rules(section);
        let active = rules.iter().filter(|r| r.is_active(now)).count();
        let lapsed = rules.len() - active;
        if lapsed > 0 {
            println!(
                "  {:<22} {:>5}  ({lapsed} lapsed)",
                section.name(),
                rules.len()
            );
        } else {
            println!("  {:<22} {:>5}", section.name(), rules.len());
        }
    }
    let warnings = whitelist.warnings(now);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} warning{}",
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    );
    Ok(if deny_warnings && !warnings.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn explain(
    file: &std::path::Path,
    resource: &Resource,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let Some(whitelist) = load(file)? else {
        return Ok(ExitCode::from(2));
    };
    let verdict = whitelist.verdict(resource, now);
    match &verdict {
        Some(p) => {
            println!("protected: {p}");
            if let Some(rule) = p.rule() {
                println!(
                    "  defined at {}:{}:{}",
                    whitelist.origin(),
                    rule.line(),
                    rule.column()
                );
            }
        }
        None => println!("not protected"),
    }
    for other in whitelist.matching_rules(resource) {
        if Some(&other) == verdict.as_ref() {
            continue;
        }
        let Protection::Rule { rule, .. } = &other else {
            continue;
        };
        match rule.expires() {
            Some(at) if !rule.is_active(now) => {
                println!("lapsed at {at}, no longer protecting: {other}")
            }
            _ => println!("also matched by: {other}"),
        }
        println!(
            "  defined at {}:{}:{}",
            whitelist.origin(),
            rule.line(),
            rule.column()
        );
    }
    Ok(ExitCode::SUCCESS)
}
