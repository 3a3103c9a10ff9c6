//! CA certificates (seeded; DescribeCACertificate): each with its status and its mode
//! (`DEFAULT`: one account per Region may register it; `SNI_ONLY`: any number).

use serde::Serialize;

use super::{random_uuid, Caller, Reply, World};
use crate::arn::ca_arn;
use crate::config::SeedCaCertificate;
use crate::errors::ApiError;
use crate::state::CaCertState;
use crate::validate;

/// A CA certificate.
#[derive(Clone, Debug)]
pub(crate) struct CaCert {
    status: String,
    pub(crate) mode: String,
    pem: String,
    creation: f64,
    generation_id: String,
}

impl CaCert {
    pub(super) fn dump(&self, id: &str) -> CaCertState {
        CaCertState {
            id: id.to_string(),
            status: self.status.clone(),
            certificate_mode: self.mode.clone(),
        }
    }
}

/// DescribeCACertificateResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeCaCertificateResponse<'a> {
    certificate_description: CaCertificateDescription<'a>,
}

/// CACertificateDescription.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaCertificateDescription<'a> {
    certificate_arn: String,
    certificate_id: &'a str,
    status: &'a str,
    certificate_pem: &'a str,
    owned_by: &'a str,
    creation_date: f64,
    auto_registration_status: &'a str,
    last_modified_date: f64,
    customer_version: u64,
    generation_id: &'a str,
    certificate_mode: &'a str,
}

impl World {
    /// Seeds CA certificates (ACTIVE and DEFAULT unless said otherwise).
    pub(super) fn seed_ca_certificates(
        &mut self,
        region: &str,
        account: &str,
        cas: &[SeedCaCertificate],
        now: f64,
    ) -> Result<(), String> {
        for c in cas {
            if !validate::is_certificate_id(&c.id) {
                return Err(format!("invalid CA certificate id {:?}", c.id));
            }
            let status = c.status.clone().unwrap_or_else(|| "ACTIVE".into());
            let mode = c
                .certificate_mode
                .clone()
                .unwrap_or_else(|| "DEFAULT".into());
            if !matches!(status.as_str(), "ACTIVE" | "INACTIVE")
                || !matches!(mode.as_str(), "DEFAULT" | "SNI_ONLY")
            {
                return Err(format!("CA certificate {}: bad status or mode", c.id));
            }
            let pem = c
                .pem
                .clone()
                .unwrap_or_else(|| crate::pem::generated_pem(&c.id));
            self.data_entry(region, account).ca_certs.insert(
                c.id.clone(),
                CaCert {
                    status,
                    mode,
                    pem,
                    creation: now,
                    generation_id: random_uuid(),
                },
            );
        }
        Ok(())
    }

    /// Whether some account of `region` registered CA `ca` in DEFAULT mode.
    pub(super) fn ca_registered_in_default_mode(&self, region: &str, ca: &str) -> bool {
        self.accounts_in(region)
            .any(|(_, d)| d.ca_certs.get(ca).is_some_and(|c| c.mode == "DEFAULT"))
    }

    /// DescribeCACertificate: a CA certificate of the caller's.
    pub(super) fn describe_ca_certificate(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let c = self
            .data(r, a)
            .and_then(|d| d.ca_certs.get(id))
            .ok_or_else(|| {
                ApiError::not_found(format!("The CA certificate {id} does not exist"))
            })?;
        Ok(Reply::of(&DescribeCaCertificateResponse {
            certificate_description: CaCertificateDescription {
                certificate_arn: ca_arn(r, a, id),
                certificate_id: id,
                status: &c.status,
                certificate_pem: &c.pem,
                owned_by: a,
                creation_date: c.creation,
                auto_registration_status: "DISABLE",
                last_modified_date: c.creation,
                customer_version: 1,
                generation_id: &c.generation_id,
                certificate_mode: &c.mode,
            },
        }))
    }
}
