//! `write_tags(r, set, remove)` for every AWS kind: what is set and what is removed shows on the
//! next listing, the other tags are untouched, and nothing to write sends nothing.
//!
//! moto 5.2 tags EKS clusters only: TagResource and UntagResource on a node group's ARN answer
//! `ResourceNotFoundException` (AWS tags node groups). For that kind the test asserts the calls
//! moto received and moto's answer; a moto that learns node group tags makes it point here.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::bed::{Bed, find, list};

const STAGE: (&str, &str) = ("ttl-notified-stage", "48h@2026-01-01T00:00:00Z");

/// What a resource seeded with `tags` should carry after the write.
fn written(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut tags = tags.clone();
    tags.remove("cost-center");
    tags.insert(STAGE.0.to_string(), STAGE.1.to_string());
    tags
}

#[tokio::test]
async fn write_tags_sets_and_removes_for_every_aws_kind() -> Result<()> {
    let bed = Bed::start().await?;
    let seeded = bed.one_of_each_kind().await?;
    let p = bed.providers();
    let before = list(&p).await?;
    let set = [(STAGE.0.to_string(), STAGE.1.to_string())];
    let remove = ["cost-center".to_string()];

    // Nothing to write: no request at all.
    bed.moto.start_recording().await?;
    for s in &seeded {
        p.write_tags(find(&before, s.kind, &s.name), &[], &[])
            .await?;
    }
    bed.moto.stop_recording().await?;
    assert!(
        bed.moto.recorded()?.is_empty(),
        "{:?}",
        bed.moto.recorded()?
    );

    let taggable = || seeded.iter().filter(|s| s.kind != "eks-nodegroup");
    for s in taggable() {
        p.write_tags(find(&before, s.kind, &s.name), &set, &remove)
            .await
            .map_err(|e| anyhow::anyhow!("{} {}: {e}", s.kind, s.name))?;
    }
    let after = list(&p).await?;
    for s in taggable() {
        assert_eq!(
            find(&after, s.kind, &s.name).tags,
            written(&s.tags),
            "{} {}",
            s.kind,
            s.name
        );
    }

    // EKS node groups: the calls, and moto's answer to them.
    let group = find(&before, "eks-nodegroup", "pool");
    let encoded = group.id.replace(':', "%3A").replace('/', "%2F");
    bed.moto.start_recording().await?;
    let set_error = p
        .write_tags(group, &set, &[])
        .await
        .expect_err("moto tags clusters only");
    let remove_error = p
        .write_tags(group, &[], &remove)
        .await
        .expect_err("moto untags clusters only");
    bed.moto.stop_recording().await?;
    for (e, operation) in [
        (&set_error, "TagResource"),
        (&remove_error, "UntagResource"),
    ] {
        assert!(e.message.starts_with("ResourceNotFoundException"), "{e}");
        assert!(e.message.contains(operation), "{e}");
        assert_eq!(e.resource, group.id);
    }
    let calls: Vec<_> = bed
        .moto
        .recorded()?
        .into_iter()
        .filter(|r| r.service() == Some("eks"))
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].method, "POST");
    assert!(
        calls[0].url.contains(&format!("/tags/{encoded}")),
        "{}",
        calls[0].url
    );
    let body: serde_json::Value = serde_json::from_slice(&calls[0].body)?;
    assert_eq!(body["tags"][STAGE.0], STAGE.1, "{body}");
    assert_eq!(calls[1].method, "DELETE");
    assert!(
        calls[1].url.contains(&format!("/tags/{encoded}?")),
        "{}",
        calls[1].url
    );
    assert!(
        calls[1].url.contains("tagKeys=cost-center"),
        "{}",
        calls[1].url
    );
    Ok(())
}
