//! The reads that tell whether AWS may refuse to register a certificate in another account,
//! or whether its devices may lose something there: the mode its CA is registered in
//! (DescribeCACertificate) and the account's role aliases (ListRoleAliases: devices that get
//! AWS credentials from the credentials provider).

use super::{all_pages, AwsCode, CallFailure, Iot};
use crate::pacer::Operation;

impl Iot {
    /// DescribeCACertificate: the mode (`DEFAULT` or `SNI_ONLY`) CA certificate `id` is
    /// registered in in this account; `None` when it is not registered here (404).
    pub async fn ca_certificate_mode(&self, id: &str) -> Result<Option<String>, CallFailure> {
        let res = self
            .ctx
            .call_and_read(
                &self.scope,
                Operation::DescribeCACertificate,
                || {
                    self.client
                        .describe_ca_certificate()
                        .certificate_id(id)
                        .send()
                },
                |out| {
                    let d = out.certificate_description?;
                    d.certificate_id.as_ref()?;
                    // AWS's default mode for a CA registered without one
                    Some(
                        d.certificate_mode
                            .map_or_else(|| "DEFAULT".to_string(), |m| m.as_str().to_string()),
                    )
                },
            )
            .await;
        match res {
            Ok(mode) => Ok(Some(mode)),
            Err(f) if f.is(AwsCode::ResourceNotFound) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// ListRoleAliases: the names of every role alias of the account in this region.
    pub async fn role_aliases(&self) -> Result<Vec<String>, CallFailure> {
        all_pages(|marker| async move {
            self.ctx
                .call_and_read(
                    &self.scope,
                    Operation::ListRoleAliases,
                    || {
                        self.client
                            .list_role_aliases()
                            .page_size(250)
                            .set_marker(marker.clone())
                            .send()
                    },
                    |out| Some((out.role_aliases?, out.next_marker)),
                )
                .await
        })
        .await
    }
}
