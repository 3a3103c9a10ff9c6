//! Transfers between accounts: TransferCertificate by the owner, Accept /
//! RejectCertificateTransfer by the target, CancelCertificateTransfer by the
//! source, and ListOutgoingCertificates.
//!
//! While pending, the certificate stays in its source's account with
//! `pending_target` set; the target's account records the incoming transfer
//! (id -> source). An accept moves the certificate and leaves a tombstone in
//! the source, so that its later calls get the answers of a completed transfer.

use std::time::Instant;

use serde::Serialize;

use super::certificates::Cert;
use super::paging::{select_page, Page};
use super::{cert_arn, Caller, Reply, World};
use crate::behaviour::{Behaviour, OutgoingArnAccount};
use crate::errors::ApiError;

/// TransferCertificateResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferCertificateResponse {
    /// The ARN the certificate will have in the target account.
    transferred_certificate_arn: String,
}

/// OutgoingCertificate: a transfer pending in the source's listing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutgoingCertificate<'a> {
    certificate_arn: String,
    certificate_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transferred_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_message: Option<&'a str>,
    creation_date: f64,
}

/// ListOutgoingCertificatesResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListOutgoingCertificatesResponse<'a> {
    outgoing_certificates: Vec<OutgoingCertificate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

impl<'a> OutgoingCertificate<'a> {
    /// `cert` as its source lists it; the ARN's account is a switch.
    fn of(cert: &'a Cert, arn_account: OutgoingArnAccount) -> Self {
        let account = match (arn_account, &cert.pending_target) {
            (OutgoingArnAccount::Target, Some(t)) => t.as_str(),
            _ => cert.owner.as_str(),
        };
        OutgoingCertificate {
            certificate_arn: cert_arn(&cert.region, account, &cert.id),
            certificate_id: &cert.id,
            transferred_to: cert.pending_target.as_deref(),
            transfer_date: cert.transfer_date,
            transfer_message: cert.transfer_message.as_deref(),
            creation_date: cert.creation,
        }
    }
}

/// A marker of the outgoing listing back as its key (creation sequence, id), when it has
/// the form `list_key` gives (16 lowercase hex digits first: then the two order alike).
fn split_list_key(marker: &str) -> Option<(u64, &str)> {
    let (seq, id) = (marker.get(..16)?, marker.get(16..)?);
    if !seq
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    Some((u64::from_str_radix(seq, 16).ok()?, id))
}

impl World {
    /// The source's certificate pending transfer to `caller`, if the caller
    /// has such an incoming transfer.
    pub(super) fn incoming_cert(&self, caller: &Caller, id: &str) -> Option<&Cert> {
        let source = self
            .data(&caller.region, &caller.account)?
            .incoming
            .get(id)?;
        let cert = self.data(&caller.region, source)?.certs.get(id)?;
        (cert.pending_target.as_deref() == Some(caller.account.as_str())).then_some(cert)
    }

    /// ListOutgoingCertificates: the caller's certificates pending transfer.
    pub(super) fn list_outgoing(
        &self,
        caller: &Caller,
        page: &Page,
        rules: &Behaviour,
    ) -> Result<Reply, ApiError> {
        // Keys as (creation sequence, id): they order as `list_key` does, without building
        // a string per certificate; only the page's certificates are described. A listing
        // of many pending transfers would otherwise cost the simulator a sort of all of
        // them per page.
        let pending: Vec<((u64, &str), &Cert)> = self
            .data(&caller.region, &caller.account)
            .map(|d| {
                d.certs
                    .values()
                    .filter(|c| c.pending_target.is_some())
                    .map(|c| ((c.seq, c.id()), c))
                    .collect()
            })
            .unwrap_or_default();
        let (certs, next_marker) = match page.marker.as_deref().map(split_list_key) {
            None => {
                let (certs, next) = select_page(pending, page.ascending, None, page.size);
                (certs, next.map(|(seq, id)| format!("{seq:016x}{id}")))
            }
            Some(Some(key)) => {
                let (certs, next) = select_page(pending, page.ascending, Some(&key), page.size);
                (certs, next.map(|(seq, id)| format!("{seq:016x}{id}")))
            }
            // a marker no listing made: compared as text, as every other listing does
            Some(None) => page.of(pending
                .into_iter()
                .map(|(_, c)| (c.list_key(), c))
                .collect()),
        };
        Ok(Reply::of(&ListOutgoingCertificatesResponse {
            outgoing_certificates: certs
                .into_iter()
                .map(|c| OutgoingCertificate::of(c, rules.outgoing_arn_account))
                .collect(),
            next_marker,
        }))
    }

