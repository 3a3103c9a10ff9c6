//! The read-only look at a certificate that comes before any change: `transfer` acts on what
//! it shows, and `plan` reports the same, so that the plan is what the transfer will do.

use crate::iot::{CallFailure, CertificateInfo, Iot};
use crate::manifest::ManifestRow;

/// What the source account shows of a row's certificate.
pub enum Observed {
    /// AWS does not know the certificate in this account and region.
    NotFound,
    /// The certificate already belongs to the row's target account.
    SameAccount(CertificateInfo),
    /// PENDING_TRANSFER (to whom is for the caller to find out).
    Pending(CertificateInfo),
    /// REVOKED or another status that cannot be transferred.
    NotTransferable(CertificateInfo),
    /// ACTIVE or INACTIVE, with what is attached to it.
    Transferable {
        /// DescribeCertificate's answer.
        info: CertificateInfo,
        /// Attached policies (all pages).
        policies: Vec<String>,
        /// Attached things (all pages).
        things: Vec<String>,
    },
}

/// DescribeCertificate, then ListAttachedPolicies and ListPrincipalThings for a certificate
/// that can be transferred.
pub async fn observe(iot: &Iot, row: &ManifestRow) -> Result<Observed, CallFailure> {
    let Some(info) = iot.describe(&row.certificate_id).await? else {
        return Ok(Observed::NotFound);
    };
    if info.owner.as_deref() == Some(row.target_account.as_str()) {
        return Ok(Observed::SameAccount(info));
    }
    if info.status == crate::certificate::CertStatus::PendingTransfer {
        return Ok(Observed::Pending(info));
    }
    if !info.status.is_transferable() {
        return Ok(Observed::NotTransferable(info));
    }
    let policies = iot.attached_policies(&info.arn).await?;
    let things = iot.principal_things(&info.arn).await?;
    Ok(Observed::Transferable {
        info,
        policies,
        things,
    })
}
