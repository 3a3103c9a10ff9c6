//! A certificate as its owner's account stores it ([`Cert`]) and the
//! operations on the certificate itself: DescribeCertificate,
//! UpdateCertificate, ListCertificates (and ListCertificatesByCA's listing)
//! and RegisterCertificateWithoutCA, with their wire shapes.
//!
//! Transfers are in `transfers`, attached policies and things in
//! `attachments`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;

use super::paging::Page;
use super::{cert_arn, random_uuid, Caller, Reply, World};
use crate::behaviour::{Behaviour, SourceAfterAccept};
use crate::errors::ApiError;
use crate::state::CertState;

/// One certificate as stored in its owner's account.
#[derive(Clone, Debug)]
pub(crate) struct Cert {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) region: String,
    pub(super) status: String,
    /// Creation order in the whole world: the listings' sort key.
    pub(super) seq: u64,
    pub(super) creation: f64,
    pub(super) last_modified: f64,
    pub(super) customer_version: u64,
    pub(super) generation_id: String,
    pub(super) previous_owner: Option<String>,
    pub(super) pending_target: Option<String>,
    pub(super) transfer_message: Option<String>,
    pub(super) transfer_date: Option<f64>,
    pub(super) accept_date: Option<f64>,
    pub(super) reject_date: Option<f64>,
    pub(super) reject_reason: Option<String>,
    pub(super) policies: BTreeSet<String>,
    pub(super) things: BTreeSet<String>,
    /// The thing attached with `thingPrincipalType` EXCLUSIVE_THING (then the only one).
    pub(super) exclusive: Option<String>,
    pub(crate) ca_certificate_id: Option<String>,
    pub(crate) mode: String,
    pub(crate) pem: String,
    /// Detached policies that still count as attached until the instant.
    pub(super) lingering_policies: BTreeMap<String, Instant>,
    /// Detached things that still count as attached until the instant.
    pub(super) lingering_things: BTreeMap<String, Instant>,
}

/// DescribeCertificateResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeCertificateResponse<'a> {
    certificate_description: CertificateDescription<'a>,
}

/// CertificateDescription: a certificate with its transfer data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateDescription<'a> {
    certificate_arn: String,
    certificate_id: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_certificate_id: Option<&'a str>,
    certificate_pem: &'a str,
    owned_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_owned_by: Option<&'a str>,
    creation_date: f64,
    last_modified_date: f64,
    customer_version: u64,
    /// Always present, empty before any transfer.
    transfer_data: TransferData<'a>,
    generation_id: &'a str,
    validity: CertificateValidity,
    certificate_mode: &'a str,
}

/// TransferData: the last transfer's message, dates and reject reason.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reject_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accept_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reject_date: Option<f64>,
}

/// CertificateValidity.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateValidity {
    not_before: f64,
    not_after: f64,
}

/// Certificate: one entry of ListCertificates and ListCertificatesByCA.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Certificate<'a> {
    certificate_arn: String,
    certificate_id: &'a str,
    status: &'a str,
    certificate_mode: &'a str,
    creation_date: f64,
}

/// ListCertificatesResponse (ListCertificatesByCAResponse has the same members).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListCertificatesResponse<'a> {
    certificates: Vec<Certificate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

/// RegisterCertificateWithoutCAResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterCertificateWithoutCaResponse<'a> {
    certificate_arn: &'a str,
    certificate_id: &'a str,
}

/// `names` plus the lingering ones whose window has not passed.
fn effective(
    names: &BTreeSet<String>,
    lingering: &BTreeMap<String, Instant>,
    now: Instant,
) -> BTreeSet<String> {
    let mut all = names.clone();
    all.extend(
        lingering
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(n, _)| n.clone()),
    );
    all
}

impl Cert {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Attached policies, detached ones still propagating included.
    pub(crate) fn effective_policies(&self, now: Instant) -> BTreeSet<String> {
        effective(&self.policies, &self.lingering_policies, now)
    }

    /// Attached things, detached ones still propagating included.
    pub(crate) fn effective_things(&self, now: Instant) -> BTreeSet<String> {
        effective(&self.things, &self.lingering_things, now)
    }

    /// Whether its status is `status`.
    pub(crate) fn status_is(&self, status: &str) -> bool {
        self.status == status
    }

    /// Whether `account` owns it (and it is not on its way to another account).
    pub(crate) fn owned_by(&self, account: &str) -> bool {
        self.owner == account && self.pending_target.is_none()
    }

