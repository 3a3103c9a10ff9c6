//! Classification of failed AWS calls and the retry budget of one call.
//!
//! Throttles are told apart from transient failures because they are handled
//! differently: a throttle says the *pool* is too fast (the [`crate::pacer::Pacer`]
//! slows every worker down) and is retried patiently, without consuming the attempt
//! budget; a transient failure says this *request* failed and is retried a few times
//! with exponential backoff. A refusal of the caller's credentials concerns every call, not
//! this one: it is never retried, and it stops the run (see [`crate::breaker`]). Everything
//! else is permanent and never retried.

use std::fmt;
use std::time::Duration;

use rand::Rng;

closed_set! {
    /// The AWS IoT error codes the tool decides on; every other code is reported as AWS
    /// sent it.
    pub enum AwsCode {
        /// The resource does not exist (HTTP 404).
        ResourceNotFound = "ResourceNotFoundException",
        /// A resource limit (HTTP 410), e.g. an 11th policy on a certificate: permanent for
        /// the item, not a rate limit.
        LimitExceeded = "LimitExceededException",
        /// A transfer while something is (or still counts as) attached, or while the
        /// certificate is already pending transfer (HTTP 409).
        TransferConflict = "TransferConflictException",
        /// What AWS may answer instead (undocumented) for a certificate already pending
        /// transfer, or one whose status does not allow the call.
        CertificateState = "CertificateStateException",
        /// The transfer was already accepted (HTTP 410).
        TransferAlreadyCompleted = "TransferAlreadyCompletedException",
        /// The caller may not (HTTP 403): what the source may hear once the target accepted.
        AccessDenied = "AccessDeniedException",
        /// The caller is not allowed (HTTP 401): the same, in another words.
        Unauthorized = "UnauthorizedException",
        /// SearchIndex refuses the query (HTTP 400).
        InvalidQuery = "InvalidQueryException",
        /// A malformed request (HTTP 400), e.g. a query AWS cannot take.
        InvalidRequest = "InvalidRequestException",
        /// The fleet index is being built (HTTP 400): it cannot be searched yet.
        IndexNotReady = "IndexNotReadyException",
    }
}

/// How a failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service refused the call for rate reasons: slow down, then retry.
    Throttle,
    /// The call may succeed if retried (server error, timeout, broken connection).
    Transient,
    /// Retrying cannot help.
    Permanent,
    /// AWS refused the caller's credentials (expired, revoked, badly signed), or they could
    /// not be loaded: no call can succeed until they are renewed.
    Credentials,
}

/// How far a failed call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An HTTP response was received (it carries the status and maybe an error code).
    Service,
    /// No response in time (connect, read or operation timeout).
    Timeout,
    /// No response: connect failure, connection reset, other IO error.
    Dispatch,
    /// The request could not be built (bad input): never retry.
    Construction,
    /// The credentials could not be loaded (an expired SSO session, a failing
    /// `credential_process`, ...): the request was never sent.
    Credentials,
    /// A 2xx reply whose body could not be read (cut short, or empty where an answer was
    /// due): the call may have taken effect.
    Garbled,
}

/// Error codes that mean throttling (the AWS SDKs' list, without `LimitExceededException`:
/// in IoT that code, HTTP 410, is a resource limit such as an 11th policy on a certificate,
/// a permanent failure of the item, never a reason to slow down).
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes that mean a transient failure whatever the HTTP status.
pub const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalFailureException",
    "ServiceUnavailableException",
    "InternalServerException",
];

/// Error codes that mean AWS refused the caller's credentials, whatever the call (IoT's
/// restJson1 codes and STS's awsQuery ones).
pub const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
];

/// HTTP statuses that mean a transient failure.
pub const TRANSIENT_STATUSES: &[u16] = &[500, 502, 503, 504];

/// The bare error code: anything after the first `:` is dropped
/// (`ThrottlingException:http://internal.amazon.com/...`), and so is a Smithy
/// namespace before `#` (`com.amazonaws.iot#ThrottlingException`), as the restJson1
/// protocol prescribes.
pub fn normalize_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    let code = code.rsplit('#').next().unwrap_or(code);
    code.trim()
}

