//! The rebuild after accept (`accept --carry`): what a certificate carried is recreated in
//! the target account and attached to it, in dependency order — thing types, thing groups
//! (parents first) and their policies, policies, things — then the certificate's policies
//! and things are attached and the things added to their groups.
//!
//! Every create and attach is a write-ahead step of the certificate's item, reconciled like
//! the others; each is made only after a read shows it missing, so a rerun makes no mutating
//! call. What certificates share (a type, a group, a policy) is looked at once per run. An
//! object that exists already with the same definition is reused; with another definition
//! the certificate fails naming the object and the difference, unless `--on-conflict reuse`.

use std::sync::Arc;

use crate::carry::once::Once;
use crate::carry::snapshot::{CarriedGroup, CarriedThing, CarriedThingType, Snapshot};
use crate::carry::store::SnapshotStore;
use crate::carry::{compare, rewrite, OnConflict};
use crate::iot::{CallFailure, Iot};
use crate::ledger::{LedgerError, Stage};
use crate::pacer::Scope;
use crate::pipeline::ItemEnd;

use super::change::Change;
use super::item::{Item, StepEnd};

/// The error code of a certificate that failed because an object differs.
pub const CONFLICT: &str = "CarryConflict";

/// The error code of a certificate accept --carry has no snapshot of.
pub const NO_SNAPSHOT: &str = "NoSnapshot";

/// How the rebuild of one certificate ended.
pub enum Carried {
    /// Everything is in place; `reused` lists the objects reused despite a difference.
    Done {
        /// `policy fleet (at Statement[0]...)`, one per object.
        reused: Vec<String>,
    },
    /// The item ended (failed, in doubt or interrupted); its events are recorded.
    Ended(ItemEnd),
}

/// What looking at a shared object found, kept for the run.
#[derive(Debug, Clone)]
enum Shared {
    /// It is in place (found with the same definition, or created).
    InPlace,
    /// It exists with another definition.
    Differs(String),
}

/// Why ensuring a shared object stopped.
enum Halt {
    Call(CallFailure),
    InDoubt,
    Ledger(LedgerError),
}

