//! From an SDK error to a [`ProviderError`]: the AWS error code and message, and whether trying
//! again later may help.
//!
//! By the time an error reaches this module the SDK's standard retry has already retried
//! throttling and transient errors with jittered exponential backoff (see
//! [`AwsScope::new`](super::AwsScope::new)); `retryable: true` tells the executor to try
//! again in a later pass, not to spin.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::ProviderError;

/// Error codes after which a later attempt may succeed.
const RETRYABLE_CODES: &[&str] = &[
    // Throttling (EC2 and RDS spellings, and the SDK's generic list).
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "SlowDown",
    // Transient server-side failures.
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    // Still in use or in a state that forbids deletion *for now*: retried once what holds it is
    // gone (an instance still terminating, an ENI still attached, a backup still running).
    "DependencyViolation",
    "InvalidGroup.InUse",
    "VolumeInUse",
    "IncorrectState",
    "IncorrectInstanceState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSnapshotState",
    "InvalidDBSnapshotStateFault",
    // IAM: a policy or profile still attached (retried after the detach went through).
    "DeleteConflict",
    // S3: the bucket is not empty yet (an object written while it was being emptied).
    "BucketNotEmpty",
    // Auto Scaling: an activity (scaling, the group's own deletion) is still running.
    "ScalingActivityInProgress",
    "ResourceInUse",
    // ELBv2, Lambda, EKS: the resource is still referenced or busy.
    "ResourceInUseException",
    "ResourceConflictException",
];

/// What went wrong in one SDK call.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The AWS error code, for a service error.
    pub code: Option<String>,
    /// `Code: message`, or the SDK's description of a non-service error.
    pub message: String,
    /// True when a later attempt may succeed.
    pub retryable: bool,
}

impl Failure {
    /// Classifies an SDK error. Generic over the raw response type so unit tests need no HTTP.
    pub fn of<E, R>(err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let context = || DisplayErrorContext(err).to_string();
        match err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_string);
                let message = match (e.code(), e.message()) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.to_string(),
                    _ => context(),
                };
                let retryable = code.as_deref().is_some_and(is_retryable_code);
                Failure {
                    code,
                    message,
                    retryable,
                }
            }
            // The attempt or the whole operation timed out: the network or AWS was slow.
            SdkError::TimeoutError(_) => Failure {
                code: None,
                message: format!("timed out: {}", context()),
                retryable: true,
            },
            // Connection refused/reset, DNS, TLS handshake timeouts: transient. A "user" error
            // (a bad endpoint URL) will not fix itself.
            SdkError::DispatchFailure(dispatch) => Failure {
                code: None,
                message: context(),
                retryable: dispatch.is_io() || dispatch.is_timeout(),
            },
            // A response that could not be read (cut off mid-body): usually the network.
            SdkError::ResponseError(_) => Failure {
                code: None,
                message: context(),
                retryable: true,
            },
            // The request could not be built: a bug or bad input, never transient.
            _ => Failure {
                code: None,
                message: context(),
                retryable: false,
            },
        }
    }

    /// True when the error code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// The [`ProviderError`] for `action` on `resource`.
    pub fn into_provider_error(self, action: &str, resource: &str) -> ProviderError {
        ProviderError {
            action: action.to_string(),
            resource: resource.to_string(),
            message: self.message,
            retryable: self.retryable,
        }
    }
}

fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// A [`ProviderError`] that must not be retried (a refusal or an inconsistency).
pub(crate) fn refusal(action: &str, resource: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::refusal(action, resource, message)
}

/// The result of an SDK call as ours: `Ok(None)` when AWS says the resource does not exist
/// (any of `not_found`), the error as a [`ProviderError`] for `action` on `resource` otherwise.
pub(crate) fn found<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    not_found: &[&str],
    action: &str,
    resource: &str,
) -> Result<Option<T>, ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) => {
            let f = Failure::of(&e);
            if f.is(not_found) {
                Ok(None)
            } else {
                Err(f.into_provider_error(action, resource))
            }
        }
    }
}

/// An SDK error as a [`ProviderError`] for `action` on `resource`.
pub(crate) fn failed<E, R>(e: SdkError<E, R>, action: &str, resource: &str) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    Failure::of(&e).into_provider_error(action, resource)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::error::ErrorMetadata;
    use aws_sdk_ec2::operation::delete_security_group::DeleteSecurityGroupError;
    use aws_sdk_rds::operation::delete_db_instance::DeleteDBInstanceError;

    use super::*;

    fn ec2_service_error(code: &str, message: &str) -> SdkError<DeleteSecurityGroupError, ()> {
        SdkError::service_error(
            DeleteSecurityGroupError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            ),
            (),
        )
    }

    #[test]
    fn dependency_violation_is_retryable_and_keeps_code_and_message() {
        let f = Failure::of(&ec2_service_error(
            "DependencyViolation",
            "resource sg-1 has a dependent object",
        ));
        assert!(f.retryable);
        assert!(f.is(&["DependencyViolation"]));
        let e = f.into_provider_error("delete", "arn:aws:ec2:us-east-1:1:security-group/sg-1");
        assert_eq!(
            e.to_string(),
            "delete arn:aws:ec2:us-east-1:1:security-group/sg-1: DependencyViolation: resource sg-1 has a dependent object"
        );
        assert!(e.retryable);
    }

    #[test]
    fn throttling_and_rds_state_errors_are_retryable() {
        assert!(Failure::of(&ec2_service_error("RequestLimitExceeded", "slow down")).retryable);
        let rds: SdkError<DeleteDBInstanceError, ()> = SdkError::service_error(
            DeleteDBInstanceError::generic(
                ErrorMetadata::builder()
                    .code("InvalidDBInstanceState")
                    .message("instance db1 is backing-up")
                    .build(),
            ),
            (),
        );
        let f = Failure::of(&rds);
        assert!(f.retryable);
        assert_eq!(
            f.message,
            "InvalidDBInstanceState: instance db1 is backing-up"
        );
        let throttled: SdkError<DeleteDBInstanceError, ()> = SdkError::service_error(
            DeleteDBInstanceError::generic(ErrorMetadata::builder().code("Throttling").build()),
            (),
        );
        assert!(Failure::of(&throttled).retryable);
    }

    #[test]
    fn permanent_errors_are_not_retryable() {
        let f = Failure::of(&ec2_service_error(
            "UnauthorizedOperation",
            "you are not authorized",
        ));
        assert!(!f.retryable);
        let f = Failure::of(&ec2_service_error("InvalidGroup.NotFound", "no such group"));
        assert!(!f.retryable);
        assert!(f.is(&["InvalidGroup.NotFound"]));
        let built: SdkError<DeleteSecurityGroupError, ()> =
            SdkError::construction_failure("missing field");
        assert!(!Failure::of(&built).retryable);
    }

    #[test]
    fn timeouts_and_io_failures_are_retryable() {
        let timeout: SdkError<DeleteSecurityGroupError, ()> = SdkError::timeout_error("slow");
        assert!(Failure::of(&timeout).retryable);
        let io: SdkError<DeleteSecurityGroupError, ()> = SdkError::dispatch_failure(
            aws_sdk_ec2::error::ConnectorError::io("connection reset".into()),
        );
        assert!(Failure::of(&io).retryable);
        let user: SdkError<DeleteSecurityGroupError, ()> = SdkError::dispatch_failure(
            aws_sdk_ec2::error::ConnectorError::user("bad endpoint".into()),
        );
        assert!(!Failure::of(&user).retryable);
    }
}