/// Classifies a failure from its error code, HTTP status and kind.
///
/// Throttling is decided by the code (IoT throttles with HTTP 400), or by HTTP 429 even
/// without a code. `LimitExceededException` (410) is a resource limit: permanent. A refused or
/// unloadable credential is [`ErrorClass::Credentials`]; an unreadable 2xx is transient
/// (for a mutating call its outcome is unknown: see [`CallError::outcome_unknown`]).
pub fn classify(code: Option<&str>, http_status: Option<u16>, kind: FailureKind) -> ErrorClass {
    match kind {
        FailureKind::Construction => return ErrorClass::Permanent,
        FailureKind::Credentials => return ErrorClass::Credentials,
        FailureKind::Garbled => return ErrorClass::Transient,
        FailureKind::Service | FailureKind::Timeout | FailureKind::Dispatch => {}
    }
    let code = code.map(normalize_code).filter(|c| !c.is_empty());
    if code.is_some_and(|c| CREDENTIAL_CODES.contains(&c)) {
        return ErrorClass::Credentials;
    }
    if code.is_some_and(|c| THROTTLING_CODES.contains(&c)) || http_status == Some(429) {
        return ErrorClass::Throttle;
    }
    if matches!(kind, FailureKind::Timeout | FailureKind::Dispatch)
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
        || http_status.is_some_and(|s| TRANSIENT_STATUSES.contains(&s))
    {
        return ErrorClass::Transient;
    }
    ErrorClass::Permanent
}

/// What we know about a failed call, independent of the SDK types (`iot.rs`
/// converts `SdkError` into this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The error code (`X-Amzn-ErrorType`), as received.
    pub code: Option<String>,
    /// The HTTP status, when a response was received.
    pub http_status: Option<u16>,
    /// The service's message, or a description of the local failure.
    pub message: String,
    /// How far the call got.
    pub kind: FailureKind,
    /// `x-amzn-RequestId`, for support cases.
    pub request_id: Option<String>,
}

impl CallError {
    /// An error response from the service.
    pub fn service(code: Option<&str>, http_status: u16, message: impl Into<String>) -> CallError {
        CallError {
            code: code.map(str::to_string),
            http_status: Some(http_status),
            message: message.into(),
            kind: FailureKind::Service,
            request_id: None,
        }
    }

