//! Policies of an account and region (CreatePolicy, GetPolicy, ListPolicies): a document
//! per policy, its default version only.

use serde::Serialize;
use serde_json::Value;

use super::attachments::{ListAttachedPoliciesResponse, PolicyNameAndArn};
use super::paging::{hex_key, Page};
use super::{random_uuid, Caller, Reply, World};
use crate::arn::policy_arn;
use crate::config::{SeedPolicy, DEFAULT_POLICY_DOCUMENT};
use crate::errors::ApiError;
use crate::state::PolicyState;
use crate::validate;

/// A policy and its default version.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) document: String,
    pub(crate) default_version: u64,
    creation: f64,
    generation_id: String,
}

impl Policy {
    pub(super) fn dump(&self, name: &str) -> PolicyState {
        PolicyState {
            name: name.to_string(),
            document: self.document.clone(),
            default_version_id: self.default_version.to_string(),
        }
    }
}

/// Checks a policy document: JSON with a `Statement`.
fn check_document(doc: &str) -> Result<(), ApiError> {
    match serde_json::from_str::<Value>(doc) {
        Ok(Value::Object(m)) if m.contains_key("Statement") => Ok(()),
        _ => Err(ApiError::malformed_policy(
            "The policy document is not valid JSON with a Statement",
        )),
    }
}

/// CreatePolicyResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatePolicyResponse<'a> {
    policy_name: &'a str,
    policy_arn: String,
    policy_document: &'a str,
    policy_version_id: &'a str,
}

/// GetPolicyResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetPolicyResponse<'a> {
    policy_name: &'a str,
    policy_arn: String,
    policy_document: &'a str,
    default_version_id: String,
    creation_date: f64,
    last_modified_date: f64,
    generation_id: &'a str,
}

/// ListPoliciesResponse: the members of ListAttachedPoliciesResponse.
type ListPoliciesResponse<'a> = ListAttachedPoliciesResponse<'a>;

impl World {
    /// Creates a policy with `document` (default document if `None`) unless it exists.
    pub(crate) fn ensure_policy(
        &mut self,
        region: &str,
        account: &str,
        name: &str,
        document: Option<&str>,
        now: f64,
    ) {
        self.data_entry(region, account)
            .policies
            .entry(name.to_string())
            .or_insert_with(|| Policy {
                document: document.unwrap_or(DEFAULT_POLICY_DOCUMENT).to_string(),
                default_version: 1,
                creation: now,
                generation_id: random_uuid(),
            });
    }

    /// Seeds policies: a seeded policy replaces one of the same name.
    pub(super) fn seed_policies(
        &mut self,
        region: &str,
        account: &str,
        policies: &[SeedPolicy],
        now: f64,
    ) -> Result<(), String> {
        for p in policies {
            if !validate::is_policy_name(&p.name) {
                return Err(format!("invalid policy name {:?}", p.name));
            }
            if let Some(doc) = &p.document {
                check_document(doc).map_err(|e| format!("policy {}: {}", p.name, e.message))?;
            }
            self.data_entry(region, account).policies.remove(&p.name);
            self.ensure_policy(region, account, &p.name, p.document.as_deref(), now);
        }
        Ok(())
    }

    /// CreatePolicy: an existing name is 409.
    pub(super) fn create_policy(
        &mut self,
        caller: &Caller,
        name: &str,
        document: &str,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        check_document(document)?;
        if self
            .data(r, a)
            .is_some_and(|d| d.policies.contains_key(name))
        {
            return Err(ApiError::already_exists(format!(
                "Policy cannot be created - name already exists (name={name})"
            )));
        }
        self.ensure_policy(r, a, name, Some(document), now);
        Ok(Reply::of(&CreatePolicyResponse {
            policy_name: name,
            policy_arn: policy_arn(r, a, name),
            policy_document: document,
            policy_version_id: "1",
        }))
    }

    /// GetPolicy.
    pub(super) fn get_policy(&self, caller: &Caller, name: &str) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let p = self
            .data(r, a)
            .and_then(|d| d.policies.get(name))
            .ok_or_else(|| ApiError::not_found(format!("The policy {name} does not exist")))?;
        Ok(Reply::of(&GetPolicyResponse {
            policy_name: name,
            policy_arn: policy_arn(r, a, name),
            policy_document: &p.document,
            default_version_id: p.default_version.to_string(),
            creation_date: p.creation,
            last_modified_date: p.creation,
            generation_id: &p.generation_id,
        }))
    }

    /// ListPolicies, by name.
    pub(super) fn list_policies(&self, caller: &Caller, page: &Page) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let items: Vec<(String, PolicyNameAndArn<'_>)> = self
            .data(r, a)
            .map(|d| {
                d.policies
                    .keys()
                    .map(|n| {
                        let policy = PolicyNameAndArn {
                            policy_name: n,
                            policy_arn: policy_arn(r, a, n),
                        };
                        (hex_key(n), policy)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (policies, next_marker) = page.of(items);
        Ok(Reply::of(&ListPoliciesResponse {
            policies,
            next_marker,
        }))
    }
}
