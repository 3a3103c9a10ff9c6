//! The circuit breaker: a run stops early, and says why in one message, when its failures
//! are systemic rather than the certificates' own:
//!
//! - AWS refuses the caller's credentials (expired, revoked, badly signed), or they cannot be
//!   loaded (an expired SSO session, a failing `credential_process`): nothing can succeed
//!   until they are renewed, so no call with them is sent any more;
//! - the same operation fails with the same error code for [`BreakerSettings::threshold`]
//!   certificates in a row, with no success of that operation in between (a missing IAM
//!   permission, a wrong region, AWS failing);
//! - AWS has answered nothing for [`BreakerSettings::max_unreachable`];
//! - the canary (a lane's first certificates) fails on a mutating call: its threshold is 1;
//! - the run's first certificates ([`OPENING`] of them, or all of a smaller run) are all
//!   refused by the tool before any change for the same reason (a flag, a policy, the
//!   account): one message names the fix, and nothing else is tried.
//!
//! The call context feeds it every answer and every call that got none; the pipeline feeds
//! it every item that failed on a call. Once tripped it stays tripped: the run admits no new
//! item, items in flight stop before their next change (rolled back where calls still
//! work), and the run ends with the trip's exit code and [`Trip::describe`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ExitCode;
use crate::ledger::Wait;
use crate::pacer::{Operation, Scope};
use crate::retry::{AwsCode, CallError, ErrorClass, FailureKind};

/// When the breaker trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Certificates in a row that fail on the same operation with the same error code
    /// (`--trip-after`, 10); 0 never trips on a streak.
    pub threshold: u32,
    /// How long AWS may answer nothing at all (`--max-unreachable`, 60 s); zero never trips.
    pub max_unreachable: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            threshold: 10,
            max_unreachable: Duration::from_secs(60),
        }
    }
}

/// The call an item failed on, as the breaker and the canary need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCall {
    /// The certificate.
    pub certificate_id: String,
    /// The operation that failed.
    pub op: Operation,
    /// Its last error.
    pub error: CallError,
    /// `Some(true)`: what prepare changed was undone; `Some(false)`: changes are left;
    /// `None`: nothing had been changed.
    pub rolled_back: Option<bool>,
}

impl FailedCall {
    /// The error code it is counted under (AWS's, or the tool's name for what happened).
    pub fn code(&self) -> String {
        self.error.code_name()
    }
}

/// Why the breaker tripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trip {
    /// AWS refused the credentials of `whose` (or they could not be loaded).
    Credentials {
        /// Whose credentials, for people: `profile source`, ...
        whose: String,
        /// The call that found out.
        op: Operation,
        /// AWS's answer (or the credential provider's error).
        error: CallError,
    },
    /// The same operation failed the same way for `count` certificates in a row.
    Repeated {
        /// The last of them.
        call: FailedCall,
        /// How many in a row.
        count: u32,
    },
    /// A lane's canary failed on a mutating call.
    Canary {
        /// The canary's failure.
        call: FailedCall,
    },
    /// AWS answered nothing for `silent_for`.
    Unreachable {
        /// How long.
        silent_for: Duration,
        /// The last error seen.
        error: CallError,
    },
    /// The run's first `count` certificates were all refused before any change, waiting
    /// for the same fix.
    Refused {
        /// What they wait for.
        wait: Wait,
        /// What exactly, merged (the flags, the policies, the accounts).
        needs: Vec<String>,
        /// How many.
        count: u32,
    },
}

/// The certificates of a run's opening: when this many are all refused for the same reason
/// before anything else ends, the run stops.
pub const OPENING: u32 = 10;