    /// A call without a response, of the given kind.
    pub fn local(kind: FailureKind, message: impl Into<String>) -> CallError {
        CallError {
            code: None,
            http_status: None,
            message: message.into(),
            kind,
            request_id: None,
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> CallError {
        self.request_id = Some(request_id.into());
        self
    }

    /// The error code without suffix or namespace (see [`normalize_code`]).
    pub fn bare_code(&self) -> Option<&str> {
        self.code
            .as_deref()
            .map(normalize_code)
            .filter(|c| !c.is_empty())
    }

    /// Whether AWS answered with `code` (whatever suffix or namespace it sent).
    pub fn is(&self, code: AwsCode) -> bool {
        self.bare_code() == Some(code.as_str())
    }

    /// Whether AWS said the caller may not make the call (IoT's 403 and 401 codes, and
    /// STS's `AccessDenied`).
    pub fn is_permission_refusal(&self) -> bool {
        self.is(AwsCode::AccessDenied)
            || self.is(AwsCode::Unauthorized)
            || self.bare_code() == Some("AccessDenied")
    }

    /// The name the failure is reported under: AWS's error code, or a name for what
    /// happened (`Timeout`, `ConnectionError`, `MalformedResponse`, `CredentialsError`,
    /// `HTTP503`).
    pub fn code_name(&self) -> String {
        match (self.bare_code(), self.kind) {
            (Some(c), _) => c.to_string(),
            (None, FailureKind::Timeout) => "Timeout".into(),
            (None, FailureKind::Dispatch) => "ConnectionError".into(),
            (None, FailureKind::Garbled) => "MalformedResponse".into(),
            (None, FailureKind::Credentials) => "CredentialsError".into(),
            (None, FailureKind::Service | FailureKind::Construction) => match self.http_status {
                Some(s) => format!("HTTP{s}"),
                None => "Error".into(),
            },
        }
    }

    /// The class of this failure (see [`classify`]).
    pub fn class(&self) -> ErrorClass {
        classify(self.code.as_deref(), self.http_status, self.kind)
    }

    /// For a mutating call: may it have taken effect? True for timeouts, dispatch
    /// failures (the request may have been sent), 5xx responses (the server may
    /// have failed after acting) and 2xx replies that could not be read (it acted);
    /// false for 4xx responses including throttles and refused credentials (refused
    /// before acting) and for requests never built or never signed.
    pub fn outcome_unknown(&self) -> bool {
        match self.kind {
            FailureKind::Timeout | FailureKind::Dispatch | FailureKind::Garbled => true,
            FailureKind::Construction | FailureKind::Credentials => false,
            // A response without a status should not happen; assume the worst.
            FailureKind::Service => self.http_status.is_none_or(|s| s >= 500),
        }
    }
}

impl fmt::Display for CallError {
    /// `ThrottlingException (HTTP 400): Rate exceeded`; without a code the status or
    /// the kind of failure stands in its place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.bare_code(), self.http_status) {
            (Some(code), Some(status)) => write!(f, "{code} (HTTP {status})")?,
            (Some(code), None) => f.write_str(code)?,
            (None, Some(status)) => write!(f, "HTTP {status}")?,
            (None, None) => f.write_str(match self.kind {
                FailureKind::Service => "service error",
                FailureKind::Timeout => "timeout",
                FailureKind::Dispatch => "dispatch failure",
                FailureKind::Construction => "invalid request",
                FailureKind::Credentials => "credentials not loaded",
                FailureKind::Garbled => "unreadable reply",
            })?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for CallError {}

/// Full-jitter exponential backoff: sleep = random(0, min(cap, base · 2^attempt)).
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Bound of the first delay (attempt 0).
    pub base: Duration,
    /// Largest bound.
    pub cap: Duration,
}

impl Backoff {
    /// The upper bound of the delay of `attempt` (0-based): `min(cap, base · 2^attempt)`,
    /// saturating instead of overflowing.
    pub fn bound(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A delay for `attempt` drawn from the thread-local generator.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }

    /// A delay for `attempt`, uniform in `[0, bound(attempt)]`, drawn from `rng`.
    pub fn delay_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let bound = u64::try_from(self.bound(attempt).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=bound))
    }
}

/// Retry budget of one call: throttles are retried until `max_throttle_wait` (total
/// backoff time spent on throttles for this item) is used up; transient errors up to
/// `max_attempts` attempts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Most attempts when failures are transient (5). Throttled attempts do not count.
    pub max_attempts: u32,
    /// Most total backoff on throttles (10 min). Time queued in the pacer is not counted.
    pub max_throttle_wait: Duration,
    /// Backoff after transient failures (base 200 ms, cap 20 s).
    pub transient: Backoff,
    /// Backoff after throttles (base 100 ms, cap 5 s), on top of the pacer's slowdown.
    pub throttle: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_throttle_wait: Duration::from_secs(600),
            transient: Backoff {
                base: Duration::from_millis(200),
                cap: Duration::from_secs(20),
            },
            throttle: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(5),
            },
        }
    }
}

/// Tracks one call's attempts; tells whether and how long to wait before the next try.
#[derive(Debug, Clone)]
pub struct RetryState {
    policy: RetryPolicy,
    attempts: u32,
    transient: u32,
    throttles: u32,
    throttle_wait: Duration,
}

impl RetryState {
    /// A fresh state for one call under `policy`.
    pub fn new(policy: &RetryPolicy) -> Self {
        RetryState {
            policy: policy.clone(),
            attempts: 0,
            transient: 0,
            throttles: 0,
            throttle_wait: Duration::ZERO,
        }
    }

    /// Records a failed attempt; returns how long to wait before the next one, or
    /// `None` to give up (permanent error, or budget exhausted).
    pub fn next_delay(&mut self, err: &CallError) -> Option<Duration> {
        self.next_delay_with(err, &mut rand::rng())
    }

