//! The AWS IoT calls the tool makes, each paced per (account, region, operation) and retried
//! by one loop that knows throttling from transient from permanent errors ([`call`]), and the
//! clients of one account, one per region ([`clients`]); the read-only registry listings
//! `select` makes ([`registry`]) and its fleet index searches ([`index`]); the registry
//! objects carry reads and creates ([`carried`]); what tells whether AWS may refuse a
//! multi-account registration ([`registration`]).

mod call;
mod carried;
mod clients;
#[cfg(test)]
pub(crate) mod fake;
mod index;
mod jobs;
mod registration;
mod registry;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

pub use crate::retry::AwsCode;
pub use call::{call_error, CallContext, CallFailure, OpCounts, Slot};
pub use clients::AccountClients;
pub use index::{IndexingModes, THINGS_INDEX};
pub use jobs::{Connectivity, JobInfo, JobSettings};
pub use registry::{ListedCertificate, ListedThing};

use crate::certificate::{arn_account_and_id, CertStatus};
use crate::pacer::{Operation, Scope};

/// Follows a listing to its last page: `page(token)` fetches one page and returns its items
/// and the next token. An absent or empty token ends the listing (AWS IoT answers both).
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, CallFailure>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), CallFailure>>,
{
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token.take()).await?;
        all.extend(items);
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(all),
        }
    }
}

/// AWS IoT's limit of policies attached to one certificate.
pub const POLICIES_PER_CERTIFICATE: usize = 10;

/// What an AttachPolicy refused with LimitExceededException hit: the limit of the target's
/// kind (a certificate's 10 policies; a thing group's, 10 or 2: UNCONFIRMED), named for the
/// operator with AWS's own words.
fn limit_message(policy: &str, target: &str, aws_says: &str) -> String {
    match target.split_once(":thinggroup/") {
        Some((_, group)) => format!(
            "cannot attach policy `{policy}` to thing group `{group}`: the group is at AWS \
             IoT's limit of policies per thing group (10, or 2 in the 2021 developer guide: \
             not confirmed for today's AWS) (AWS says: {aws_says}); detach one from the group \
             first"
        ),
        None => format!(
            "cannot attach policy `{policy}`: the certificate is at AWS IoT's limit of \
             {POLICIES_PER_CERTIFICATE} policies per certificate (AWS says: {aws_says}); \
             detach one first"
        ),
    }
}

/// What DescribeCertificate tells about a certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// Certificate ARN (its account is the owner).
    pub arn: String,
    /// Status.
    pub status: CertStatus,
    /// Owning account.
    pub owner: Option<String>,
    /// The CA certificate that issued it, when registered with one.
    pub ca_certificate_id: Option<String>,
    /// `DEFAULT` or `SNI_ONLY`, when AWS says.
    pub mode: Option<String>,
}

/// One account in one region: an IoT client and the pacing scope it counts against.
#[derive(Clone)]
pub struct Iot {
    client: aws_sdk_iot::Client,
    scope: Scope,
    ctx: Arc<CallContext>,
    outgoing: Arc<OutgoingIndex>,
}

impl Iot {
    /// A client for `scope` (account and region) sharing `ctx`.
    pub fn new(client: aws_sdk_iot::Client, scope: Scope, ctx: Arc<CallContext>) -> Self {
        Iot {
            client,
            scope,
            ctx,
            outgoing: Arc::new(OutgoingIndex::default()),
        }
    }

    /// The account and region this client acts in.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The run's circuit breaker.
    pub fn breaker(&self) -> &crate::breaker::Breaker {
        self.ctx.breaker()
    }

    /// Waits for `op`'s next pacer slot here and takes it, for a call made inside
    /// [`Iot::spend`].
    pub async fn reserve(&self, op: Operation) -> Slot {
        self.ctx.reserve(&self.scope, op).await
    }

    /// Runs `calls` with `slot` paid ahead (see [`CallContext::spend`]).
    pub async fn spend<F: std::future::Future>(&self, slot: Slot, calls: F) -> F::Output {
        CallContext::spend(slot, calls).await
    }