/// A shared object (type, group, policy) by its account and region, kind and name.
type SharedObject = (Scope, &'static str, String);

/// Rebuilds what certificates carried, in the accepting account.
pub struct Carrier {
    store: Arc<SnapshotStore>,
    on_conflict: OnConflict,
    shared: Once<SharedObject, Shared>,
}

impl Carrier {
    /// A rebuild from the snapshots in `store`.
    pub fn new(store: Arc<SnapshotStore>, on_conflict: OnConflict) -> Self {
        Carrier {
            store,
            on_conflict,
            shared: Once::default(),
        }
    }

    /// Whether the store holds the certificate's snapshot.
    pub fn has_snapshot(&self, id: &str) -> bool {
        self.store.get(id).is_some()
    }

    /// Recreates and attaches what the item's certificate (ARN `arn` in `iot`'s account)
    /// carried.
    pub async fn carry(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
    ) -> Result<Carried, LedgerError> {
        let id = &item.row().certificate_id;
        let Some(snapshot) = self.store.get(id) else {
            let end = item.fail(Stage::Carry, NO_SNAPSHOT, no_snapshot()).await?;
            return Ok(Carried::Ended(end));
        };
        let snapshot = for_target(snapshot, &iot.scope().account);
        match self.rebuild(item, iot, arn, &snapshot).await {
            Ok(Ok(reused)) => Ok(Carried::Done { reused }),
            Ok(Err(conflict)) => {
                let message = format!(
                    "{conflict}; nothing more was changed. Make them equal, or pass \
                     --on-conflict reuse to attach the existing one, then run again with \
                     --retry-failed"
                );
                let end = item.fail(Stage::Carry, CONFLICT, message).await?;
                Ok(Carried::Ended(end))
            }
            Err(Halt::Call(f)) => Ok(Carried::Ended(item.fail_call(Stage::Carry, &f).await?)),
            Err(Halt::InDoubt) => Ok(Carried::Ended(ItemEnd::InDoubt)),
            Err(Halt::Ledger(e)) => Err(e),
        }
    }

    /// The steps, in dependency order. `Ok(Err(..))`: an object differs (and conflicts fail).
    async fn rebuild(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        s: &Snapshot,
    ) -> Result<Result<Vec<String>, String>, Halt> {
        let mut reused = Vec::new();
        let mut judge = |found: Shared| -> Result<(), String> {
            match found {
                Shared::InPlace => Ok(()),
                Shared::Differs(d) if self.on_conflict == OnConflict::Reuse => {
                    reused.push(d);
                    Ok(())
                }
                Shared::Differs(d) => Err(d),
            }
        };
        for t in &s.thing_types {
            if let Err(d) = judge(self.thing_type(item, iot, arn, t).await?) {
                return Ok(Err(d));
            }
        }
        for g in &s.groups {
            if let Err(d) = judge(self.group(item, iot, arn, g).await?) {
                return Ok(Err(d));
            }
        }
        for p in &s.policies {
            if let Err(d) = judge(self.policy(item, iot, arn, &p.name, &p.document).await?) {
                return Ok(Err(d));
            }
        }
        for g in &s.groups {
            for p in &g.policies {
                self.group_policy(item, iot, arn, &g.name, p).await?;
            }
        }
        for t in &s.things {
            // A thing is the certificate's own: looked at by this item, not shared.
            if let Err(d) = judge(self.thing(item, iot, arn, t).await?) {
                return Ok(Err(d));
            }
        }
        let attached = read(iot.attached_policies(arn).await)?;
        for p in &s.attached_policies {
            if !attached.contains(p) {
                step(item, iot, arn, Change::AttachPolicy(p.clone())).await?;
            }
        }
        let things = read(iot.principal_things(arn).await)?;
        for t in &s.things {
            if !things.contains(&t.name) {
                let change = if t.exclusive {
                    Change::AttachThingExclusively(t.name.clone())
                } else {
                    Change::AttachThing(t.name.clone())
                };
                step(item, iot, arn, change).await?;
            }
            // Only the direct memberships: the parents follow (AWS lists them, and refuses
            // a second group of the same hierarchy).
            let direct = s.direct_groups(t);
            if direct.is_empty() {
                continue;
            }
            let groups = read(iot.groups_of_thing(&t.name).await)?;
            for g in direct {
                if !groups.iter().any(|listed| listed == g) {
                    let change = Change::AddThingToGroup {
                        thing: t.name.clone(),
                        group: g.to_string(),
                    };
                    step(item, iot, arn, change).await?;
                }
            }
        }
        Ok(Ok(reused))
    }

    async fn thing_type(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        t: &CarriedThingType,
    ) -> Result<Shared, Halt> {
        let key = (iot.scope().clone(), "thing type", t.name.clone());
        self.shared
            .get(&key, || async {
                match read(iot.thing_type(&t.name).await)? {
                    Some(found) => Ok(differs(
                        "thing type",
                        &t.name,
                        compare::thing_type(t, &found),
                    )),
                    None => create(item, iot, arn, Change::CreateThingType(t.clone())).await,
                }
            })
            .await
    }

    async fn group(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        g: &CarriedGroup,
    ) -> Result<Shared, Halt> {
        let key = (iot.scope().clone(), "thing group", g.name.clone());
        self.shared
            .get(&key, || async {
                match read(iot.thing_group(&g.name).await)? {
                    Some(Some(found)) => {
                        Ok(differs("thing group", &g.name, compare::group(g, &found)))
                    }
                    Some(None) => Ok(Shared::Differs(format!(
                        "thing group `{}` exists in account {} as a dynamic group",
                        g.name,
                        iot.scope().account
                    ))),
                    None => create(item, iot, arn, Change::CreateThingGroup(g.clone())).await,
                }
            })
            .await
    }

    async fn policy(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        name: &str,
        document: &str,
    ) -> Result<Shared, Halt> {
        let key = (iot.scope().clone(), "policy", name.to_string());
        self.shared
            .get(&key, || async {
                match read(iot.policy_document(name).await)? {
                    Some(found) => Ok(differs("policy", name, compare::policy(document, &found))),
                    None => {
                        let change = Change::CreatePolicy {
                            name: name.to_string(),
                            document: document.to_string(),
                        };
                        create(item, iot, arn, change).await
                    }
                }
            })
            .await
    }

    async fn group_policy(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        group: &str,
        policy: &str,
    ) -> Result<Shared, Halt> {
        let key = (
            iot.scope().clone(),
            "group policy",
            format!("{group}/{policy}"),
        );
        self.shared
            .get(&key, || async {
                let attached = read(iot.attached_policies(&iot.group_arn(group)).await)?;
                if attached.iter().any(|p| p == policy) {
                    return Ok(Shared::InPlace);
                }
                let change = Change::AttachGroupPolicy {
                    policy: policy.to_string(),
                    group: group.to_string(),
                };
                create(item, iot, arn, change).await
            })
            .await
    }

    async fn thing(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        t: &CarriedThing,
    ) -> Result<Shared, Halt> {
        match read(iot.thing(&t.name).await)? {
            Some(found) => Ok(differs("thing", &t.name, compare::thing(t, &found))),
            None => create(item, iot, arn, Change::CreateThing(t.clone())).await,
        }
    }
}

/// The snapshot as the target gets it: policy documents name the target account.
fn for_target(mut s: Snapshot, target: &str) -> Snapshot {
    for p in &mut s.policies {
        p.document = rewrite::rewrite_account(&p.document, &s.source_account, target);
    }
    s
}

fn differs(kind: &str, name: &str, difference: Option<String>) -> Shared {
    match difference {
        None => Shared::InPlace,
        Some(d) => Shared::Differs(format!(
            "{kind} `{name}` exists in the target with another definition ({d})"
        )),
    }
}

fn read<T>(res: Result<T, CallFailure>) -> Result<T, Halt> {
    res.map_err(Halt::Call)
}

/// One write-ahead step of the item.
async fn step(item: &Item<'_>, iot: &Iot, arn: &str, change: Change) -> Result<(), Halt> {
    match item.step(iot, &change, arn).await.map_err(Halt::Ledger)? {
        StepEnd::Done => Ok(()),
        StepEnd::Refused(f) => Err(Halt::Call(f)),
        StepEnd::InDoubt => Err(Halt::InDoubt),
    }
}

async fn create(item: &Item<'_>, iot: &Iot, arn: &str, change: Change) -> Result<Shared, Halt> {
    step(item, iot, arn, change).await.map(|()| Shared::InPlace)
}

/// Why a certificate without a snapshot is not accepted by `accept --carry`.
pub fn no_snapshot() -> String {
    "the transfer ledger has no snapshot of this certificate (transferred without --carry, \
     or --from-ledger names another migration's ledger); nothing was changed"
        .to_string()
}