    /// [`RetryState::next_delay`] with an explicit random generator.
    pub fn next_delay_with(&mut self, err: &CallError, rng: &mut impl Rng) -> Option<Duration> {
        self.attempts += 1;
        match err.class() {
            ErrorClass::Permanent | ErrorClass::Credentials => None,
            ErrorClass::Transient => {
                self.transient += 1;
                if self.transient >= self.policy.max_attempts {
                    return None;
                }
                Some(self.policy.transient.delay_with(self.transient - 1, rng))
            }
            ErrorClass::Throttle => {
                self.throttles += 1;
                let left = self
                    .policy
                    .max_throttle_wait
                    .saturating_sub(self.throttle_wait);
                if left.is_zero() {
                    return None;
                }
                // Truncated to what is left, so the total never exceeds the budget.
                let delay = self
                    .policy
                    .throttle
                    .delay_with(self.throttles - 1, rng)
                    .min(left);
                self.throttle_wait += delay;
                Some(delay)
            }
        }
    }

    /// Failed attempts recorded so far (of every class).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Throttled attempts recorded so far.
    pub fn throttles(&self) -> u32 {
        self.throttles
    }

    /// Transient failures recorded so far (the ones counted against `max_attempts`).
    pub fn transient_failures(&self) -> u32 {
        self.transient
    }

