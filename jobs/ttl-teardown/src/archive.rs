//! The audit archive: after an executed run, its audit records (the plan, every intent, every
//! outcome, each with whether Kafka acknowledged it) as one JSONL object on S3 at
//! `<prefix>/<yyyy>/<mm>/<dd>/<run_id>.jsonl` (UTC date of the run).
//!
//! Kafka is the write-ahead audit; S3 is the long-lived copy the platform keeps beside it. A
//! failed archive write makes the run `partial` and is logged with the records' count; it never
//! touches what was already published on Kafka.

use aws_sdk_s3::primitives::ByteStream;
use common::clients::{AwsTarget, aws_sdk_config};
use common::config::AwsConfig;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::config::ArchiveConfig;

/// The AWS action writing the archive calls (the policy's audit statement).
pub const IAM_ACTIONS: &[&str] = &["s3:PutObject"];

/// Why the archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The records could not be encoded.
    #[error("audit archive: cannot encode the records")]
    Encode(#[source] serde_json::Error),
    /// S3 refused or did not answer.
    #[error("audit archive s3://{bucket}/{key}: {message}")]
    Put {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What S3 said.
        message: String,
    },
}

/// The object key of a run's archive.
pub fn key(prefix: &str, run_id: &str, at: Timestamp) -> String {
    let day = at.to_zoned(TimeZone::UTC).date();
    let prefix = prefix.trim_matches('/');
    let path = format!(
        "{:04}/{:02}/{:02}/{run_id}.jsonl",
        day.year(),
        day.month(),
        day.day()
    );
    if prefix.is_empty() {
        path
    } else {
        format!("{prefix}/{path}")
    }
}

/// Writes `records` (one JSON object per line) for `run_id`, started `at`; returns the
/// `s3://` URI written.
pub async fn write(
    archive: &ArchiveConfig,
    aws: &AwsConfig,
    run_id: &str,
    at: Timestamp,
    records: &[Value],
) -> Result<String, ArchiveError> {
    let mut body = Vec::new();
    for r in records {
        serde_json::to_writer(&mut body, r).map_err(ArchiveError::Encode)?;
        body.push(b'\n');
    }
    let region = archive
        .region
        .clone()
        .or_else(|| aws.regions.first().cloned())
        .unwrap_or_else(|| "us-east-1".to_string());
    let role_arn = archive.account.as_ref().and_then(|id| {
        aws.accounts
            .iter()
            .find(|a| &a.id == id)
            .and_then(|a| a.role_arn.clone())
    });
    let target = AwsTarget {
        account: archive.account.clone().unwrap_or_else(|| "default".into()),
        region: region.clone(),
        role_arn,
    };
    let sdk = aws_sdk_config(aws, &target).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let key = key(&archive.prefix, run_id, at);
    let mut put = s3
        .put_object()
        .bucket(&archive.bucket)
        .key(&key)
        .content_type("application/x-ndjson")
        .body(ByteStream::from(body));
    if let Some(account) = &archive.account {
        put = put.expected_bucket_owner(account);
    }
    put.send().await.map_err(|e| ArchiveError::Put {
        bucket: archive.bucket.clone(),
        key: key.clone(),
        message: sdk_message(&e),
    })?;
    Ok(format!("s3://{}/{key}", archive.bucket))
}

/// What S3 said, once: `Code: message` for an answer (the SDK's full context of a service
/// error repeats it and carries the raw response, headers and body, into the event), else the
/// SDK's description of why there was no answer.
fn sdk_message<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error().map(|s| (s.code(), s.message())) {
        Some((Some(code), Some(message))) => format!("{code}: {message}"),
        Some((Some(code), None)) => code.to_string(),
        _ => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_in_utc_under_the_prefix() {
        let at: Timestamp = "2026-12-01T23:30:00-02:00".parse().expect("timestamp");
        assert_eq!(
            key("ttl-teardown/audit/", "0197-run", at),
            "ttl-teardown/audit/2026/12/02/0197-run.jsonl"
        );
        assert_eq!(key("", "r", at), "2026/12/02/r.jsonl");
    }
}
