//! The world's control side: loading a seed (`--seed`, `POST /_sim/seed`)
//! and the state dump (`GET /_sim/state`).
//!
//! A seed is checked as a whole: it is applied to a copy of the world that
//! replaces it only if every part is valid. Within an account the registry
//! is seeded first (policies, thing types, thing groups, things, CA
//! certificates, role aliases), then the certificates, which replace any
//! certificate of the same id there.

use std::collections::BTreeMap;

use super::certificates::Cert;
use super::{now_epoch, random_uuid, AccountData, World, MAX_POLICIES_PER_TARGET};
use crate::arn::cert_arn;
use crate::config::{Seed, SeedAccount, SeedCertificate};
use crate::state::{AccountState, StateDump, ThingState};
use crate::validate;

impl World {
    /// Removes every trace of `id` in (region, account) before a seed replaces it.
    fn forget(&mut self, region: &str, account: &str, id: &str) {
        let Some(data) = self.data_mut(region, account) else {
            return;
        };
        let old = data.certs.remove(id);
        data.tombstones.remove(id);
        let incoming_from = data.incoming.remove(id);
        if let Some(target) = old.and_then(|c| c.pending_target) {
            if let Some(t) = self.data_mut(region, &target) {
                t.incoming.remove(id);
            }
        }
        if let Some(source) = incoming_from {
            if let Some(cert) = self
                .data_mut(region, &source)
                .and_then(|d| d.certs.get_mut(id))
            {
                if cert.pending_target.as_deref() == Some(account) {
                    cert.pending_target = None;
                    cert.status = "INACTIVE".to_string();
                }
            }
        }
    }

    /// Loads seed data; the whole seed is checked before anything changes
    /// (it is applied to a copy that replaces the world only if all went well).
    pub fn seed(&mut self, seed: &Seed) -> Result<(), String> {
        validate::check_region(&seed.region)?;
        for (account, data) in &seed.accounts {
            if !validate::is_account_id(account) {
                return Err(format!(
                    "invalid account id {account:?}: expected 12 digits"
                ));
            }
            for c in &data.certificates {
                check_seed_cert(account, c)?;
            }
        }
        let mut next = self.clone();
        next.apply_seed(seed)?;
        *self = next;
        Ok(())
    }

    fn apply_seed(&mut self, seed: &Seed) -> Result<(), String> {
        let now = now_epoch();
        let region = &seed.region;
        for (account, data) in &seed.accounts {
            self.seed_registry(region, account, data, now)?;
            self.seed_fleet_index(region, account, data.indexing.as_ref())?;
            for c in &data.certificates {
                self.forget(region, account, &c.id);
                if let Some(target) = &c.pending_target {
                    if self
                        .data(region, target)
                        .is_some_and(|d| d.certs.contains_key(&c.id))
                    {
                        return Err(format!(
                            "certificate {} is seeded as pending transfer to {target}, which already owns it",
                            c.id
                        ));
                    }
                }
                self.next_seq += 1;
                let creation = c.creation_date.unwrap_or(now);
                let cert = Cert {
                    id: c.id.clone(),
                    owner: account.clone(),
                    region: region.clone(),
                    status: c.status.clone(),
                    seq: self.next_seq,
                    creation,
                    last_modified: creation.max(now),
                    customer_version: 1,
                    generation_id: random_uuid(),
                    previous_owner: None,
                    pending_target: c.pending_target.clone(),
                    transfer_message: c.transfer_message.clone(),
                    transfer_date: c.pending_target.as_ref().map(|_| now),
                    accept_date: None,
                    reject_date: None,
                    reject_reason: None,
                    policies: c.policies.iter().cloned().collect(),
                    things: c.things.iter().cloned().collect(),
                    exclusive: c.exclusive.then(|| c.things.first().cloned()).flatten(),
                    ca_certificate_id: c.ca_certificate_id.clone(),
                    mode: c
                        .certificate_mode
                        .clone()
                        .unwrap_or_else(|| "DEFAULT".to_string()),
                    pem: c
                        .pem
                        .clone()
                        .unwrap_or_else(|| crate::pem::generated_pem(&c.id)),
                    lingering_policies: BTreeMap::new(),
                    lingering_things: BTreeMap::new(),
                };
                // policies and things a certificate names exist from now on
                for p in &c.policies {
                    self.ensure_policy(region, account, p, None, now);
                }
                for t in &c.things {
                    self.ensure_thing(region, account, t);
                }
                if let Some(ca) = &c.ca_certificate_id {
                    if !validate::is_certificate_id(ca) {
                        return Err(format!("invalid ca_certificate_id {ca:?} of {}", c.id));
                    }
                }
                if let Some(pem) = &c.pem {
                    crate::pem::der_of(pem).map_err(|e| format!("pem of {}: {e}", c.id))?;
                }
                if !matches!(cert.mode.as_str(), "DEFAULT" | "SNI_ONLY") {
                    return Err(format!(
                        "invalid certificate_mode {:?} of {}",
                        cert.mode, c.id
                    ));
                }
                let d = self.data_entry(region, account);
                d.certs.insert(c.id.clone(), cert);
                if let Some(target) = &c.pending_target {
                    self.data_entry(region, target)
                        .incoming
                        .insert(c.id.clone(), account.clone());
                }
            }
            // Devices last: each holds its thing's certificate.
            let at = super::now_millis();
            self.seed_devices(region, account, data.devices.as_ref(), at)?;
        }
        Ok(())
    }

