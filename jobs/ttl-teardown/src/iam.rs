//! The AWS actions the TTL job calls, statement by statement, as the chart's policy document
//! (`charts/governance-jobs/iam/ttl-teardown.json`) grants them: what the inventory's kinds
//! declare ([`inventory::kinds::iam_actions`], split by [`inventory::kinds::access`]), the
//! account role it assumes and the audit archive it writes. A test keeps the document equal to
//! this, so a kind that starts calling something new fails CI until the document says so.

use inventory::kinds::{Access, access, iam_actions};

/// The statements of the policy document, by `Sid`, each with its sorted actions.
pub fn statements() -> Vec<(&'static str, Vec<&'static str>)> {
    let of = |a: Access| {
        iam_actions()
            .into_iter()
            .filter(|x| access(x) == a)
            .collect::<Vec<_>>()
    };
    vec![
        ("ListAndDescribe", of(Access::Read)),
        (
            "AssumeTheRoleOfEachAccount",
            common::clients::IAM_ACTIONS.to_vec(),
        ),
        ("RecordWarningsAndExtensionsInTags", of(Access::Tag)),
        ("DeleteExpiredResources", of(Access::Remove)),
        ("WriteTheAuditArchive", crate::archive::IAM_ACTIONS.to_vec()),
    ]
}

/// The statements of the chart's policy document `name` (`charts/governance-jobs/iam/<name>.json`),
/// by `Sid`, each with its actions as written: for the tests that keep the documents equal to
/// what the code calls (here, and the snooze service's).
pub fn chart_document(name: &str) -> Vec<(String, Vec<String>)> {
    let path = format!(
        "{}/../../charts/governance-jobs/iam/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect()
    };
    doc["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["Sid"].as_str().unwrap_or("").to_string(),
                strings(&s["Action"]),
            )
        })
        .collect()
}

/// `statements` as [`chart_document`] returns them, and as JSON for a drift message.
pub fn owned(statements: Vec<(&'static str, Vec<&'static str>)>) -> Vec<(String, Vec<String>)> {
    statements
        .into_iter()
        .map(|(sid, a)| (sid.to_string(), a.into_iter().map(String::from).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_policy_document_grants_exactly_what_the_job_calls() {
        let want = owned(statements());
        assert_eq!(
            chart_document("ttl-teardown"),
            want,
            "iam/ttl-teardown.json drifted from the kinds' iam_actions; its statements should be {}",
            serde_json::to_string_pretty(&want).expect("json")
        );
    }
}