    /// The policies attached to it.
    pub(crate) fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(String::as_str)
    }

    pub(crate) fn has_thing(&self, thing: &str) -> bool {
        self.things.contains(thing)
    }

    /// The thing attached exclusively, if any.
    pub(crate) fn exclusive_thing(&self) -> Option<&str> {
        self.exclusive.as_deref()
    }

    pub(super) fn arn(&self) -> String {
        cert_arn(&self.region, &self.owner, &self.id)
    }

    /// Key that orders certificates by creation, unique per listing.
    pub(super) fn list_key(&self) -> String {
        format!("{:016x}{}", self.seq, self.id)
    }

    /// Records a change: AWS bumps `customerVersion` and `lastModifiedDate`.
    pub(super) fn touch(&mut self, now: f64) {
        self.last_modified = now;
        self.customer_version += 1;
    }

    /// This account received it by an accepted transfer (and still has it).
    pub(super) fn accepted_here(&self) -> bool {
        self.pending_target.is_none() && self.accept_date.is_some() && self.previous_owner.is_some()
    }

    /// DescribeCertificate's answer.
    fn describe_reply(&self) -> Reply {
        let description = CertificateDescription {
            certificate_arn: self.arn(),
            certificate_id: &self.id,
            status: &self.status,
            ca_certificate_id: self.ca_certificate_id.as_deref(),
            certificate_pem: &self.pem,
            owned_by: &self.owner,
            previous_owned_by: self.previous_owner.as_deref(),
            creation_date: self.creation,
            last_modified_date: self.last_modified,
            customer_version: self.customer_version,
            transfer_data: TransferData {
                transfer_message: self.transfer_message.as_deref(),
                reject_reason: self.reject_reason.as_deref(),
                transfer_date: self.transfer_date,
                accept_date: self.accept_date,
                reject_date: self.reject_date,
            },
            generation_id: &self.generation_id,
            // a plausible window around the creation: a day before, ten years after
            validity: CertificateValidity {
                not_before: self.creation - 86_400.0,
                not_after: self.creation + 10.0 * 365.0 * 86_400.0,
            },
            certificate_mode: &self.mode,
        };
        Reply::of(&DescribeCertificateResponse {
            certificate_description: description,
        })
    }

    fn summary(&self) -> Certificate<'_> {
        Certificate {
            certificate_arn: self.arn(),
            certificate_id: &self.id,
            status: &self.status,
            certificate_mode: &self.mode,
            creation_date: self.creation,
        }
    }

    /// The certificate as `/_sim/state` shows it.
    pub(super) fn dump(&self) -> CertState {
        CertState {
            id: self.id.clone(),
            arn: self.arn(),
            status: self.status.clone(),
            owner: self.owner.clone(),
            previous_owner: self.previous_owner.clone(),
            pending_target: self.pending_target.clone(),
            transfer_message: self.transfer_message.clone(),
            reject_reason: self.reject_reason.clone(),
            policies: self.policies.iter().cloned().collect(),
            things: self.things.iter().cloned().collect(),
            exclusive_thing: self.exclusive.clone(),
            ca_certificate_id: self.ca_certificate_id.clone(),
            certificate_mode: self.mode.clone(),
            creation_date: self.creation,
        }
    }
}

impl World {
    /// DescribeCertificate: an owned or incoming certificate; the source
    /// after an accept as the switch says.
    pub(super) fn describe(
        &self,
        caller: &Caller,
        id: &str,
        rules: &Behaviour,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let data = self.data(&caller.region, &caller.account);
        if let Some(cert) = data.and_then(|d| d.certs.get(id)) {
            return Ok(cert.describe_reply());
        }
        if let Some(cert) = self.incoming_cert(caller, id) {
            return Ok(cert.describe_reply());
        }
        let not_found = || ApiError::not_found(format!("The certificate {id} does not exist"));
        // the source after the target accepted: UNCONFIRMED, a switch
        let Some((target, accepted)) = data.and_then(|d| d.tombstones.get(id)) else {
            return Err(not_found());
        };
        match rules.source_after_accept {
            SourceAfterAccept::NotFound => Err(not_found()),
            SourceAfterAccept::AccessDenied => Err(ApiError::access_denied(
                &caller.region,
                &caller.account,
                "DescribeCertificate",
                &cert_arn(&caller.region, &caller.account, id),
            )),
            SourceAfterAccept::Unauthorized => Err(ApiError::unauthorized(format!(
                "The certificate {id} is owned by another account"
            ))),
            SourceAfterAccept::Visible => {
                let within = rules
                    .source_visible_for
                    .is_none_or(|d| instant.duration_since(*accepted) < d);
                match self
                    .data(&caller.region, target)
                    .and_then(|d| d.certs.get(id))
                {
                    Some(cert) if within => Ok(cert.describe_reply()),
                    _ => Err(not_found()),
                }
            }
        }
    }

    /// UpdateCertificate.
    pub(super) fn update(
        &mut self,
        caller: &Caller,
        id: &str,
        new_status: &str,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let pending_incoming = self.incoming_cert(caller, id).is_some();
        let owned = self
            .data_mut(&caller.region, &caller.account)
            .and_then(|d| d.certs.get_mut(id));
        match owned {
            Some(cert) => {
                if cert.status == "PENDING_TRANSFER" {
                    return Err(ApiError::certificate_state(
                        "Certificate is pending transfer and cannot be updated",
                    ));
                }
                if cert.status == "REVOKED" && new_status != "REVOKED" {
                    return Err(ApiError::certificate_state(
                        "A revoked certificate cannot change status",
                    ));
                }
                if cert.status != new_status {
                    cert.status = new_status.to_string();
                    cert.touch(now);
                }
                Ok(Reply::Empty)
            }
            None if pending_incoming => Err(ApiError::certificate_state(
                "Certificate is pending transfer and cannot be updated",
            )),
            None => Err(ApiError::not_found(format!(
                "The certificate {id} does not exist"
            ))),
        }
    }