impl Trip {
    /// The exit code the run ends with: 1 when the cause is the configuration (credentials,
    /// permissions, the region), 4 when it may go away by itself (AWS failing or out of
    /// reach: run again later).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            // Nothing was done: the command line (or the credentials it names) needs a fix.
            Trip::Refused { .. } => ExitCode::Invalid,
            Trip::Credentials { .. } => ExitCode::Fatal,
            Trip::Unreachable { .. } => ExitCode::Stopped,
            Trip::Repeated { call, .. } | Trip::Canary { call } => match call.error.class() {
                ErrorClass::Permanent | ErrorClass::Credentials => ExitCode::Fatal,
                ErrorClass::Transient | ErrorClass::Throttle => ExitCode::Stopped,
            },
        }
    }

    /// Whether AWS calls can still succeed (and in-flight items be rolled back).
    pub fn allows_calls(&self) -> bool {
        !matches!(self, Trip::Credentials { .. } | Trip::Unreachable { .. })
    }

    /// Whether retrying transient errors is pointless now (AWS is failing as a whole).
    pub fn retries_useless(&self) -> bool {
        match self {
            Trip::Unreachable { .. } => true,
            Trip::Repeated { call, .. } => call.error.class() == ErrorClass::Transient,
            Trip::Credentials { .. } | Trip::Canary { .. } | Trip::Refused { .. } => false,
        }
    }

    /// One message for people: what happened, the likely cause, what to do.
    pub fn describe(&self) -> String {
        match self {
            Trip::Credentials { whose, op, error } => {
                let what = match error.kind {
                    FailureKind::Credentials => format!("the credentials of {whose} could not be loaded ({})", error.message),
                    _ => format!("AWS refused the credentials of {whose} on {op} ({error})"),
                };
                format!("{what}: the run stopped; refresh the credentials (e.g. `aws sso login`, or new keys) and run the same command again")
            }
            Trip::Repeated { call, count } => format!(
                "{} on {} for {} in a row: {}; the run stopped (certificates not started yet stay pending)",
                call.code(),
                call.op,
                crate::output::count(*count, "certificate"),
                likely_cause(call)
            ),
            Trip::Canary { call } => {
                let undone = match call.rolled_back {
                    Some(true) => "; it was rolled back to its state before the run",
                    Some(false) => "; it was NOT rolled back: `cancel --restore` restores it",
                    None => "",
                };
                format!(
                    "{} on {} for the canary certificate {} ({}): {}{undone}; no other certificate of its region was started (it is recorded as failed: the next run starts with the next certificate)",
                    call.code(),
                    call.op,
                    call.certificate_id,
                    call.error,
                    likely_cause(call)
                )
            }
            Trip::Refused { wait, needs, count } => {
                let which = if *count == 1 {
                    "the certificate was".to_string()
                } else {
                    format!("the first {count} certificates were all")
                };
                format!(
                    "{which} refused before any change, for one reason: {}. Nothing was changed in AWS; they are recorded as waiting (not failed), so that command takes them without --retry-failed",
                    wait.fix(needs)
                )
            }
            Trip::Unreachable { silent_for, error } => format!(
                "AWS answered nothing for {} s (last error: {error}): the endpoint is unreachable; the run stopped: run the same command again once it is back (items left in doubt are checked first)",
                silent_for.as_secs()
            ),
        }
    }
}

/// The likely cause of one call failing the same way for many certificates.
fn likely_cause(call: &FailedCall) -> String {
    let op = call.op;
    let service = match op {
        Operation::GetCallerIdentity => "sts",
        _ => "iot",
    };
    match &call.error {
        e if e.is_permission_refusal() => format!("the IAM policy probably lacks {service}:{op}"),
        e if e.is(AwsCode::ResourceNotFound) && op == Operation::DescribeCertificate => {
            "the certificates are not in this account and region: check --profile, --region and the manifest's region column".into()
        }
        _ => match call.error.class() {
            ErrorClass::Throttle => format!(
                "AWS kept throttling {op} beyond --max-throttle-wait: the account's quota is probably lower than --rate; lower --rate or --rate-scale"
            ),
            ErrorClass::Transient => format!(
                "AWS IoT is failing or out of reach ({}); run the same command again later",
                call.error
            ),
            _ => "one cause, not each certificate, is probably at fault: read the failure report before running again".into(),
        },
    }
}

/// The state the breaker keeps.
#[derive(Default)]
struct State {
    /// Per operation: the code of its latest failure and how many items failed with it in a
    /// row (ended by a success of the operation).
    streaks: HashMap<Operation, (String, u32)>,
    /// When AWS last answered anything.
    last_answer: Option<Instant>,
    /// The start of the oldest unanswered request sent since then.
    silent_since: Option<Instant>,
    /// Accounts whose credentials AWS refused: no call is sent with them any more.
    refused: HashSet<String>,
    /// Whose credentials each account's calls use, for the message.
    whose: HashMap<String, String>,
    /// The run's opening, while every item that ended was refused for the same reason.
    opening: Opening,
    trip: Option<Trip>,
}

