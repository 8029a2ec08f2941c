//! The chart's IAM policy documents (`charts/governance-jobs/iam/<workload>.json`) as the tests
//! that keep them equal to the code read them: each workload declares the statements it needs
//! (its `iam::statements()`, built from the actions its code calls) and a unit test compares
//! them with [`chart_document`], so code that starts calling something new fails CI until the
//! document grants it, and a document never grants what nothing calls.

use std::path::PathBuf;

/// A policy statement as the tests compare it: its `Sid` and its actions, sorted.
pub type Statement = (String, Vec<String>);

/// The path of the chart's policy document of `workload`.
pub fn document_path(workload: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/governance-jobs/iam")
        .join(format!("{workload}.json"))
}

/// The statements of the chart's policy document of `workload`, by `Sid`, each with its actions
/// as written. Panics with the path when the file is missing or not JSON: a test helper.
pub fn chart_document(workload: &str) -> Vec<Statement> {
    let path = document_path(workload);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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

/// `statements` as [`chart_document`] returns them.
pub fn owned(statements: Vec<(&'static str, Vec<&'static str>)>) -> Vec<Statement> {
    statements
        .into_iter()
        .map(|(sid, a)| (sid.to_string(), a.into_iter().map(String::from).collect()))
        .collect()
}

/// Asserts that the chart's document of `workload` has exactly `statements`; the message shows
/// the statements it should have.
pub fn assert_document_grants(workload: &str, statements: Vec<(&'static str, Vec<&'static str>)>) {
    let want = owned(statements);
    assert_eq!(
        chart_document(workload),
        want,
        "{} drifted from the actions the code calls; its statements (Sid, Action) should be {}",
        document_path(workload).display(),
        serde_json::to_string_pretty(&want).expect("json")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_checker_document_grants_nothing() {
        // The checker calls no AWS API (its sources are Kubernetes, HTTPS and Vault).
        assert_document_grants("certificate-checker", vec![]);
    }
}
