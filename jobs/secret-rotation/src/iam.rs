//! The AWS actions secret rotation calls, as the chart's policy document
//! (`charts/governance-jobs/iam/secret-rotation.json`) grants them: RDS master passwords are
//! its only AWS target ([`crate::targets::rds`]), reached through the account role it assumes
//! when a secret names an account. Every other target (Vault, Kubernetes, PostgreSQL, Keycloak,
//! API keys) is reached with its own credential, not IAM. A test keeps the document equal to
//! this (`common::iam`); the RDS target's test against moto checks that the job calls exactly
//! [`crate::targets::rds::IAM_ACTIONS`].

/// The statements of the policy document, by `Sid`, each with its sorted actions.
pub fn statements() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "SetRdsMasterPasswords",
            crate::targets::rds::IAM_ACTIONS.to_vec(),
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
    fn the_charts_policy_document_grants_exactly_what_the_job_calls() {
        common::iam::assert_document_grants("secret-rotation", statements());
    }

    #[test]
    fn actions_are_sorted_and_unique() {
        for (sid, actions) in statements() {
            assert!(
                actions.windows(2).all(|w| w[0] < w[1]),
                "{sid}: {actions:?}"
            );
        }
    }
}
