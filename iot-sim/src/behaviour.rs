//! The switches for AWS behaviour that no public source settles
//! (UNCONFIRMED in the project's API notes), and the propagation delay. Each
//! default is the most likely AWS answer; the other variants let a tool be
//! tested against every answer it must handle.

use std::str::FromStr;
use std::time::Duration;

use crate::errors::ApiError;

/// Parses a kebab-case switch value against its list of names.
fn pick<T: Copy>(s: &str, what: &str, table: &[(&str, T)]) -> Result<T, String> {
    table
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown {what} {s:?} (expected one of {})",
                names.join(", ")
            )
        })
}

/// What the source's DescribeCertificate answers once the target accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceAfterAccept {
    /// 404 ResourceNotFoundException (default).
    #[default]
    NotFound,
    /// 403 AccessDeniedException (IAM message, the certificate's ARN in the source).
    AccessDenied,
    /// 401 UnauthorizedException.
    Unauthorized,
    /// Still visible, as the target now has it (owner and ARN of the target),
    /// for [`Behaviour::source_visible_for`] after the accept (or always).
    Visible,
}

impl FromStr for SourceAfterAccept {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pick(
            s,
            "source-describe-after-accept answer",
            &[
                ("not-found", SourceAfterAccept::NotFound),
                ("access-denied", SourceAfterAccept::AccessDenied),
                ("unauthorized", SourceAfterAccept::Unauthorized),
                ("visible", SourceAfterAccept::Visible),
            ],
        )
    }
}

/// What Accept/RejectCertificateTransfer of an already accepted certificate answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompletedTransferAnswer {
    /// 410 TransferAlreadyCompletedException (default).
    #[default]
    TransferAlreadyCompleted,
    /// 409 TransferConflictException.
    TransferConflict,
    /// 400 InvalidRequestException.
    InvalidRequest,
    /// 404 ResourceNotFoundException.
    NotFound,
}

impl CompletedTransferAnswer {
    /// The error.
    pub fn error(self) -> ApiError {
        let msg = "The certificate transfer was already accepted";
        match self {
            CompletedTransferAnswer::TransferAlreadyCompleted => {
                ApiError::transfer_already_completed(msg)
            }
            CompletedTransferAnswer::TransferConflict => ApiError::transfer_conflict(msg),
            CompletedTransferAnswer::InvalidRequest => ApiError::invalid_request(msg),
            CompletedTransferAnswer::NotFound => ApiError::not_found(msg),
        }
    }
}

impl FromStr for CompletedTransferAnswer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pick(
            s,
            "accept-completed answer",
            &[
                (
                    "transfer-already-completed",
                    CompletedTransferAnswer::TransferAlreadyCompleted,
                ),
                (
                    "transfer-conflict",
                    CompletedTransferAnswer::TransferConflict,
                ),
                ("invalid-request", CompletedTransferAnswer::InvalidRequest),
                ("not-found", CompletedTransferAnswer::NotFound),
            ],
        )
    }
}

/// What TransferCertificate of a certificate already PENDING_TRANSFER answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PendingTransferAnswer {
    /// 409 TransferConflictException (default).
    #[default]
    TransferConflict,
    /// 406 CertificateStateException.
    CertificateState,
}

impl PendingTransferAnswer {
    /// The error.
    pub fn error(self) -> ApiError {
        let msg = "The certificate is already pending transfer";
        match self {
            PendingTransferAnswer::TransferConflict => ApiError::transfer_conflict(msg),
            PendingTransferAnswer::CertificateState => ApiError::certificate_state(msg),
        }
    }
}

impl FromStr for PendingTransferAnswer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pick(
            s,
            "transfer-pending answer",
            &[
                ("transfer-conflict", PendingTransferAnswer::TransferConflict),
                ("certificate-state", PendingTransferAnswer::CertificateState),
            ],
        )
    }
}

/// Which account ListOutgoingCertificates' `certificateArn` carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutgoingArnAccount {
    /// The target's (default; as the AWS CLI's own example of
    /// list-outgoing-certificates shows, and as TransferCertificate's
    /// `transferredCertificateArn` does).
    #[default]
    Target,
    /// The source's (the certificate's ARN while it is still owned there).
    Source,
}

impl FromStr for OutgoingArnAccount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        pick(
            s,
            "outgoing ARN account",
            &[
                ("target", OutgoingArnAccount::Target),
                ("source", OutgoingArnAccount::Source),
            ],
        )
    }
}

/// The behaviour switches the world's operations read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behaviour {
    /// TransferCertificate refuses (409) a certificate with things attached.
    pub things_block_transfer: bool,
    /// How long a detached policy or thing still counts as attached.
    pub propagation_delay: Duration,
    /// The source's DescribeCertificate after the accept.
    pub source_after_accept: SourceAfterAccept,
    /// With [`SourceAfterAccept::Visible`]: for how long (`None` = always).
    pub source_visible_for: Option<Duration>,
    /// Accept/Reject of an already accepted certificate.
    pub completed_transfer_answer: CompletedTransferAnswer,
    /// TransferCertificate of a PENDING_TRANSFER certificate.
    pub pending_transfer_answer: PendingTransferAnswer,
    /// The account in ListOutgoingCertificates' ARNs.
    pub outgoing_arn_account: OutgoingArnAccount,
    /// Most policies attached to one thing group.
    pub policies_per_group: usize,
    /// RegisterCertificateWithoutCA refuses a certificate whose CA is registered in
    /// DEFAULT mode in the Region.
    pub register_refuses_default_ca: bool,
    /// RegisterCertificateWithoutCA refuses a certificate issued by AWS IoT.
    pub register_refuses_aws_issued: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            things_block_transfer: true,
            propagation_delay: Duration::ZERO,
            source_after_accept: SourceAfterAccept::default(),
            source_visible_for: None,
            completed_transfer_answer: CompletedTransferAnswer::default(),
            pending_transfer_answer: PendingTransferAnswer::default(),
            outgoing_arn_account: OutgoingArnAccount::default(),
            policies_per_group: crate::world::MAX_POLICIES_PER_TARGET,
            register_refuses_default_ca: false,
            register_refuses_aws_issued: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            "visible".parse::<SourceAfterAccept>(),
            Ok(SourceAfterAccept::Visible)
        );
        assert_eq!(
            "invalid-request".parse::<CompletedTransferAnswer>(),
            Ok(CompletedTransferAnswer::InvalidRequest)
        );
        assert_eq!(
            "certificate-state".parse::<PendingTransferAnswer>(),
            Ok(PendingTransferAnswer::CertificateState)
        );
        assert_eq!(
            "source".parse::<OutgoingArnAccount>(),
            Ok(OutgoingArnAccount::Source)
        );
        assert!("nope".parse::<OutgoingArnAccount>().is_err());
        assert_eq!(PendingTransferAnswer::default().error().status, 409);
        assert_eq!(CompletedTransferAnswer::default().error().status, 410);
    }
}
