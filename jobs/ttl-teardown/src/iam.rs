//! The AWS actions the TTL job calls, statement by statement, as the chart's policy document
//! (`charts/governance-jobs/iam/ttl-teardown.json`) grants them: what the inventory's kinds
//! declare ([`inventory::kinds::iam_actions`], split by [`inventory::kinds::access`]), the
//! account role it assumes and the audit archive it writes. A test keeps the document equal to
//! this (`common::iam`), so a kind that starts calling something new fails CI until the document says so.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_policy_document_grants_exactly_what_the_job_calls() {
        common::iam::assert_document_grants("ttl-teardown", statements());
    }
}
