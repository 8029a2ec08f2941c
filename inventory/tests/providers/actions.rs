//! The IAM actions each kind declares (`AwsKind::iam_actions`, gathered by
//! `inventory::kinds::iam_actions`, from which the chart's policy documents are checked) are
//! exactly the ones it calls: one opted-in resource of every AWS kind, each with what its removal
//! takes apart (a versioned bucket with an unfinished upload, a role with a managed and an
//! inline policy in an instance profile), is listed, read by id, tagged and untagged and removed
//! while moto records every request; each request is named by the IAM action AWS authorises it
//! with, and the set is compared with the declared one.
//!
//! Query-protocol services (EC2, RDS, IAM, Auto Scaling, ELBv2, STS) name the action in the
//! body; S3, Lambda and EKS are REST APIs, named here from method and path by the tables of the
//! AWS Service Authorization Reference (a DeleteBucketTagging is authorised as
//! `s3:PutBucketTagging`, DeleteObjects as `s3:DeleteObject` and, with version ids,
//! `s3:DeleteObjectVersion`). A request the tables do not know fails the test by name.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use inventory::kinds::{deletion_order, iam_actions};
use inventory::{Removal, Resource};
use testbed::moto::MotoRequest;

use crate::bed::{Bed, find, list, wait_gone};
use crate::guard::KeepGuard;

/// The path and the query of a recorded URL (moto records it absolute or not, by version).
fn path_and_query(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map_or(url, |r| r.find('/').map_or("/", |i| &r[i..]));
    match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

/// Whether the query holds parameter `name` (with or without a value).
fn has(query: &str, name: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv == name || kv.starts_with(&format!("{name}=")))
}

/// The IAM actions AWS authorises `r` with; `Err` names a request the tables do not know.
fn actions_of(r: &MotoRequest) -> Result<Vec<String>, String> {
    let service = r.service().unwrap_or("?");
    let (path, query) = path_and_query(&r.url);
    let unknown = || Err(format!("{service} {} {path}?{query}", r.method));
    let one = |a: &str| Ok(vec![format!("{service}:{a}")]);
    match service {
        "ec2" | "rds" | "iam" | "autoscaling" | "elasticloadbalancing" | "sts" => {
            let body = r.body_text();
            match body
                .split('&')
                .chain(query.split('&'))
                .find_map(|kv| kv.strip_prefix("Action="))
            {
                Some(a) => one(a),
                None => unknown(),
            }
        }
        "s3" => {
            let segments = path.trim_matches('/').split('/').filter(|s| !s.is_empty());
            let depth = segments.count();
            let m = r.method.as_str();
            let action = match (m, depth) {
                ("GET", 0) => "ListAllMyBuckets",
                ("GET", 1) if has(&query, "location") => "GetBucketLocation",
                ("GET", 1) if has(&query, "tagging") => "GetBucketTagging",
                ("PUT" | "DELETE", 1) if has(&query, "tagging") => "PutBucketTagging",
                ("GET", 1) if has(&query, "versions") => "ListBucketVersions",
                ("GET", 1) if has(&query, "uploads") => "ListBucketMultipartUploads",
                ("GET", 1) if has(&query, "object-lock") => "GetBucketObjectLockConfiguration",
                ("GET", 1) if has(&query, "versioning") => "GetBucketVersioning",
                ("HEAD", 1) => "ListBucket",
                ("POST", 1) if has(&query, "delete") => {
                    let mut a = vec!["s3:DeleteObject".to_string()];
                    if r.body_text().contains("<VersionId>") {
                        a.push("s3:DeleteObjectVersion".to_string());
                    }
                    return Ok(a);
                }
                ("DELETE", 1) if query.is_empty() => "DeleteBucket",
                ("DELETE", d) if d > 1 && has(&query, "uploadId") => "AbortMultipartUpload",
                _ => return unknown(),
            };
            one(action)
        }
        "lambda" => {
            let p: Vec<&str> = path.trim_matches('/').split('/').collect();
            let action = match (r.method.as_str(), p.as_slice()) {
                ("GET", [_, "functions"]) => "ListFunctions",
                ("GET", [_, "functions", _]) => "GetFunction",
                ("GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
                ("DELETE", [_, "functions", _]) => "DeleteFunction",
                ("GET", [_, "tags", _]) => "ListTags",
                ("POST", [_, "tags", _]) => "TagResource",
                ("DELETE", [_, "tags", _]) => "UntagResource",
                _ => return unknown(),
            };
            one(action)
        }
        "eks" => {
            let p: Vec<&str> = path.trim_matches('/').split('/').collect();
            let action = match (r.method.as_str(), p.as_slice()) {
                ("GET", ["clusters"]) => "ListClusters",
                ("GET", ["clusters", _]) => "DescribeCluster",
                ("GET", ["clusters", _, "node-groups"]) => "ListNodegroups",
                ("GET", ["clusters", _, "node-groups", _]) => "DescribeNodegroup",
                ("DELETE", ["clusters", _, "node-groups", _]) => "DeleteNodegroup",
                ("GET", ["tags", _]) => "ListTagsForResource",
                ("POST", ["tags", _]) => "TagResource",
                ("DELETE", ["tags", _]) => "UntagResource",
                _ => return unknown(),
            };
            one(action)
        }
        _ => unknown(),
    }
}

#[tokio::test]
async fn every_kind_calls_exactly_the_iam_actions_it_declares() -> Result<()> {
    let bed = Bed::start().await?;
    let seeded = bed.one_of_each_kind().await?;
    bed.fill_versioned("stoa-artifacts").await?;
    bed.furnish_role("app-role", "app-profile").await?;
    // A snapshot whose DescribeDBSnapshots carries no TagList: its tags are asked for.
    bed.snapshot("db1", "s0", &Default::default()).await?;
    let p = bed.providers();
    let guard = KeepGuard::default();

    bed.moto.start_recording().await?;
    inventory::aws::caller_account(&bed.sdk).await?;
    let all = list(&p).await?;
    let mine: Vec<&Resource> = seeded.iter().map(|s| find(&all, s.kind, &s.name)).collect();
    for r in &mine {
        p.get(&r.id)
            .await?
            .with_context(|| format!("{} read back", r.id))?;
        // Set and remove apart, as a failed set stops the write; the errors are moto's (node
        // groups, see tags.rs), the calls are what counts.
        let _ = p.write_tags(r, &[("stage".into(), "x".into())], &[]).await;
        let _ = p.write_tags(r, &[], &["cost-center".into()]).await;
    }
    // Remove in the kinds' order, each waited for: what a TTL run does.
    for kind in deletion_order() {
        for r in mine.iter().filter(|r| r.kind == kind) {
            if let Removal::Pending { .. } = p.remove(r, &guard).await? {
                wait_gone(&p, r).await?;
            }
            p.state(r).await?;
        }
    }
    bed.moto.stop_recording().await?;

    let mut called = BTreeSet::new();
    let mut unknown = Vec::new();
    for r in bed.moto.recorded()? {
        match actions_of(&r) {
            Ok(a) => called.extend(a),
            Err(u) => unknown.push(u),
        }
    }
    assert!(unknown.is_empty(), "requests no table names: {unknown:#?}");
    let declared: BTreeSet<String> = iam_actions().into_iter().map(String::from).collect();
    let undeclared: Vec<_> = called.difference(&declared).collect();
    let unused: Vec<_> = declared.difference(&called).collect();
    assert!(
        undeclared.is_empty() && unused.is_empty(),
        "called but not declared: {undeclared:?}; declared but never called: {unused:?}"
    );
    Ok(())
}
