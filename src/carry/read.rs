//! Reading what a certificate carries from the source account, before prepare changes it.
//! Policies, thing types and thing groups are shared by many certificates: each is read once
//! per run (per account and region), whatever the concurrency; things are the certificate's own.

use super::once::Once;
use super::snapshot::{CarriedGroup, CarriedPolicy, CarriedThingType, Snapshot};
use crate::iot::{CallFailure, Iot};
use crate::pacer::Scope;

/// The error code of an object the certificate names but AWS does not know (it went away
/// between two reads).
pub const VANISHED: &str = "CarriedObjectVanished";

/// A registry object by its account, region and name.
type NameInScope = (Scope, String);

/// Reads snapshots, sharing what certificates have in common for the whole run.
#[derive(Default)]
pub struct SnapshotReader {
    policies: Once<NameInScope, CarriedPolicy>,
    groups: Once<NameInScope, Option<CarriedGroup>>,
    types: Once<NameInScope, CarriedThingType>,
}

impl SnapshotReader {
    /// A reader with empty caches.
    pub fn new() -> Self {
        Self::default()
    }

    /// What certificate `arn` carries, given the policies and things attached to it (or
    /// detached from it by an earlier run of this migration): their definitions, the things'
    /// types, their static groups with every ancestor and the policies attached to those.
    /// Each thing records its direct memberships (the deepest listed group of each
    /// hierarchy: AWS lists the parents too) and whether it is attached exclusively
    /// (ListPrincipalThingsV2, asked only when there are things; a thing an earlier run
    /// detached is no longer listed, and is carried as non-exclusive).
    pub async fn snapshot(
        &self,
        iot: &Iot,
        arn: &str,
        policies: &[String],
        things: &[String],
    ) -> Result<Snapshot, CallFailure> {
        let mut snapshot = Snapshot {
            source_account: iot.scope().account.clone(),
            attached_policies: policies.to_vec(),
            ..Default::default()
        };
        let exclusive: Vec<String> = if things.is_empty() {
            Vec::new()
        } else {
            let listed = iot.principal_things_v2(arn).await?;
            listed
                .into_iter()
                .filter(|(_, e)| *e)
                .map(|(t, _)| t)
                .collect()
        };
        let mut policy_names: Vec<String> = policies.to_vec();
        for name in things {
            let Some(mut thing) = iot.thing(name).await? else {
                return Err(vanished(iot, "thing", name));
            };
            // Static groups only: a dynamic group's membership follows from its query.
            let mut statics = Vec::new();
            for group in iot.groups_of_thing(name).await? {
                if self.group_chain(iot, &group, &mut snapshot.groups).await? {
                    statics.push(group);
                }
            }
            thing.groups = snapshot
                .deepest(&statics)
                .into_iter()
                .map(str::to_string)
                .collect();
            thing.exclusive = exclusive.contains(name);
            if let Some(t) = &thing.thing_type {
                if !snapshot.thing_types.iter().any(|c| &c.name == t) {
                    snapshot.thing_types.push(self.thing_type(iot, t).await?);
                }
            }
            snapshot.things.push(thing);
        }
        for g in &snapshot.groups {
            policy_names.extend(g.policies.iter().cloned());
        }
        for name in policy_names {
            if !snapshot.policies.iter().any(|p| p.name == name) {
                snapshot.policies.push(self.policy(iot, &name).await?);
            }
        }
        Ok(snapshot)
    }

    /// Adds `group` and its ancestors to `groups` (parents before children, once each);
    /// false when `group` is a dynamic group (not carried).
    async fn group_chain(
        &self,
        iot: &Iot,
        group: &str,
        groups: &mut Vec<CarriedGroup>,
    ) -> Result<bool, CallFailure> {
        let mut chain = Vec::new();
        let mut next = Some(group.to_string());
        while let Some(name) = next {
            if groups.iter().any(|g| g.name == name) || chain.len() > MAX_DEPTH {
                break;
            }
            let Some(g) = self.group(iot, &name).await? else {
                return Ok(false);
            };
            next = g.parent.clone();
            chain.push(g);
        }
        groups.extend(chain.into_iter().rev());
        Ok(true)
    }

    async fn group(&self, iot: &Iot, name: &str) -> Result<Option<CarriedGroup>, CallFailure> {
        let key = (iot.scope().clone(), name.to_string());
        self.groups
            .get(&key, || async {
                let Some(found) = iot.thing_group(name).await? else {
                    return Err(vanished(iot, "thing group", name));
                };
                let Some(mut group) = found else {
                    return Ok(None);
                };
                group.policies = iot.attached_policies(&iot.group_arn(name)).await?;
                Ok(Some(group))
            })
            .await
    }

    async fn policy(&self, iot: &Iot, name: &str) -> Result<CarriedPolicy, CallFailure> {
        let key = (iot.scope().clone(), name.to_string());
        self.policies
            .get(&key, || async {
                match iot.policy_document(name).await? {
                    Some(document) => Ok(CarriedPolicy {
                        name: name.to_string(),
                        document,
                    }),
                    None => Err(vanished(iot, "policy", name)),
                }
            })
            .await
    }

    async fn thing_type(&self, iot: &Iot, name: &str) -> Result<CarriedThingType, CallFailure> {
        let key = (iot.scope().clone(), name.to_string());
        self.types
            .get(&key, || async {
                iot.thing_type(name)
                    .await?
                    .ok_or_else(|| vanished(iot, "thing type", name))
            })
            .await
    }
}

/// AWS IoT's limit on the depth of a thing-group hierarchy, plus one: a guard against a
/// parent chain that loops.
const MAX_DEPTH: usize = 8;

fn vanished(iot: &Iot, kind: &str, name: &str) -> CallFailure {
    CallFailure::local(
        VANISHED,
        format!(
            "{kind} `{name}` is named by the certificate but does not exist in account {} \
             ({}): deleted meanwhile? Nothing was changed; run again with --retry-failed",
            iot.scope().account,
            iot.scope().region
        ),
    )
}