    /// Loads the registry part of one account's seed (before its certificates).
    fn seed_registry(
        &mut self,
        region: &str,
        account: &str,
        s: &SeedAccount,
        now: f64,
    ) -> Result<(), String> {
        self.seed_policies(region, account, &s.policies, now)?;
        self.seed_thing_types(region, account, &s.thing_types, now)?;
        self.seed_groups(
            region,
            account,
            &s.thing_groups,
            MAX_POLICIES_PER_TARGET,
            now,
        )?;
        self.seed_things(region, account, &s.things)?;
        self.seed_ca_certificates(region, account, &s.ca_certificates, now)?;
        self.seed_role_aliases(region, account, &s.role_aliases)
    }

    /// Snapshot of everything, sorted by region, account, certificate id.
    pub fn dump(&self) -> StateDump {
        StateDump {
            accounts: self
                .accounts
                .iter()
                .map(|((region, account), d)| dump_account(region, account, d))
                .collect(),
        }
    }
}

/// One account's [`AccountState`].
fn dump_account(region: &str, account: &str, d: &AccountData) -> AccountState {
    AccountState {
        account: account.to_string(),
        region: region.to_string(),
        certificates: d.certs.values().map(Cert::dump).collect(),
        policies: d.policies.iter().map(|(n, p)| p.dump(n)).collect(),
        thing_types: d.thing_types.iter().map(|(n, t)| t.dump(n)).collect(),
        thing_groups: d.groups.iter().map(|(n, g)| g.dump(n)).collect(),
        things: d
            .things
            .iter()
            .map(|(name, t)| {
                let mut groups = t.groups.clone();
                groups.sort();
                ThingState {
                    name: name.clone(),
                    thing_type: t.thing_type.clone(),
                    attributes: t.attributes.clone(),
                    groups,
                    principals: d
                        .certs
                        .values()
                        .filter(|c| c.has_thing(name))
                        .map(|c| cert_arn(region, account, c.id()))
                        .collect(),
                }
            })
            .collect(),
        ca_certificates: d.ca_certs.iter().map(|(id, c)| c.dump(id)).collect(),
        role_aliases: d.role_aliases.iter().cloned().collect(),
        jobs: d.jobs.values().map(crate::jobs::Job::dump).collect(),
    }
}

/// The checks of one seeded certificate that need no state.
fn check_seed_cert(account: &str, c: &SeedCertificate) -> Result<(), String> {
    if !validate::is_certificate_id(&c.id) {
        return Err(format!(
            "invalid certificate id {:?}: expected 64 characters (0x)?[a-fA-F0-9]+",
            c.id
        ));
    }
    if !validate::is_status(&c.status) {
        return Err(format!("invalid status {:?} of {}", c.status, c.id));
    }
    match (&c.pending_target, c.status.as_str()) {
        (Some(t), "PENDING_TRANSFER") => {
            if !validate::is_account_id(t) || t == account {
                return Err(format!(
                    "invalid pending_target {t:?} of {}: expected another 12-digit account",
                    c.id
                ));
            }
        }
        (Some(_), _) => {
            return Err(format!(
                "certificate {} has pending_target but status {} (expected PENDING_TRANSFER)",
                c.id, c.status
            ))
        }
        (None, "PENDING_TRANSFER") => {
            return Err(format!(
                "certificate {} has status PENDING_TRANSFER but no pending_target",
                c.id
            ))
        }
        (None, _) => {}
    }
    if let Some(m) = &c.transfer_message {
        if m.chars().count() > validate::MAX_MESSAGE_LEN {
            return Err(format!(
                "transfer_message of {} is over 128 characters",
                c.id
            ));
        }
    }
    for p in &c.policies {
        if !validate::is_policy_name(p) {
            return Err(format!("invalid policy name {p:?}"));
        }
    }
    for t in &c.things {
        if !validate::is_thing_name(t) {
            return Err(format!("invalid thing name {t:?}"));
        }
    }
    if c.exclusive && c.things.len() != 1 {
        return Err(format!(
            "certificate {} is attached exclusively: it needs exactly one thing",
            c.id
        ));
    }
    Ok(())
}