    /// DescribeCertificate; `None` when AWS does not know the certificate here (404). A reply
    /// without the description (or its ARN and status) is unreadable: retried.
    pub async fn describe(&self, id: &str) -> Result<Option<CertificateInfo>, CallFailure> {
        Ok(self.describe_full(id).await?.map(|(info, _)| info))
    }

    /// DescribeCertificate with the certificate's PEM (what `register` copies); `None` on 404.
    pub async fn describe_with_pem(
        &self,
        id: &str,
    ) -> Result<Option<(CertificateInfo, String)>, CallFailure> {
        match self.describe_full(id).await? {
            None => Ok(None),
            Some((info, Some(pem))) => Ok(Some((info, pem))),
            Some((_, None)) => Err(CallFailure::local(
                "MissingCertificatePem",
                format!("DescribeCertificate of {id} answered without the certificate's PEM"),
            )),
        }
    }

    async fn describe_full(
        &self,
        id: &str,
    ) -> Result<Option<(CertificateInfo, Option<String>)>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::DescribeCertificate,
                || self.client.describe_certificate().certificate_id(id).send(),
                |out| {
                    let d = out.certificate_description?;
                    let info = CertificateInfo {
                        arn: d.certificate_arn?,
                        status: CertStatus::parse(d.status?.as_str()),
                        owner: d.owned_by,
                        ca_certificate_id: d.ca_certificate_id,
                        mode: d.certificate_mode.map(|m| m.as_str().to_string()),
                    };
                    Some((info, d.certificate_pem))
                },
            )
            .await
    }

    /// RegisterCertificateWithoutCA (SNI_ONLY) with `status`; returns the new copy's ARN. A
    /// reply without it has an unknown outcome: the caller reconciles.
    pub async fn register_without_ca(
        &self,
        pem: &str,
        status: &CertStatus,
    ) -> Result<String, CallFailure> {
        let status = aws_sdk_iot::types::CertificateStatus::from(status.as_str());
        self.ctx
            .call_and_read(
                &self.scope,
                Operation::RegisterCertificateWithoutCA,
                || {
                    self.client
                        .register_certificate_without_ca()
                        .certificate_pem(pem)
                        .status(status.clone())
                        .send()
                },
                |o| o.certificate_arn,
            )
            .await
    }

    /// UpdateCertificate to `status` (`INACTIVE` or `ACTIVE`).
    pub async fn update_status(&self, id: &str, status: &CertStatus) -> Result<(), CallFailure> {
        let status = status.to_sdk();
        self.ctx
            .call(&self.scope, Operation::UpdateCertificate, || {
                self.client
                    .update_certificate()
                    .certificate_id(id)
                    .new_status(status.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// Every policy attached to the certificate (all pages).
    pub async fn attached_policies(&self, arn: &str) -> Result<Vec<String>, CallFailure> {
        all_pages(|marker| async move {
            // A reply without the list is unreadable: "no policy" must be said, not assumed.
            let (policies, next) = self
                .ctx
                .call_and_read(
                    &self.scope,
                    Operation::ListAttachedPolicies,
                    || {
                        self.client
                            .list_attached_policies()
                            .target(arn)
                            .page_size(250)
                            .set_marker(marker.clone())
                            .send()
                    },
                    |out| Some((out.policies?, out.next_marker)),
                )
                .await?;
            Ok((
                policies.into_iter().filter_map(|p| p.policy_name).collect(),
                next,
            ))
        })
        .await
    }

    /// Every thing attached to the certificate (all pages; a garbled page is asked for
    /// again, see [`registry`]).
    pub async fn principal_things(&self, arn: &str) -> Result<Vec<String>, CallFailure> {
        all_pages(|token| async move {
            self.ctx
                .call_and_read(
                    &self.scope,
                    Operation::ListPrincipalThings,
                    || {
                        self.client
                            .list_principal_things()
                            .principal(arn)
                            .max_results(250)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |out| Some((out.things?, out.next_token)),
                )
                .await
        })
        .await
    }

    /// Every thing attached to the certificate with whether it is attached exclusively
    /// (ListPrincipalThingsV2, all pages).
    pub async fn principal_things_v2(&self, arn: &str) -> Result<Vec<(String, bool)>, CallFailure> {
        all_pages(|token| async move {
            let (objects, next) = self
                .ctx
                .call_and_read(
                    &self.scope,
                    Operation::ListPrincipalThingsV2,
                    || {
                        self.client
                            .list_principal_things_v2()
                            .principal(arn)
                            .max_results(250)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |out| Some((out.principal_thing_objects?, out.next_token)),
                )
                .await?;
            let things = objects
                .into_iter()
                .map(|o| {
                    let exclusive = o.thing_principal_type
                        == Some(aws_sdk_iot::types::ThingPrincipalType::ExclusiveThing);
                    (o.thing_name, exclusive)
                })
                .collect();
            Ok((things, next))
        })
        .await
    }

    /// DetachPolicy.
    pub async fn detach_policy(&self, policy: &str, arn: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::DetachPolicy, || {
                self.client
                    .detach_policy()
                    .policy_name(policy)
                    .target(arn)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AttachPolicy. A refusal says what to do about it: a resource limit (410) is named,
    /// and a 404 is confirmed with GetPolicy (AWS creates nothing implicitly).
    pub async fn attach_policy(&self, policy: &str, arn: &str) -> Result<(), CallFailure> {
        let res = self
            .ctx
            .call(&self.scope, Operation::AttachPolicy, || {
                self.client
                    .attach_policy()
                    .policy_name(policy)
                    .target(arn)
                    .send()
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(mut f) if f.is(AwsCode::LimitExceeded) => {
                f.error.message = limit_message(policy, arn, &f.error.message);
                Err(f)
            }
            Err(mut f) if f.is(AwsCode::ResourceNotFound) => {
                if matches!(self.policy_exists(policy).await, Ok(false)) {
                    f.error.message = self.missing("policy", policy, "CreatePolicy");
                }
                Err(f)
            }
            Err(f) => Err(f),
        }
    }

    /// GetPolicy: whether `policy` exists in this account and region.
    pub async fn policy_exists(&self, policy: &str) -> Result<bool, CallFailure> {
        let found = self
            .ctx
            .look_up(
                &self.scope,
                Operation::GetPolicy,
                || self.client.get_policy().policy_name(policy).send(),
                Some,
            )
            .await?;
        Ok(found.is_some())
    }

    /// DescribeThing: whether `thing` exists in this account and region.
    pub async fn thing_exists(&self, thing: &str) -> Result<bool, CallFailure> {
        let found = self
            .ctx
            .look_up(
                &self.scope,
                Operation::DescribeThing,
                || self.client.describe_thing().thing_name(thing).send(),
                Some,
            )
            .await?;
        Ok(found.is_some())
    }

    /// The message of an attach refused because its `kind` (policy, thing) does not exist.
    pub fn missing(&self, kind: &str, name: &str, create: &str) -> String {
        format!(
            "{kind} `{name}` does not exist in account {} ({}): AWS IoT creates nothing \
             implicitly; create it there first ({create})",
            self.scope.account, self.scope.region
        )
    }

    /// DetachThingPrincipal.
    pub async fn detach_thing(&self, thing: &str, arn: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::DetachThingPrincipal, || {
                self.client
                    .detach_thing_principal()
                    .thing_name(thing)
                    .principal(arn)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AttachThingPrincipal; a 404 is confirmed with DescribeThing (AWS creates nothing
    /// implicitly).
    pub async fn attach_thing(&self, thing: &str, arn: &str) -> Result<(), CallFailure> {
        self.attach_thing_as(thing, arn, false).await
    }

    /// AttachThingPrincipal, `exclusive`ly (`thingPrincipalType` EXCLUSIVE_THING: the thing
    /// becomes the certificate's only one) or not (AWS's default).
    pub async fn attach_thing_as(
        &self,
        thing: &str,
        arn: &str,
        exclusive: bool,
    ) -> Result<(), CallFailure> {
        let kind = exclusive.then_some(aws_sdk_iot::types::ThingPrincipalType::ExclusiveThing);
        let res = self
            .ctx
            .call(&self.scope, Operation::AttachThingPrincipal, || {
                self.client
                    .attach_thing_principal()
                    .thing_name(thing)
                    .principal(arn)
                    .set_thing_principal_type(kind.clone())
                    .send()
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(mut f) if f.is(AwsCode::ResourceNotFound) => {
                if matches!(self.thing_exists(thing).await, Ok(false)) {
                    f.error.message = self.missing("thing", thing, "CreateThing");
                }
                Err(f)
            }
            Err(f) => Err(f),
        }
    }

    /// TransferCertificate; returns `transferredCertificateArn`. A reply without it has an
    /// unknown outcome (the transfer may well have happened): the caller reconciles.
    pub async fn transfer(
        &self,
        id: &str,
        target: &str,
        message: Option<&str>,
    ) -> Result<String, CallFailure> {
        self.ctx
            .call_and_read(
                &self.scope,
                Operation::TransferCertificate,
                || {
                    self.client
                        .transfer_certificate()
                        .certificate_id(id)
                        .target_aws_account(target)
                        .set_transfer_message(message.map(str::to_string))
                        .send()
                },
                |o| o.transferred_certificate_arn,
            )
            .await
    }

    /// CancelCertificateTransfer.
    pub async fn cancel(&self, id: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::CancelCertificateTransfer, || {
                self.client
                    .cancel_certificate_transfer()
                    .certificate_id(id)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AcceptCertificateTransfer (target side).
    pub async fn accept(&self, id: &str, set_as_active: bool) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::AcceptCertificateTransfer, || {
                self.client
                    .accept_certificate_transfer()
                    .certificate_id(id)
                    .set_as_active(set_as_active)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// RejectCertificateTransfer (target side).
    pub async fn reject(&self, id: &str, reason: Option<&str>) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::RejectCertificateTransfer, || {
                self.client
                    .reject_certificate_transfer()
                    .certificate_id(id)
                    .set_reject_reason(reason.map(str::to_string))
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// Every outgoing (started, not accepted) transfer: certificate id -> target account.
    pub async fn outgoing_transfers(&self) -> Result<HashMap<String, String>, CallFailure> {
        let pairs = all_pages(|marker| async move {
            let (outgoing, next) = self
                .ctx
                .call_and_read(
                    &self.scope,
                    Operation::ListOutgoingCertificates,
                    || {
                        self.client
                            .list_outgoing_certificates()
                            .page_size(250)
                            .set_marker(marker.clone())
                            .send()
                    },
                    |out| Some((out.outgoing_certificates?, out.next_marker)),
                )
                .await?;
            let mut pairs = Vec::new();
            for c in outgoing {
                // `transferredTo` names the target whichever account the ARN carries (the
                // AWS CLI's example shows the target's; it may be the source's). Without it,
                // an ARN of an account other than ours can only be the target's.
                let from_arn = c.certificate_arn.as_deref().and_then(arn_account_and_id);
                let id = c
                    .certificate_id
                    .clone()
                    .or_else(|| from_arn.map(|(_, id)| id.to_string()));
                let to = c
                    .transferred_to
                    .clone()
                    .filter(|t| !t.is_empty())
                    .or_else(|| {
                        from_arn
                            .map(|(account, _)| account)
                            .filter(|a| *a != self.scope.account)
                            .map(str::to_string)
                    });
                if let (Some(id), Some(to)) = (id, to) {
                    pairs.push((id.to_ascii_lowercase(), to));
                }
            }
            Ok((pairs, next))
        })
        .await?;
        Ok(pairs.into_iter().collect())
    }
}

/// Which account each pending outgoing transfer goes to, from ListOutgoingCertificates.
///
/// A listing pages over every pending transfer of the account (at AWS's quotas, 20 s for
/// 50,000), and only a listing says where a transfer goes. So one listing serves every
/// certificate that waits for it, and listings are spaced out: the next one starts no
/// sooner than [`LISTING_SPACING`] times the last one's duration after it ended. The
/// operation is then busy at most a third of the time however many certificates wait and
/// however many transfers are pending: its calls per certificate of the run stay bounded
/// by the ratio of its quota to the run's pace, not by the size of the listing, while the
/// certificates that wait are served in batches.
#[derive(Default)]
struct OutgoingIndex {
    listings: std::sync::Mutex<Listings>,
    /// Woken when a listing ends (complete, failed or given up).
    ended: tokio::sync::Notify,
}

/// A new listing starts no sooner than this many times the last one's duration after it.
const LISTING_SPACING: u32 = 2;

#[derive(Default)]
struct Listings {
    /// The last complete listing: when it started, and each pending transfer's target.
    last: Option<(Instant, HashMap<String, String>)>,
    /// The last listing that failed: when it started, and why.
    failed: Option<(Instant, CallFailure)>,
    /// Whether a listing is under way.
    running: bool,
    /// When the next listing may start.
    next_at: Option<Instant>,
    /// Listings taken (complete or not), for the tests.
    taken: u64,
}

/// What a certificate waiting for a listing does next.
enum Turn {
    /// Take the listing itself.
    List,
    /// Wait until a listing ends, or until the given moment.
    Wait(Option<Instant>),
}

/// Ends a listing even when the item that took it is dropped half-way (abandoned): the
/// others would wait for it forever.
struct Lister<'a> {
    index: &'a OutgoingIndex,
    started: Instant,
    finished: bool,
}

impl Lister<'_> {
    fn end(&mut self, outcome: Result<HashMap<String, String>, CallFailure>) {
        let mut l = self.index.listings.lock().expect("listings lock");
        let now = Instant::now();
        l.running = false;
        l.taken += 1;
        l.next_at = Some(now + (now - self.started) * LISTING_SPACING);
        match outcome {
            Ok(map) => l.last = Some((self.started, map)),
            Err(f) => l.failed = Some((self.started, f)),
        }
        self.finished = true;
        drop(l);
        self.index.ended.notify_waiters();
    }
}

impl Drop for Lister<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut l = self.index.listings.lock().expect("listings lock");
            l.running = false;
            drop(l);
            self.index.ended.notify_waiters();
        }
    }
}

impl Iot {
    /// The target of `id`'s pending transfer, as seen by a listing taken no earlier than
    /// `not_before` if the certificate is missing from an older one (`None`: not listed).
    /// Waits for the next listing when needed, and takes it when it is due and nobody else
    /// does; a listing that failed answers its error to every certificate it was for.
    pub async fn pending_target(
        &self,
        id: &str,
        not_before: Instant,
    ) -> Result<Option<String>, CallFailure> {
        let index = &*self.outgoing;
        loop {
            let ended = index.ended.notified();
            tokio::pin!(ended);
            // Registered before the state is read: a listing that ends in between wakes it.
            ended.as_mut().enable();
            let turn = {
                let mut l = index.listings.lock().expect("listings lock");
                if let Some((taken, map)) = &l.last {
                    if let Some(t) = map.get(id) {
                        return Ok(Some(t.clone()));
                    }
                    if *taken >= not_before {
                        return Ok(None);
                    }
                }
                match &l.failed {
                    Some((taken, f)) if *taken >= not_before => return Err(f.clone()),
                    _ => {}
                }
                match l.next_at {
                    _ if l.running => Turn::Wait(None),
                    Some(at) if at > Instant::now() => Turn::Wait(Some(at)),
                    _ => {
                        l.running = true;
                        Turn::List
                    }
                }
            };
            match turn {
                Turn::List => {
                    let mut lister = Lister {
                        index,
                        started: Instant::now(),
                        finished: false,
                    };
                    let outcome = self.outgoing_transfers().await;
                    lister.end(outcome);
                }
                Turn::Wait(None) => ended.await,
                Turn::Wait(Some(at)) => {
                    tokio::select! {
                        _ = ended => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }

    /// How many ListOutgoingCertificates listings this client took (complete or failed).
    #[cfg(test)]
    pub(crate) fn listings_taken(&self) -> u64 {
        self.outgoing.listings.lock().expect("listings lock").taken
    }
}

/// The account the credentials belong to (STS GetCallerIdentity), paced and retried like
/// every other call.
pub async fn caller_account(
    sts: &aws_sdk_sts::Client,
    region: &str,
    ctx: &CallContext,
) -> Result<String, CallFailure> {
    let scope = Scope {
        account: "sts".into(),
        region: region.to_string(),
    };
    ctx.call_and_read(
        &scope,
        Operation::GetCallerIdentity,
        || sts.get_caller_identity().send(),
        |out| out.account,
    )
    .await
}
