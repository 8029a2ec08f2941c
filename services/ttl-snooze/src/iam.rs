//! The AWS actions the snooze service calls, as the chart's policy document
//! (`charts/governance-jobs/iam/ttl-snooze.json`) grants them: it reads one resource and writes
//! (and on a failed publish rolls back) its extension tags, through the inventory's kinds: their
//! read and tag actions ([`inventory::kinds::access`]), never a removal; plus the account role it
//! assumes. A test keeps the document equal to this.

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
        ("DescribeTheSnoozedResource", of(Access::Read)),
        (
            "AssumeTheRoleOfEachAccount",
            common::clients::IAM_ACTIONS.to_vec(),
        ),
        ("WriteExtensionTags", of(Access::Tag)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_policy_document_grants_exactly_what_the_service_calls() {
        common::iam::assert_document_grants("ttl-snooze", statements());
    }
}