    /// TransferCertificate (input formats already checked by the routes).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn transfer(
        &mut self,
        caller: &Caller,
        id: &str,
        target: &str,
        message: Option<String>,
        rules: &Behaviour,
        now: f64,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        if target == caller.account {
            return Err(ApiError::invalid_request(
                "The target account is the owner of the certificate",
            ));
        }
        let target_owns = self
            .data(&caller.region, target)
            .is_some_and(|d| d.certs.contains_key(id));
        let cert = self
            .data_mut(&caller.region, &caller.account)
            .and_then(|d| d.certs.get_mut(id))
            .ok_or_else(|| ApiError::not_found(format!("The certificate {id} does not exist")))?;
        match cert.status.as_str() {
            "PENDING_TRANSFER" => return Err(rules.pending_transfer_answer.error()),
            "INACTIVE" => {}
            "ACTIVE" => {
                return Err(ApiError::certificate_state(
                    "The certificate is active: deactivate it before transferring it",
                ))
            }
            other => {
                return Err(ApiError::certificate_state(format!(
                    "A certificate in status {other} cannot be transferred"
                )))
            }
        }
        if !cert.effective_policies(instant).is_empty() {
            return Err(ApiError::transfer_conflict(
                "The certificate cannot be transferred: authorization policies are still attached",
            ));
        }
        if rules.things_block_transfer && !cert.effective_things(instant).is_empty() {
            return Err(ApiError::transfer_conflict(
                "The certificate cannot be transferred: things are still attached",
            ));
        }
        if target_owns {
            return Err(ApiError::transfer_conflict(
                "The target account already has this certificate",
            ));
        }
        cert.status = "PENDING_TRANSFER".to_string();
        cert.pending_target = Some(target.to_string());
        cert.transfer_message = message;
        cert.transfer_date = Some(now);
        cert.accept_date = None;
        cert.reject_date = None;
        cert.reject_reason = None;
        cert.touch(now);
        self.data_entry(&caller.region, target)
            .incoming
            .insert(id.to_string(), caller.account.clone());
        Ok(Reply::of(&TransferCertificateResponse {
            transferred_certificate_arn: cert_arn(&caller.region, target, id),
        }))
    }

    /// The checks shared by accept and reject. Returns the source account.
    fn pending_for_target(
        &self,
        caller: &Caller,
        id: &str,
        rules: &Behaviour,
    ) -> Result<String, ApiError> {
        if let Some(cert) = self.incoming_cert(caller, id) {
            return Ok(cert.owner.clone());
        }
        if let Some(cert) = self
            .data(&caller.region, &caller.account)
            .and_then(|d| d.certs.get(id))
        {
            if cert.accepted_here() {
                return Err(rules.completed_transfer_answer.error());
            }
        }
        Err(ApiError::not_found(format!(
            "No pending transfer of certificate {id} to this account"
        )))
    }

    /// AcceptCertificateTransfer: the certificate moves to the caller,
    /// without the source's attachments.
    pub(super) fn accept(
        &mut self,
        caller: &Caller,
        id: &str,
        set_as_active: bool,
        rules: &Behaviour,
        now: f64,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let source = self.pending_for_target(caller, id, rules)?;
        let src = self
            .data_mut(&caller.region, &source)
            .expect("source account exists");
        let mut cert = src.certs.remove(id).expect("pending certificate exists");
        src.tombstones
            .insert(id.to_string(), (caller.account.clone(), instant));
        cert.owner = caller.account.clone();
        cert.previous_owner = Some(source);
        cert.pending_target = None;
        cert.status = if set_as_active { "ACTIVE" } else { "INACTIVE" }.to_string();
        cert.accept_date = Some(now);
        cert.policies.clear();
        cert.things.clear();
        cert.lingering_policies.clear();
        cert.lingering_things.clear();
        cert.touch(now);
        let dst = self.data_entry(&caller.region, &caller.account);
        dst.incoming.remove(id);
        dst.tombstones.remove(id);
        dst.certs.insert(id.to_string(), cert);
        Ok(Reply::Empty)
    }

    /// RejectCertificateTransfer: back to the source as INACTIVE.
    pub(super) fn reject(
        &mut self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
        rules: &Behaviour,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let source = self.pending_for_target(caller, id, rules)?;
        let cert = self
            .data_mut(&caller.region, &source)
            .and_then(|d| d.certs.get_mut(id))
            .expect("pending certificate exists");
        cert.status = "INACTIVE".to_string();
        cert.pending_target = None;
        cert.reject_reason = reason;
        cert.reject_date = Some(now);
        cert.touch(now);
        if let Some(d) = self.data_mut(&caller.region, &caller.account) {
            d.incoming.remove(id);
        }
        Ok(Reply::Empty)
    }

    /// CancelCertificateTransfer by the source: back to INACTIVE.
    pub(super) fn cancel(
        &mut self,
        caller: &Caller,
        id: &str,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let Some(data) = self.data_mut(&caller.region, &caller.account) else {
            return Err(ApiError::not_found(format!(
                "The certificate {id} does not exist"
            )));
        };
        if let Some(cert) = data.certs.get_mut(id) {
            let Some(target) = cert.pending_target.take() else {
                return Err(ApiError::invalid_request(
                    "The certificate is not pending transfer",
                ));
            };
            cert.status = "INACTIVE".to_string();
            cert.touch(now);
            if let Some(t) = self.data_mut(&caller.region, &target) {
                t.incoming.remove(id);
            }
            return Ok(Reply::Empty);
        }
        if data.tombstones.contains_key(id) {
            return Err(ApiError::transfer_already_completed(
                "The certificate transfer was already accepted",
            ));
        }
        Err(ApiError::not_found(format!(
            "The certificate {id} does not exist"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::super::Call;
    use super::*;
    use crate::config::{Seed, SeedAccount, SeedCertificate};

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    fn id(n: u32) -> String {
        format!("{n:064x}")
    }

    fn caller(a: &str) -> Caller {
        Caller {
            account: a.into(),
            region: "us-east-1".into(),
        }
    }

    fn seeded(certs: Vec<SeedCertificate>) -> World {
        let mut w = World::new();
        let mut accounts = BTreeMap::new();
        accounts.insert(
            A.to_string(),
            SeedAccount {
                certificates: certs,
                ..Default::default()
            },
        );
        w.seed(&Seed {
            region: "us-east-1".into(),
            accounts,
        })
        .unwrap();
        w
    }

    fn cert(n: u32, status: &str) -> SeedCertificate {
        SeedCertificate {
            id: id(n),
            status: status.into(),
            ..Default::default()
        }
    }

    fn run(w: &mut World, who: &str, call: Call) -> Result<Reply, ApiError> {
        w.execute(&caller(who), call, &Behaviour::default()).reply
    }

    #[test]
    fn transfer_accept_lifecycle() {
        let mut w = seeded(vec![cert(1, "INACTIVE")]);
        let r = run(
            &mut w,
            A,
            Call::Transfer {
                id: id(1),
                target: B.into(),
                message: Some("hi".into()),
            },
        )
        .unwrap();
        assert_eq!(
            r,
            Reply::Json(json!({"transferredCertificateArn": cert_arn("us-east-1", B, &id(1))}))
        );
        // B sees it
        assert!(run(&mut w, B, Call::Describe { id: id(1) }).is_ok());
        // second transfer: conflict
        let e = run(
            &mut w,
            A,
            Call::Transfer {
                id: id(1),
                target: B.into(),
                message: None,
            },
        )
        .unwrap_err();
        assert_eq!(e.status, 409);
        // A cannot accept
        let e = run(
            &mut w,
            A,
            Call::Accept {
                id: id(1),
                set_as_active: false,
            },
        )
        .unwrap_err();
        assert_eq!(e.status, 404);
        run(
            &mut w,
            B,
            Call::Accept {
                id: id(1),
                set_as_active: true,
            },
        )
        .unwrap();
        let dump = w.dump();
        let (acct, c) = dump.find(&id(1)).unwrap();
        assert_eq!(acct.account, B);
        assert_eq!(c.status, "ACTIVE");
        assert_eq!(c.previous_owner.as_deref(), Some(A));
        assert_eq!(
            run(&mut w, A, Call::Describe { id: id(1) })
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            run(&mut w, A, Call::Cancel { id: id(1) })
                .unwrap_err()
                .status,
            410
        );
        let e = run(
            &mut w,
            B,
            Call::Accept {
                id: id(1),
                set_as_active: false,
            },
        )
        .unwrap_err();
        assert_eq!(e.status, 410);
    }

    #[test]
    fn seed_pending_and_reject() {
        let mut c = cert(2, "PENDING_TRANSFER");
        c.pending_target = Some(B.into());
        let mut w = seeded(vec![c]);
        run(
            &mut w,
            B,
            Call::Reject {
                id: id(2),
                reason: Some("no".into()),
            },
        )
        .unwrap();
        let dump = w.dump();
        let (_, c) = dump.find(&id(2)).unwrap();
        assert_eq!(c.status, "INACTIVE");
        assert_eq!(c.reject_reason.as_deref(), Some("no"));
        assert_eq!(c.pending_target, None);
        assert_eq!(
            run(&mut w, A, Call::Cancel { id: id(2) })
                .unwrap_err()
                .status,
            400
        );
    }
}