    /// ListCertificates.
    pub(crate) fn list_certificates(
        &self,
        caller: &Caller,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        self.list_certificates_where(caller, page, |_| true)
    }

    /// ListCertificates / ListCertificatesByCA: owned and incoming certificates.
    pub(crate) fn list_certificates_where(
        &self,
        caller: &Caller,
        page: &Page,
        keep: impl Fn(&Cert) -> bool,
    ) -> Result<Reply, ApiError> {
        let mut items: Vec<(String, Certificate<'_>)> = Vec::new();
        if let Some(d) = self.data(&caller.region, &caller.account) {
            for cert in d.certs.values().filter(|c| keep(c)) {
                items.push((cert.list_key(), cert.summary()));
            }
            for id in d.incoming.keys() {
                if let Some(cert) = self.incoming_cert(caller, id) {
                    if !d.certs.contains_key(id) && keep(cert) {
                        items.push((cert.list_key(), cert.summary()));
                    }
                }
            }
        }
        let (certificates, next_marker) = page.of(items);
        Ok(Reply::of(&ListCertificatesResponse {
            certificates,
            next_marker,
        }))
    }

    /// RegisterCertificateWithoutCA: the id is the SHA-256 of the DER bytes;
    /// the same certificate may live in several accounts at once (unless the
    /// registration switches refuse it, see [`World::registration_refusal`]).
    pub(crate) fn register_without_ca(
        &mut self,
        caller: &Caller,
        pem: &str,
        status: &str,
        rules: &Behaviour,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let id = crate::pem::certificate_id_of(pem).map_err(ApiError::certificate_validation)?;
        let (region, account) = (caller.region.clone(), caller.account.clone());
        let arn = cert_arn(&region, &account, &id);
        if self
            .data(&region, &account)
            .is_some_and(|d| d.certs.contains_key(&id))
            || self.incoming_cert(caller, &id).is_some()
        {
            return Err(ApiError::already_exists(format!(
                "The certificate is already provisioned or registered: {arn}"
            )));
        }
        if let Some(refusal) = self.registration_refusal(&region, &id, rules) {
            return Err(refusal);
        }
        self.next_seq += 1;
        let cert = Cert {
            id: id.clone(),
            owner: account.clone(),
            region: region.clone(),
            status: status.to_string(),
            seq: self.next_seq,
            creation: now,
            last_modified: now,
            customer_version: 1,
            generation_id: random_uuid(),
            previous_owner: None,
            pending_target: None,
            transfer_message: None,
            transfer_date: None,
            accept_date: None,
            reject_date: None,
            reject_reason: None,
            policies: BTreeSet::new(),
            things: BTreeSet::new(),
            exclusive: None,
            ca_certificate_id: None,
            mode: "SNI_ONLY".to_string(),
            pem: pem.to_string(),
            lingering_policies: BTreeMap::new(),
            lingering_things: BTreeMap::new(),
        };
        let d = self.data_entry(&region, &account);
        d.tombstones.remove(&id);
        d.certs.insert(id.clone(), cert);
        Ok(Reply::of(&RegisterCertificateWithoutCaResponse {
            certificate_arn: &arn,
            certificate_id: &id,
        }))
    }

    /// Why another account may not register certificate `id` (UNCONFIRMED rules of the 2021
    /// developer guide, each a switch): an account of the Region holds it signed by a CA
    /// registered in DEFAULT mode, or issued by AWS IoT itself (no CA, DEFAULT mode: the
    /// Amazon root CA counts as registered).
    fn registration_refusal(&self, region: &str, id: &str, rules: &Behaviour) -> Option<ApiError> {
        for (holder, d) in self.accounts_in(region) {
            let Some(c) = d.certs.get(id) else { continue };
            match &c.ca_certificate_id {
                Some(ca)
                    if rules.register_refuses_default_ca
                        && self.ca_registered_in_default_mode(region, ca) =>
                {
                    return Some(ApiError::invalid_request(format!(
                        "The certificate is signed by CA certificate {ca}, which is registered \
                         with AWS IoT in DEFAULT mode (account {holder}): it cannot be registered \
                         in another account"
                    )));
                }
                None if rules.register_refuses_aws_issued && c.mode == "DEFAULT" => {
                    return Some(ApiError::invalid_request(format!(
                        "The certificate was issued by AWS IoT (account {holder}): it cannot be \
                         registered in another account"
                    )));
                }
                _ => {}
            }
        }
        None
    }
}
