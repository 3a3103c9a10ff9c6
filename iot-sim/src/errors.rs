//! API errors as AWS IoT sends them: HTTP status from the API model, code in
//! `X-Amzn-ErrorType`, body `{"message": ...}`.

use std::fmt;

/// Message of an expired security token (IoT and STS).
pub const EXPIRED_MESSAGE: &str = "The security token included in the request is expired";

/// Message of an unknown or revoked security token (IoT and STS).
pub const INVALID_TOKEN_MESSAGE: &str = "The security token included in the request is invalid.";

/// An error answer of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Error code, e.g. `InvalidRequestException`.
    pub code: &'static str,
    /// HTTP status code as in the API model.
    pub status: u16,
    /// Human-readable message (body `message`).
    pub message: String,
}

impl ApiError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status,
            message: message.into(),
        }
    }

    /// `InvalidRequestException`, 400.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", 400, message)
    }

    /// `ThrottlingException`, 400, "Rate exceeded".
    pub fn throttling() -> Self {
        Self::new("ThrottlingException", 400, "Rate exceeded")
    }

    /// `ResourceNotFoundException`, 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", 404, message)
    }

    /// `CertificateStateException`, 406.
    pub fn certificate_state(message: impl Into<String>) -> Self {
        Self::new("CertificateStateException", 406, message)
    }

    /// `TransferConflictException`, 409.
    pub fn transfer_conflict(message: impl Into<String>) -> Self {
        Self::new("TransferConflictException", 409, message)
    }

    /// `TransferAlreadyCompletedException`, 410.
    pub fn transfer_already_completed(message: impl Into<String>) -> Self {
        Self::new("TransferAlreadyCompletedException", 410, message)
    }

    /// `LimitExceededException`, 410.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new("LimitExceededException", 410, message)
    }

    /// `ExpiredTokenException`, 403: the credentials expired.
    pub fn expired_token() -> Self {
        Self::new("ExpiredTokenException", 403, EXPIRED_MESSAGE)
    }

    /// `UnrecognizedClientException`, 403: the credentials are unknown or revoked.
    pub fn unrecognized_client() -> Self {
        Self::new("UnrecognizedClientException", 403, INVALID_TOKEN_MESSAGE)
    }

    /// `AccessDeniedException`, 403, with IAM's message shape (the caller's IAM user ARN in
    /// the partition of `region`).
    pub fn access_denied(region: &str, account: &str, operation: &str, resource: &str) -> Self {
        let partition = crate::arn::partition(region);
        Self::new(
            "AccessDeniedException",
            403,
            format!(
                "User: arn:{partition}:iam::{account}:user/iot-sim is not authorized to perform: iot:{operation} on resource: {resource}"
            ),
        )
    }

    /// `UnauthorizedException`, 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("UnauthorizedException", 401, message)
    }

    /// `ResourceAlreadyExistsException`, 409.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new("ResourceAlreadyExistsException", 409, message)
    }

    /// `InvalidStateTransitionException`, 409: the resource is not in a state that allows
    /// the change (DeleteJob of a job in progress, without `force`).
    pub fn invalid_state_transition(message: impl Into<String>) -> Self {
        Self::new("InvalidStateTransitionException", 409, message)
    }

    /// `CertificateValidationException`, 400.
    pub fn certificate_validation(message: impl Into<String>) -> Self {
        Self::new("CertificateValidationException", 400, message)
    }

    /// `MalformedPolicyException`, 400.
    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new("MalformedPolicyException", 400, message)
    }

    /// `InvalidQueryException`, 400: SearchIndex refuses the query.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new("InvalidQueryException", 400, message)
    }

    /// `IndexNotReadyException`, 400: the index is being built.
    pub fn index_not_ready(message: impl Into<String>) -> Self {
        Self::new("IndexNotReadyException", 400, message)
    }

    /// `InternalFailureException`, 500.
    pub fn internal_failure() -> Self {
        Self::new("InternalFailureException", 500, "Internal failure")
    }

    /// `ServiceUnavailableException`, 503.
    pub fn service_unavailable() -> Self {
        Self::new("ServiceUnavailableException", 503, "Service unavailable")
    }

    /// Unknown path or method, 404.
    pub fn unknown_operation() -> Self {
        Self::new("UnknownOperationException", 404, "Unknown operation")
    }

    /// The JSON body of the error.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.message }).to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