/// What the run's first items to end have in common.
#[derive(Default)]
enum Opening {
    /// Nothing ended yet.
    #[default]
    Empty,
    /// Every item that ended waits for `wait`.
    Refused {
        wait: Wait,
        needs: BTreeSet<String>,
        count: u32,
    },
    /// Something else ended (or refusals of two kinds): the rule no longer applies.
    Over,
}

/// The breaker of one run, shared by its call context and its pipeline.
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
    tripped: CancellationToken,
}

impl Breaker {
    /// A closed breaker with these settings.
    pub fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            state: Mutex::new(State::default()),
            tripped: CancellationToken::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("breaker lock")
    }

    /// Its settings.
    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// Why it tripped, if it did.
    pub fn trip(&self) -> Option<Trip> {
        self.state().trip.clone()
    }

    /// Whether it tripped.
    pub fn is_tripped(&self) -> bool {
        self.tripped.is_cancelled()
    }

    /// Cancelled when it trips.
    pub fn tripped(&self) -> CancellationToken {
        self.tripped.clone()
    }

    /// Whether transient errors are still worth retrying.
    pub fn retries_useless(&self) -> bool {
        self.state()
            .trip
            .as_ref()
            .is_some_and(Trip::retries_useless)
    }

    /// Names the credentials `account`'s calls use (`profile source`), for the message.
    pub fn name_credentials(&self, account: &str, whose: &str) {
        self.state()
            .whose
            .insert(account.to_string(), whose.to_string());
    }

    /// The first trip wins; later ones are ignored.
    fn trip_with(&self, state: &mut State, trip: Trip) {
        if state.trip.is_none() {
            tracing::debug!("circuit breaker: {trip:?}");
            state.trip = Some(trip);
            self.tripped.cancel();
        }
    }

    /// Trips now (for the pipeline's own reasons, and tests).
    pub fn trip_now(&self, trip: Trip) {
        let mut state = self.state();
        self.trip_with(&mut state, trip);
    }

    /// AWS answered (any HTTP response, error or not): it is reachable.
    pub fn answered(&self) {
        let mut state = self.state();
        state.last_answer = Some(Instant::now());
        state.silent_since = None;
    }

    /// A call of `op` succeeded: its streak of failures ends.
    pub fn succeeded(&self, op: Operation) {
        let mut state = self.state();
        state.streaks.remove(&op);
    }

    /// A request sent at `sent_at` got no answer (timeout, reset, refused connection).
    pub fn unanswered(&self, sent_at: Instant, error: &CallError) {
        let mut state = self.state();
        // An answer to anything since this request was sent shows AWS is reachable.
        if state.last_answer.is_some_and(|a| a >= sent_at) {
            return;
        }
        let since = state.silent_since.map_or(sent_at, |s| s.min(sent_at));
        state.silent_since = Some(since);
        let silent_for = since.elapsed();
        let bound = self.settings.max_unreachable;
        if !bound.is_zero() && silent_for >= bound {
            let trip = Trip::Unreachable {
                silent_for,
                error: error.clone(),
            };
            self.trip_with(&mut state, trip);
        }
    }

    /// AWS refused the credentials `scope`'s calls use (or they could not be loaded).
    pub fn credentials_refused(&self, scope: &Scope, op: Operation, error: &CallError) {
        let mut state = self.state();
        state.refused.insert(scope.account.clone());
        let whose = state
            .whose
            .get(&scope.account)
            .cloned()
            .unwrap_or_else(|| format!("account {}", scope.account));
        let trip = Trip::Credentials {
            whose,
            op,
            error: error.clone(),
        };
        self.trip_with(&mut state, trip);
    }

    /// The error a call in `scope` gets without being sent: its credentials were refused
    /// earlier in the run.
    pub fn refuses(&self, scope: &Scope) -> Option<CallError> {
        let state = self.state();
        if !state.refused.contains(&scope.account) {
            return None;
        }
        Some(CallError::local(
            FailureKind::Credentials,
            "not sent: AWS refused these credentials earlier in the run",
        ))
    }

    /// An item failed on `call`: trips on the threshold-th failure in a row of that
    /// operation with that code.
    pub fn item_failed(&self, call: &FailedCall) {
        if self.settings.threshold == 0 || call.error.class() == ErrorClass::Credentials {
            return;
        }
        let code = call.code();
        let mut state = self.state();
        let streak = state.streaks.entry(call.op).or_insert((code.clone(), 0));
        if streak.0 != code {
            *streak = (code, 0);
        }
        streak.1 += 1;
        let count = streak.1;
        if count >= self.settings.threshold {
            let trip = Trip::Repeated {
                call: call.clone(),
                count,
            };
            self.trip_with(&mut state, trip);
        }
    }

    /// An item was refused before any change, waiting for `wait` (`needs`, exactly): the
    /// [`OPENING`]-th such refusal in a row, for the same reason, from the run's start trips.
    pub fn item_waited(&self, wait: Wait, needs: &[String]) {
        let mut state = self.state();
        let count = match &mut state.opening {
            Opening::Over => return,
            Opening::Empty => {
                state.opening = Opening::Refused {
                    wait,
                    needs: needs.iter().cloned().collect(),
                    count: 1,
                };
                1
            }
            Opening::Refused {
                wait: first,
                needs: all,
                count,
            } if *first == wait => {
                all.extend(needs.iter().cloned());
                *count += 1;
                *count
            }
            Opening::Refused { .. } => {
                state.opening = Opening::Over;
                return;
            }
        };
        if count >= OPENING {
            self.trip_opening(&mut state);
        }
    }

    /// An item ended otherwise than refused (done, failed, in doubt): the opening is over.
    pub fn item_went_on(&self) {
        self.state().opening = Opening::Over;
    }

    /// The run ended (not stopped): if every item it ended was refused for the same reason,
    /// it trips now, however few they were.
    pub fn close_opening(&self) {
        let mut state = self.state();
        if matches!(state.opening, Opening::Refused { .. }) {
            self.trip_opening(&mut state);
        }
    }

    fn trip_opening(&self, state: &mut State) {
        if let Opening::Refused { wait, needs, count } = &state.opening {
            let trip = Trip::Refused {
                wait: *wait,
                needs: needs.iter().cloned().collect(),
                count: *count,
            };
            state.opening = Opening::Over;
            self.trip_with(state, trip);
        }
    }

    /// A canary failed on a mutating call: the threshold is 1.
    pub fn canary_failed(&self, call: &FailedCall) {
        if call.error.class() == ErrorClass::Credentials {
            return;
        }
        let mut state = self.state();
        self.trip_with(&mut state, Trip::Canary { call: call.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(n: u64, op: Operation) -> FailedCall {
        FailedCall {
            certificate_id: format!("{n:064x}"),
            op,
            error: CallError::service(
                Some("AccessDeniedException"),
                403,
                "User: arn:aws:iam::111111111111:user/x is not authorized to perform: iot:DetachThingPrincipal",
            ),
            rolled_back: Some(true),
        }
    }

    #[test]
    fn the_same_failure_for_threshold_items_in_a_row_trips_with_the_issue_s_message() {
        let b = Breaker::new(BreakerSettings::default());
        for n in 0..9 {
            b.item_failed(&denied(n, Operation::DetachThingPrincipal));
            assert!(!b.is_tripped(), "tripped after {}", n + 1);
        }
        b.item_failed(&denied(9, Operation::DetachThingPrincipal));
        let trip = b.trip().expect("tripped at 10");
        assert_eq!(trip.exit_code(), ExitCode::Fatal);
        assert!(trip.allows_calls(), "rollback needs calls");
        let m = trip.describe();
        assert!(
            m.starts_with("AccessDeniedException on DetachThingPrincipal for 10 certificates in a row: the IAM policy probably lacks iot:DetachThingPrincipal"),
            "{m}"
        );
    }

    #[test]
    fn a_success_of_the_operation_or_another_code_starts_the_count_again() {
        let b = Breaker::new(BreakerSettings {
            threshold: 3,
            ..Default::default()
        });
        b.item_failed(&denied(1, Operation::DetachPolicy));
        b.item_failed(&denied(2, Operation::DetachPolicy));
        b.succeeded(Operation::DetachPolicy);
        b.item_failed(&denied(3, Operation::DetachPolicy));
        b.item_failed(&denied(4, Operation::DetachPolicy));
        // Another operation's success does not reset this one.
        b.succeeded(Operation::DescribeCertificate);
        let mut other = denied(5, Operation::DetachPolicy);
        other.error = CallError::service(Some("InvalidRequestException"), 400, "x");
        b.item_failed(&other);
        assert!(!b.is_tripped());
        b.item_failed(&other);
        b.item_failed(&other);
        assert!(matches!(b.trip(), Some(Trip::Repeated { count: 3, .. })));
    }

    #[test]
    fn transient_streaks_exit_4_and_stop_retries() {
        let b = Breaker::new(BreakerSettings {
            threshold: 2,
            ..Default::default()
        });
        let mut f = denied(1, Operation::DescribeCertificate);
        f.error = CallError::service(Some("ServiceUnavailableException"), 503, "down");
        b.item_failed(&f);
        assert!(!b.retries_useless());
        b.item_failed(&f);
        assert_eq!(b.trip().unwrap().exit_code(), ExitCode::Stopped);
        assert!(b.retries_useless());
    }

    #[test]
    fn refused_credentials_trip_at_once_and_block_that_account_s_calls() {
        let b = Breaker::new(BreakerSettings::default());
        b.name_credentials("111111111111", "profile source");
        let scope = Scope::new("111111111111", "us-east-1");
        let other = Scope::new("222222222222", "us-east-1");
        assert!(b.refuses(&scope).is_none());
        let expired = CallError::service(
            Some("ExpiredTokenException"),
            403,
            "The security token included in the request is expired",
        );
        b.credentials_refused(&scope, Operation::DetachPolicy, &expired);
        assert!(b.refuses(&scope).is_some());
        assert!(b.refuses(&other).is_none());
        let trip = b.trip().unwrap();
        assert_eq!(trip.exit_code(), ExitCode::Fatal);
        assert!(!trip.allows_calls());
        let m = trip.describe();
        assert!(m.contains("profile source"), "{m}");
        assert!(m.contains("ExpiredTokenException"), "{m}");
        assert!(m.contains("run the same command again"), "{m}");
        // Credential failures of items never count as a streak.
        let mut f = denied(1, Operation::DetachPolicy);
        f.error = expired;
        let fresh = Breaker::new(BreakerSettings {
            threshold: 1,
            ..Default::default()
        });
        fresh.item_failed(&f);
        fresh.canary_failed(&f);
        assert!(!fresh.is_tripped());
    }

    #[tokio::test(start_paused = true)]
    async fn silence_longer_than_the_bound_trips_and_any_answer_ends_it() {
        let b = Breaker::new(BreakerSettings {
            max_unreachable: Duration::from_secs(60),
            ..Default::default()
        });
        let reset = CallError::local(FailureKind::Dispatch, "connection reset");
        let t0 = Instant::now();
        tokio::time::advance(Duration::from_secs(30)).await;
        b.unanswered(t0, &reset);
        assert!(!b.is_tripped());
        // An answer to a request sent later shows AWS reachable: the silence starts again.
        b.answered();
        tokio::time::advance(Duration::from_secs(40)).await;
        b.unanswered(t0, &reset);
        assert!(
            !b.is_tripped(),
            "a request sent before the answer proves nothing"
        );
        let t1 = Instant::now();
        tokio::time::advance(Duration::from_secs(59)).await;
        b.unanswered(t1, &reset);
        assert!(!b.is_tripped());
        tokio::time::advance(Duration::from_secs(2)).await;
        b.unanswered(Instant::now(), &reset);
        let trip = b.trip().expect("61 s without an answer");
        assert_eq!(trip.exit_code(), ExitCode::Stopped);
        assert!(trip.retries_useless());
        assert!(
            trip.describe().contains("unreachable"),
            "{}",
            trip.describe()
        );
    }

    #[test]
    fn the_canary_trips_on_its_first_mutating_failure_and_the_first_trip_wins() {
        let b = Breaker::new(BreakerSettings::default());
        b.canary_failed(&denied(7, Operation::DetachThingPrincipal));
        b.item_failed(&denied(8, Operation::TransferCertificate));
        let Some(Trip::Canary { call }) = b.trip() else {
            panic!("{:?}", b.trip())
        };
        assert_eq!(call.certificate_id, format!("{:064x}", 7));
        let m = Trip::Canary { call }.describe();
        assert!(
            m.contains("AccessDeniedException on DetachThingPrincipal for the canary certificate"),
            "{m}"
        );
        assert!(m.contains("rolled back"), "{m}");
        assert!(m.contains("iot:DetachThingPrincipal"), "{m}");
    }
}
