//! Fleet indexing calls (what `select --query` makes): the indexing configuration, and
//! SearchIndex on the things index followed to its last page. Each SearchIndex call is a
//! billed query: pages are as large as AWS allows.

use super::{all_pages, CallFailure, Iot};
use crate::pacer::Operation;

/// The index of every thing of an account in a region.
pub const THINGS_INDEX: &str = "AWS_Things";

/// Largest page of SearchIndex ("This maximum number cannot exceed 100").
const SEARCH_PAGE_SIZE: i32 = 100;

/// What GetIndexingConfiguration says about the things index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexingModes {
    /// `thingIndexingMode`: `OFF`, `REGISTRY` or `REGISTRY_AND_SHADOW`.
    pub things: String,
    /// `thingConnectivityIndexingMode`: `OFF` (also when absent) or `STATUS`.
    pub connectivity: String,
}

impl IndexingModes {
    /// Whether things can be searched.
    pub fn things_on(&self) -> bool {
        self.things != "OFF"
    }

    /// Whether connectivity is indexed.
    pub fn connectivity_on(&self) -> bool {
        self.connectivity == "STATUS"
    }
}

impl Iot {
    /// GetIndexingConfiguration. A reply without the thing indexing configuration (which
    /// AWS always sends, `OFF` included) is unreadable: asked again.
    pub async fn indexing_modes(&self) -> Result<IndexingModes, CallFailure> {
        self.ctx
            .call_and_read(
                &self.scope,
                Operation::GetIndexingConfiguration,
                || self.client.get_indexing_configuration().send(),
                |out| {
                    let t = out.thing_indexing_configuration?;
                    Some(IndexingModes {
                        things: t.thing_indexing_mode.as_str().to_string(),
                        connectivity: t
                            .thing_connectivity_indexing_mode
                            .map_or_else(|| "OFF".to_string(), |m| m.as_str().to_string()),
                    })
                },
            )
            .await
    }

    /// The names of the things that match `query` in the things index (SearchIndex), all
    /// pages. A page without its list of things is asked for again.
    pub async fn search_things(&self, query: &str) -> Result<Vec<String>, CallFailure> {
        all_pages(|token| async move {
            let out = self
                .read_page(
                    Operation::SearchIndex,
                    || {
                        self.client
                            .search_index()
                            .index_name(THINGS_INDEX)
                            .query_string(query)
                            .max_results(SEARCH_PAGE_SIZE)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |o| o.things.is_some(),
                )
                .await?;
            let names = out
                .things
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.thing_name);
            Ok((names.collect(), out.next_token))
        })
        .await
    }
}
