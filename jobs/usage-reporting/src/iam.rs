//! The AWS actions the usage reports call, as the chart's policy document
//! (`charts/governance-jobs/iam/usage-reporting.json`) grants them: the inventory lists every
//! kind to count each tenant's resources, so it needs the kinds' read actions
//! ([`inventory::kinds::access`]) and nothing that tags or removes; plus the account role it
//! assumes. A test keeps the document equal to this (`common::iam`).

use inventory::kinds::{Access, access, iam_actions};

/// The statements of the policy document, by `Sid`, each with its sorted actions.
pub fn statements() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "ListAndDescribeToCount",
            iam_actions()
                .into_iter()
                .filter(|a| access(a) == Access::Read)
                .collect(),
        ),
        (
            "AssumeTheRoleOfEachAccount",
            common::clients::IAM_ACTIONS.to_vec(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_policy_document_grants_exactly_what_the_reports_call() {
        common::iam::assert_document_grants("usage-reporting", statements());
    }

    #[test]
    fn the_reports_never_get_a_write() {
        let all: Vec<&str> = statements().into_iter().flat_map(|(_, a)| a).collect();
        assert!(all.contains(&"ec2:DescribeInstances"), "{all:?}");
        assert!(
            all.iter()
                .all(|a| access(a) == Access::Read || *a == "sts:AssumeRole"),
            "{all:?}"
        );
    }
}
