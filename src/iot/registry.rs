//! Read-only calls on the fleet registry (what `select` reads): the certificate listings (all,
//! or those of one CA), things by type and attribute, the members of a thing group, and the
//! certificates attached to a thing. Every listing is followed to its last page, and a page
//! that arrives garbled (a 2xx that cannot be read, or without its list) is asked for again:
//! a listing that stopped at such a page would silently select too little.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};

use super::{all_pages, CallFailure, Iot};
use crate::certificate::CertStatus;
use crate::pacer::Operation;

/// Largest page every listing of the registry allows.
const PAGE_SIZE: i32 = 250;

/// A certificate as ListCertificates (or ListCertificatesByCA) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCertificate {
    /// The certificate id, lowercase.
    pub id: String,
    /// Its ARN.
    pub arn: String,
    /// Its status.
    pub status: CertStatus,
    /// When it was created: seconds and nanoseconds since the Unix epoch.
    pub created: Option<(i64, u32)>,
}

/// A thing as ListThings shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedThing {
    /// The thing's name.
    pub name: String,
    /// Its attributes.
    pub attributes: HashMap<String, String>,
}

impl Iot {
    /// The rate `op` is paced at now in this client's scope (requests per second), for
    /// estimates.
    pub fn current_rate(&self, op: Operation) -> f64 {
        self.ctx.pacer().current_rate(&self.scope, op)
    }

    /// One page of `op`, paced and retried by the call context; a page that arrives garbled
    /// (unreadable, or without its list: `complete` says) is asked for again like any
    /// transient failure.
    pub(super) async fn read_page<T, E, F, Fut>(
        &self,
        op: Operation,
        send: F,
        complete: fn(&T) -> bool,
    ) -> Result<T, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.ctx
            .call_and_read(&self.scope, op, send, |out| complete(&out).then_some(out))
            .await
    }

    /// [`Iot::read_page`] of a listing whose subject may not exist: `None` when AWS says
    /// 404 (an answer, counted as a call and not as an error).
    async fn look_up_page<T, E, F, Fut>(
        &self,
        op: Operation,
        send: F,
        complete: fn(&T) -> bool,
    ) -> Result<Option<T>, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.ctx
            .look_up(&self.scope, op, send, |out| complete(&out).then_some(out))
            .await
    }

    /// Every certificate of the account in this region (ListCertificates), or only those
    /// issued by CA certificate `ca` (ListCertificatesByCA), all pages.
    pub async fn list_certificates(
        &self,
        ca: Option<&str>,
    ) -> Result<Vec<ListedCertificate>, CallFailure> {
        all_pages(|marker| async move {
            let (certificates, next) = match ca {
                None => {
                    let out = self
                        .read_page(
                            Operation::ListCertificates,
                            || {
                                self.client
                                    .list_certificates()
                                    .page_size(PAGE_SIZE)
                                    .ascending_order(true)
                                    .set_marker(marker.clone())
                                    .send()
                            },
                            |o| o.certificates.is_some(),
                        )
                        .await?;
                    (out.certificates, out.next_marker)
                }
                Some(ca) => {
                    let out = self
                        .read_page(
                            Operation::ListCertificatesByCA,
                            || {
                                self.client
                                    .list_certificates_by_ca()
                                    .ca_certificate_id(ca)
                                    .page_size(PAGE_SIZE)
                                    .ascending_order(true)
                                    .set_marker(marker.clone())
                                    .send()
                            },
                            |o| o.certificates.is_some(),
                        )
                        .await?;
                    (out.certificates, out.next_marker)
                }
            };
            let listed = certificates
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| {
                    Some(ListedCertificate {
                        id: c.certificate_id?.to_ascii_lowercase(),
                        arn: c.certificate_arn.unwrap_or_default(),
                        status: CertStatus::parse(c.status.as_ref().map_or("", |s| s.as_str())),
                        created: c.creation_date.map(|d| (d.secs(), d.subsec_nanos())),
                    })
                })
                .collect();
            Ok((listed, next))
        })
        .await
    }

    /// Every thing of type `thing_type` (any type when `None`) that has attribute
    /// `attribute` (name, value) when given (ListThings), all pages.
    pub async fn list_things(
        &self,
        thing_type: Option<&str>,
        attribute: Option<(&str, &str)>,
    ) -> Result<Vec<ListedThing>, CallFailure> {
        all_pages(|token| async move {
            let out = self
                .read_page(
                    Operation::ListThings,
                    || {
                        self.client
                            .list_things()
                            .set_thing_type_name(thing_type.map(str::to_string))
                            .set_attribute_name(attribute.map(|a| a.0.to_string()))
                            .set_attribute_value(attribute.map(|a| a.1.to_string()))
                            .max_results(PAGE_SIZE)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |o| o.things.is_some(),
                )
                .await?;
            let things = out.things.unwrap_or_default().into_iter().filter_map(|t| {
                Some(ListedThing {
                    name: t.thing_name?,
                    attributes: t.attributes.unwrap_or_default(),
                })
            });
            Ok((things.collect(), out.next_token))
        })
        .await
    }

    /// The things in static thing group `group`, and with `recursive` those of every group
    /// below it (ListThingsInThingGroup), all pages. `None` when the group does not exist.
    pub async fn things_in_group(
        &self,
        group: &str,
        recursive: bool,
    ) -> Result<Option<Vec<String>>, CallFailure> {
        let missing = AtomicBool::new(false);
        let missing = &missing;
        let things = all_pages(|token| async move {
            let page = self
                .look_up_page(
                    Operation::ListThingsInThingGroup,
                    || {
                        self.client
                            .list_things_in_thing_group()
                            .thing_group_name(group)
                            .recursive(recursive)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |o| o.things.is_some(),
                )
                .await?;
            let Some(out) = page else {
                missing.store(true, Ordering::Relaxed);
                return Ok((Vec::new(), None));
            };
            Ok((out.things.unwrap_or_default(), out.next_token))
        })
        .await?;
        Ok((!missing.load(Ordering::Relaxed)).then_some(things))
    }

    /// The principals (certificate ARNs and others) attached to thing `thing`
    /// (ListThingPrincipals), all pages. A thing deleted since it was listed has none.
    pub async fn thing_principals(&self, thing: &str) -> Result<Vec<String>, CallFailure> {
        all_pages(|token| async move {
            let page = self
                .look_up_page(
                    Operation::ListThingPrincipals,
                    || {
                        self.client
                            .list_thing_principals()
                            .thing_name(thing)
                            .max_results(PAGE_SIZE)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |o| o.principals.is_some(),
                )
                .await?;
            Ok(page.map_or((Vec::new(), None), |out| {
                (out.principals.unwrap_or_default(), out.next_token)
            }))
        })
        .await
    }
}