    /// Total backoff handed out for throttles so far.
    pub fn throttle_wait(&self) -> Duration {
        self.throttle_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn svc(code: &str, status: u16) -> CallError {
        CallError::service(Some(code), status, "msg")
    }

    #[test]
    fn throttles_are_recognised_by_code_or_429() {
        assert_eq!(
            svc("ThrottlingException", 400).class(),
            ErrorClass::Throttle
        );
        assert_eq!(
            svc(
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/",
                400
            )
            .class(),
            ErrorClass::Throttle
        );
        assert_eq!(
            svc("com.amazonaws.iot#ThrottlingException", 400).class(),
            ErrorClass::Throttle
        );
        assert_eq!(
            classify(None, Some(429), FailureKind::Service),
            ErrorClass::Throttle
        );
        assert_eq!(svc("SomethingElse", 429).class(), ErrorClass::Throttle);
        for code in THROTTLING_CODES {
            assert_eq!(
                classify(Some(code), Some(400), FailureKind::Service),
                ErrorClass::Throttle,
                "{code}"
            );
        }
    }

    #[test]
    fn server_errors_and_network_failures_are_transient() {
        for status in [500, 502, 503, 504] {
            assert_eq!(
                classify(None, Some(status), FailureKind::Service),
                ErrorClass::Transient,
                "{status}"
            );
        }
        assert_eq!(
            svc("ServiceUnavailableException", 503).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            svc("InternalFailureException", 500).class(),
            ErrorClass::Transient
        );
        assert_eq!(svc("RequestTimeout", 408).class(), ErrorClass::Transient);
        assert_eq!(
            svc("RequestTimeoutException", 408).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            svc("InternalServerException", 500).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            CallError::local(FailureKind::Timeout, "read timed out").class(),
            ErrorClass::Transient
        );
        assert_eq!(
            CallError::local(FailureKind::Dispatch, "connection reset").class(),
            ErrorClass::Transient
        );
    }

    #[test]
    fn everything_else_is_permanent() {
        for (code, status) in [
            ("InvalidRequestException", 400),
            ("ResourceNotFoundException", 404),
            ("CertificateStateException", 406),
            ("TransferConflictException", 409),
            ("TransferAlreadyCompletedException", 410),
            // A resource limit in IoT ("A limit has been exceeded"), not a rate limit.
            ("LimitExceededException", 410),
            ("UnauthorizedException", 401),
        ] {
            assert_eq!(svc(code, status).class(), ErrorClass::Permanent, "{code}");
        }
        assert_eq!(
            classify(None, Some(404), FailureKind::Service),
            ErrorClass::Permanent
        );
        assert_eq!(
            classify(None, Some(501), FailureKind::Service),
            ErrorClass::Permanent
        );
        assert_eq!(
            CallError::local(FailureKind::Construction, "missing id").class(),
            ErrorClass::Permanent
        );
        // Construction wins even over a throttling-looking status.
        assert_eq!(
            classify(None, Some(429), FailureKind::Construction),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn refused_credentials_are_their_own_class_and_never_retried() {
        for code in CREDENTIAL_CODES {
            assert_eq!(
                classify(Some(code), Some(403), FailureKind::Service),
                ErrorClass::Credentials,
                "{code}"
            );
        }
        assert_eq!(
            svc("com.amazonaws.iot#ExpiredTokenException", 403).class(),
            ErrorClass::Credentials
        );
        assert_eq!(
            CallError::local(FailureKind::Credentials, "the SSO session has expired").class(),
            ErrorClass::Credentials
        );
        // A permission missing is about one operation, not the credentials.
        assert_eq!(
            svc("AccessDeniedException", 403).class(),
            ErrorClass::Permanent
        );
        let mut st = RetryState::new(&RetryPolicy::default());
        assert_eq!(st.next_delay(&svc("ExpiredTokenException", 403)), None);
        assert!(!svc("ExpiredTokenException", 403).outcome_unknown());
        assert!(!CallError::local(FailureKind::Credentials, "x").outcome_unknown());
    }

    #[test]
    fn an_unreadable_2xx_is_transient_and_its_outcome_unknown() {
        let e = CallError {
            code: None,
            http_status: Some(200),
            message: "the reply was cut short".into(),
            kind: FailureKind::Garbled,
            request_id: None,
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.outcome_unknown());
        assert_eq!(
            e.to_string(),
            "HTTP 200: the reply was cut short",
            "the status is shown, the body is not"
        );
        let mut st = RetryState::new(&RetryPolicy::default());
        assert!(st.next_delay(&e).is_some(), "a read is retried");
    }

    #[test]
    fn outcome_unknown_only_when_the_call_may_have_acted() {
        assert!(CallError::local(FailureKind::Timeout, "t").outcome_unknown());
        assert!(CallError::local(FailureKind::Dispatch, "reset").outcome_unknown());
        assert!(svc("InternalFailureException", 500).outcome_unknown());
        assert!(CallError::service(None, 503, "").outcome_unknown());
        assert!(!svc("ThrottlingException", 400).outcome_unknown());
        assert!(!svc("LimitExceededException", 410).outcome_unknown());
        assert!(!CallError::service(None, 429, "").outcome_unknown());
        assert!(!svc("InvalidRequestException", 400).outcome_unknown());
        assert!(!CallError::local(FailureKind::Construction, "bad").outcome_unknown());
    }

    #[test]
    fn display_reads_like_the_aws_console() {
        let e = CallError::service(Some("ThrottlingException"), 400, "Rate exceeded")
            .with_request_id("abc");
        assert_eq!(
            e.to_string(),
            "ThrottlingException (HTTP 400): Rate exceeded"
        );
        let e = CallError::service(Some("ThrottlingException:http://x/y"), 400, "Rate exceeded");
        assert_eq!(
            e.to_string(),
            "ThrottlingException (HTTP 400): Rate exceeded"
        );
        assert_eq!(
            CallError::service(None, 429, "Too Many Requests").to_string(),
            "HTTP 429: Too Many Requests"
        );
        assert_eq!(
            CallError::local(FailureKind::Timeout, "read timed out after 30s").to_string(),
            "timeout: read timed out after 30s"
        );
        assert_eq!(
            CallError::local(FailureKind::Dispatch, "").to_string(),
            "dispatch failure"
        );
    }

    #[test]
    fn backoff_stays_within_bound_and_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..=64 {
            let bound = b.bound(attempt);
            let expected = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(Duration::from_secs(5));
            assert_eq!(bound, expected, "attempt {attempt}");
            for _ in 0..200 {
                let d = b.delay_with(attempt, &mut rng);
                assert!(d <= bound, "attempt {attempt}: {d:?} > {bound:?}");
            }
        }
        assert_eq!(b.bound(60), Duration::from_secs(5));
        assert_eq!(b.bound(u32::MAX), Duration::from_secs(5));
        assert!(b.delay(60) <= Duration::from_secs(5));
        // A cap larger than anything base * 2^n can reach does not overflow either.
        let huge = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::MAX,
        };
        assert!(huge.delay(200) <= huge.bound(200));
    }

    #[test]
    fn backoff_mean_is_about_half_the_bound() {
        let b = Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
        };
        let mut rng = StdRng::seed_from_u64(42);
        for attempt in [0, 3, 10] {
            let n = 20_000;
            let total: f64 = (0..n)
                .map(|_| b.delay_with(attempt, &mut rng).as_secs_f64())
                .sum();
            let mean = total / n as f64;
            let half = b.bound(attempt).as_secs_f64() / 2.0;
            assert!(
                (mean - half).abs() < 0.03 * half,
                "attempt {attempt}: mean {mean}, expected ~{half}"
            );
        }
    }

    #[test]
    fn transient_failures_give_up_after_max_attempts() {
        let policy = RetryPolicy::default();
        let mut st = RetryState::new(&policy);
        let mut rng = StdRng::seed_from_u64(1);
        let err = svc("ServiceUnavailableException", 503);
        for i in 0..4 {
            let d = st.next_delay_with(&err, &mut rng).expect("retry");
            assert!(d <= policy.transient.bound(i));
        }
        assert_eq!(st.next_delay_with(&err, &mut rng), None);
        assert_eq!(st.attempts(), 5);
        assert_eq!(st.transient_failures(), 5);
        assert_eq!(st.throttles(), 0);
    }

    #[test]
    fn throttles_do_not_use_the_attempt_budget_but_stop_at_the_wait_budget() {
        let policy = RetryPolicy {
            max_throttle_wait: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let mut st = RetryState::new(&policy);
        let mut rng = StdRng::seed_from_u64(3);
        let throttle = svc("ThrottlingException", 400);
        let transient = CallError::local(FailureKind::Timeout, "t");
        // Interleave: 4 transient failures are allowed whatever the throttles.
        for _ in 0..4 {
            assert!(st.next_delay_with(&transient, &mut rng).is_some());
            for _ in 0..3 {
                assert!(st.next_delay_with(&throttle, &mut rng).is_some());
            }
        }
        assert_eq!(st.throttles(), 12);
        // Now only throttles: they go on until 30 s of backoff were handed out.
        assert!(st.throttle_wait() < Duration::from_secs(30));
        let mut n = 0;
        while st.next_delay_with(&throttle, &mut rng).is_some() {
            n += 1;
            assert!(n < 10_000, "throttle retries never stopped");
        }
        assert_eq!(st.throttle_wait(), Duration::from_secs(30));
        assert!(n >= 1, "gave up too early");
        // The transient budget is still intact: one more transient failure ends it.
        assert_eq!(st.transient_failures(), 4);
        assert_eq!(st.next_delay_with(&transient, &mut rng), None);
    }

    #[test]
    fn throttle_backoff_grows_to_its_cap() {
        let policy = RetryPolicy::default();
        let mut st = RetryState::new(&policy);
        let throttle = svc("ThrottlingException", 400);
        let mut max = Duration::ZERO;
        for _ in 0..100 {
            let d = st.next_delay(&throttle).unwrap();
            assert!(d <= Duration::from_secs(5));
            max = max.max(d);
        }
        assert!(max > Duration::from_secs(4), "{max:?}");
    }

    #[test]
    fn permanent_errors_stop_at_once() {
        let mut st = RetryState::new(&RetryPolicy::default());
        assert_eq!(
            st.next_delay(&svc("TransferAlreadyCompletedException", 410)),
            None
        );
        assert_eq!(st.attempts(), 1);
        let mut st = RetryState::new(&RetryPolicy::default());
        assert_eq!(
            st.next_delay(&CallError::local(FailureKind::Construction, "bad arn")),
            None
        );
    }
}
