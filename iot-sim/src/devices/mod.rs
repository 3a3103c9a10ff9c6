//! The devices: one per thing of an account whose devices are simulated (a behaviour was
//! set for it, as the default or per thing). Each device holds the certificate its thing
//! had when the device was made, and connects, with its thing's name as client id, to the
//! account of its configured endpoint (at first its own account). It is connected only
//! while its certificate is ACTIVE in that account (owned there) and a policy attached to
//! the certificate, or to a group (or a parent group) of its thing there, allows
//! `iot:Connect` ([`policy`]). Every connect and disconnect is recorded as fleet
//! indexing's connectivity of that account ([`crate::fleet_index`]).
//!
//! What a device does with a job execution it learns of (on the account it is connected
//! to, when the rollout releases it, or when it connects):
//!
//! - `follow`: starts it (IN_PROGRESS), and after its delay reads the job document, takes
//!   the `iot:Data-ATS` endpoint of an account of its region found in it, reports
//!   SUCCEEDED and keeps that endpoint: it moves there as soon as it can connect there,
//!   staying on its current connection until then (no endpoint in the document: FAILED);
//! - `reject`: after its delay, REJECTED;
//! - `ignore`: nothing (the execution stays QUEUED);
//! - `offline`: it never connects.
//!
//! The state changes the devices see are followed exactly: every operation that may
//! change what a device can do (a certificate's status, its policies, a group's policies
//! or members, a registration, a transfer) re-evaluates the devices it concerns at the
//! moment it happens, and [`crate::world`]'s timers run the delays. Each device counts the
//! time it spent connected nowhere: its seconds offline.

pub mod policy;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fleet_index::Connectivity;
use crate::jobs::ExecStatus;
use crate::validate;
use crate::world::{ancestry, data_endpoint};
use crate::world::{Call, Caller, Reply, Timer, World};

/// A device: (region, account it belongs to, thing name = client id).
pub type DeviceKey = (String, String, String);

/// What a device does with a job execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// Acknowledges (SUCCEEDED) after its delay and moves to the endpoint in the document.
    Follow,
    /// Leaves the execution QUEUED.
    Ignore,
    /// Rejects it (REJECTED) after its delay.
    Reject,
    /// Never connects.
    Offline,
}

/// A device's delay when none is given.
pub const DEFAULT_DELAY_MS: u64 = 500;

/// A behaviour, with the delay of `follow` and `reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSetting {
    /// What the device does.
    pub behaviour: Behaviour,
    /// Milliseconds between learning of an execution and answering it (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl DeviceSetting {
    /// `behaviour` with the default delay.
    pub fn of(behaviour: Behaviour) -> DeviceSetting {
        DeviceSetting {
            behaviour,
            delay_ms: None,
        }
    }

    fn delay(&self) -> i64 {
        self.delay_ms.unwrap_or(DEFAULT_DELAY_MS) as i64
    }
}

/// The devices of a seeded account: a default behaviour for every thing, and behaviours
/// of some things.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDevices {
    /// Behaviour of every thing without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DeviceSetting>,
    /// Behaviours by thing name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub things: BTreeMap<String, DeviceSetting>,
}

fn default_region() -> String {
    crate::config::DEFAULT_REGION.to_string()
}

/// `POST /_sim/devices`: behaviours of one account's devices (made for its things).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceControl {
    /// The account whose things the devices are.
    pub account: String,
    /// Its region (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Behaviour of every thing without its own (things created later too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DeviceSetting>,
    /// Behaviours by thing name (the things must exist).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub things: BTreeMap<String, DeviceSetting>,
}

/// One device as `GET /_sim/devices` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Region.
    pub region: String,
    /// The account whose thing it is.
    pub account: String,
    /// Its thing (and client id).
    pub thing: String,
    /// What it does with jobs.
    pub behaviour: Behaviour,
    /// The certificate it holds.
    pub certificate_id: Option<String>,
    /// The account of the endpoint it is configured with.
    pub endpoint_account: String,
    /// The account it is connected to now.
    pub connected_to: Option<String>,
    /// When it last connected or disconnected (milliseconds since the epoch).
    pub since_ms: i64,
    /// Seconds it spent connected nowhere since it was made.
    pub seconds_offline: f64,
}

/// One device.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    setting: DeviceSetting,
    /// The setting is its own (not the account's default).
    explicit: bool,
    cert: Option<String>,
    endpoint: String,
    connected_to: Option<String>,
    since_ms: i64,
    offline_ms: i64,
    offline_since: Option<i64>,
    /// Executions it started or answered: (account, job, execution number).
    handled: BTreeSet<(String, String, i64)>,
}

/// Every device, and the indexes the re-evaluations need.
#[derive(Clone, Debug, Default)]
pub(crate) struct Devices {
    all: BTreeMap<DeviceKey, Device>,
    /// (region, account) -> default behaviour of its things.
    defaults: BTreeMap<(String, String), DeviceSetting>,
    by_cert: HashMap<String, BTreeSet<DeviceKey>>,
    /// (region, client id) -> devices.
    by_thing: HashMap<(String, String), BTreeSet<DeviceKey>>,
    /// (region, account, client id) -> the device connected there.
    sessions: HashMap<(String, String, String), DeviceKey>,
}

/// What a successful call may have changed for the devices.
#[derive(Debug, Default)]
pub(crate) struct Touch {
    certs: Vec<String>,
    things: Vec<String>,
    /// A thing created in the caller's account (a device of its own if its account has a
    /// default behaviour).
    created: Option<String>,
    /// RegisterCertificateWithoutCA: the new copy's id is in the reply.
    registered: bool,
}

fn cert_id_of_arn(arn: &str) -> Option<String> {
    validate::parse_cert_arn(arn).map(|(_, _, id)| id)
}

impl World {
    /// What `call` by `caller` may change for the devices (looked at before it runs: a
    /// group's members are those of before the call).
    pub(crate) fn touches(&self, caller: &Caller, call: &Call) -> Touch {
        let mut t = Touch::default();
        if self.devices.all.is_empty() && self.devices.defaults.is_empty() {
            return t;
        }
        let members = |group: &str| -> Vec<String> {
            let Some(d) = self.data(&caller.region, &caller.account) else {
                return Vec::new();
            };
            let below = crate::world::descendants(d, group);
            d.things
                .iter()
                .filter(|(_, th)| th.groups.iter().any(|g| below.contains(g)))
                .map(|(n, _)| n.clone())
                .collect()
        };
        match call {
            Call::Update { id, .. }
            | Call::Transfer { id, .. }
            | Call::Accept { id, .. }
            | Call::Reject { id, .. }
            | Call::Cancel { id } => t.certs.push(id.clone()),
            Call::AttachPolicy { target, .. } | Call::DetachPolicy { target, .. } => {
                if let Some(id) = cert_id_of_arn(target) {
                    t.certs.push(id);
                } else if let Some((_, _, group)) = validate::parse_group_arn(target) {
                    t.things = members(&group);
                }
            }
            Call::AttachThing {
                thing, principal, ..
            }
            | Call::DetachThing { thing, principal } => {
                t.certs.extend(cert_id_of_arn(principal));
                t.things.push(thing.clone());
            }
            Call::AddThingToThingGroup { thing, .. }
            | Call::RemoveThingFromThingGroup { thing, .. } => t.things.push(thing.clone()),
            Call::DeleteThingGroup { name } => t.things = members(name),
            Call::CreateThing { name, .. } => t.created = Some(name.clone()),
            Call::RegisterWithoutCa { .. } => t.registered = true,
            _ => {}
        }
        t
    }

    /// Re-evaluates the devices a successful call concerns, at `at`.
    pub(crate) fn devices_after(&mut self, caller: &Caller, touch: Touch, reply: &Reply, at: i64) {
        let mut certs = touch.certs;
        if touch.registered {
            if let Reply::Json(v) = reply {
                certs.extend(v["certificateId"].as_str().map(str::to_string));
            }
        }
        let mut keys: BTreeSet<DeviceKey> = BTreeSet::new();
        for id in &certs {
            keys.extend(self.devices.by_cert.get(id).into_iter().flatten().cloned());
        }
        for thing in &touch.things {
            let k = (caller.region.clone(), thing.clone());
            keys.extend(self.devices.by_thing.get(&k).into_iter().flatten().cloned());
        }
        if let Some(thing) = touch.created {
            let home = (caller.region.clone(), caller.account.clone());
            if let Some(default) = self.devices.defaults.get(&home).cloned() {
                let key = (home.0, home.1, thing);
                if !self.devices.all.contains_key(&key) {
                    self.make_device(&key, default, false, at);
                }
                keys.insert(key);
            }
        }
        for key in keys {
            self.reevaluate(&key, at);
        }
    }

    /// Sets the behaviours of one account's devices (making a device for each of its
    /// things that has none), as `POST /_sim/devices` asks.
    pub fn set_devices(&mut self, control: &DeviceControl) -> Result<(), String> {
        if !validate::is_account_id(&control.account) {
            return Err(format!(
                "invalid account id {:?}: expected 12 digits",
                control.account
            ));
        }
        validate::check_region(&control.region)?;
        let now = crate::world::now_millis();
        self.advance(now);
        let seed = SeedDevices {
            default: control.default.clone(),
            things: control.things.clone(),
        };
        self.seed_devices(&control.region, &control.account, Some(&seed), now)
    }

    /// Applies the devices of a seeded (or controlled) account at `at`.
    pub(crate) fn seed_devices(
        &mut self,
        region: &str,
        account: &str,
        seed: Option<&SeedDevices>,
        at: i64,
    ) -> Result<(), String> {
        let Some(seed) = seed else { return Ok(()) };
        let things: Vec<String> = self
            .data(region, account)
            .map(|d| d.things.keys().cloned().collect())
            .unwrap_or_default();
        for name in seed.things.keys() {
            if !things.contains(name) {
                return Err(format!(
                    "devices of {account} in {region}: there is no thing {name:?}"
                ));
            }
        }
        for s in seed.things.values().chain(&seed.default) {
            if s.delay_ms.is_some_and(|d| d > 86_400_000) {
                return Err("a device's delay_ms must be at most a day".to_string());
            }
        }
        let home = (region.to_string(), account.to_string());
        if let Some(d) = &seed.default {
            self.devices.defaults.insert(home.clone(), d.clone());
        }
        for thing in things {
            let key = (home.0.clone(), home.1.clone(), thing.clone());
            let own = seed.things.get(&thing).cloned();
            let setting = match (&own, self.devices.all.get(&key)) {
                (Some(s), _) => Some((s.clone(), true)),
                (None, Some(dev)) if dev.explicit => None,
                (None, _) => seed.default.clone().map(|s| (s, false)),
            };
            let Some((setting, explicit)) = setting else {
                continue;
            };
            match self.devices.all.get_mut(&key) {
                Some(dev) => {
                    dev.setting = setting;
                    dev.explicit = explicit;
                }
                None => self.make_device(&key, setting, explicit, at),
            }
            self.reevaluate(&key, at);
        }
        Ok(())
    }

    fn make_device(&mut self, key: &DeviceKey, setting: DeviceSetting, explicit: bool, at: i64) {
        let (region, account, thing) = key;
        let cert = self.certificate_of(region, account, thing);
        if let Some(c) = &cert {
            self.devices
                .by_cert
                .entry(c.clone())
                .or_default()
                .insert(key.clone());
        }
        self.devices
            .by_thing
            .entry((region.clone(), thing.clone()))
            .or_default()
            .insert(key.clone());
        self.devices.all.insert(
            key.clone(),
            Device {
                setting,
                explicit,
                cert,
                endpoint: account.clone(),
                connected_to: None,
                since_ms: at,
                offline_ms: 0,
                offline_since: Some(at),
                handled: BTreeSet::new(),
            },
        );
    }

    /// The certificate a thing's device holds: one attached to the thing in its account,
    /// an ACTIVE one first.
    fn certificate_of(&self, region: &str, account: &str, thing: &str) -> Option<String> {
        let d = self.data(region, account)?;
        let attached: Vec<&crate::world::Cert> =
            d.certs.values().filter(|c| c.has_thing(thing)).collect();
        attached
            .iter()
            .find(|c| c.status_is("ACTIVE"))
            .or(attached.first())
            .map(|c| c.id().to_string())
    }

    /// Why the device holding `cert` cannot connect as `client` to `account` now (`Ok`:
    /// it can), with the DisconnectReason a broker would give.
    fn can_connect(
        &self,
        region: &str,
        account: &str,
        cert: Option<&str>,
        client: &str,
    ) -> Result<(), &'static str> {
        let c = cert
            .and_then(|id| self.data(region, account)?.certs.get(id))
            .filter(|c| c.owned_by(account) && c.status_is("ACTIVE"))
            .ok_or("AUTH_ERROR")?;
        let d = self
            .data(region, account)
            .expect("the certificate is there");
        let mut names: BTreeSet<&str> = c.policy_names().collect();
        let thing = d.things.get(client).filter(|_| c.has_thing(client));
        if let Some(t) = thing {
            for g in &t.groups {
                for name in ancestry(d, g, true) {
                    if let Some(group) = d.groups.get(&name) {
                        names.extend(group.policies.iter().map(String::as_str));
                    }
                }
            }
        }
        let documents: Vec<&str> = names
            .iter()
            .filter_map(|n| d.policies.get(*n))
            .map(|p| p.document.as_str())
            .collect();
        let thing_name = thing.map(|_| client);
        if policy::connect_allowed(&documents, region, account, client, thing_name) {
            Ok(())
        } else {
            Err("FORBIDDEN_ACCESS")
        }
    }

    /// Connects, moves or disconnects the device as the world now allows, at `at`.
    fn reevaluate(&mut self, key: &DeviceKey, at: i64) {
        let (region, home, thing) = key;
        let Some(dev) = self.devices.all.get(key) else {
            return;
        };
        let mut cert = dev.cert.clone();
        if cert.is_none() {
            cert = self.certificate_of(region, home, thing);
            if let Some(c) = &cert {
                self.devices
                    .by_cert
                    .entry(c.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let dev = self.devices.all.get(key).expect("looked up");
        let (current, desired) = (dev.connected_to.clone(), dev.endpoint.clone());
        let can = |account: &str| self.can_connect(region, account, cert.as_deref(), thing);
        let next = if dev.setting.behaviour == Behaviour::Offline {
            None
        } else if can(&desired).is_ok() {
            Some(desired.clone())
        } else {
            current.clone().filter(|c| can(c).is_ok())
        };
        let dropped_why = current.as_deref().map(|c| match can(c) {
            Ok(()) => "CLIENT_INITIATED_DISCONNECT",
            Err(why) => why,
        });
        let dev = self.devices.all.get_mut(key).expect("looked up");
        dev.cert = cert;
        if next == current {
            return;
        }
        dev.connected_to = next.clone();
        dev.since_ms = at;
        match (&current, &next) {
            (None, Some(_)) => {
                if let Some(since) = dev.offline_since.take() {
                    dev.offline_ms += at - since;
                }
            }
            (Some(_), None) => dev.offline_since = Some(at),
            _ => {}
        }
        if let Some(old) = current {
            let record = Connectivity {
                connected: false,
                timestamp: Some(at),
                disconnect_reason: dropped_why.map(str::to_string),
            };
            self.data_entry(region, &old)
                .index
                .connectivity
                .insert(thing.clone(), record);
            self.devices
                .sessions
                .remove(&(region.clone(), old, thing.clone()));
        }
        if let Some(new) = next {
            let record = Connectivity {
                connected: true,
                timestamp: Some(at),
                disconnect_reason: None,
            };
            self.data_entry(region, &new)
                .index
                .connectivity
                .insert(thing.clone(), record);
            self.devices
                .sessions
                .insert((region.clone(), new.clone(), thing.clone()), key.clone());
            // A device that connects asks for the executions waiting for it there.
            let waiting: Vec<(String, i64)> = self
                .data(region, &new)
                .map(|d| {
                    d.jobs
                        .values()
                        .filter_map(|j| {
                            let e = j.executions.get(thing)?;
                            (e.status == ExecStatus::Queued && e.released_ms <= at)
                                .then(|| (j.spec.id.clone(), e.number))
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (job, number) in waiting {
                self.notice(key, &new, &job, number, at);
            }
        }
    }

    /// The rollout released an execution: the device connected there with the thing's
    /// name learns of it.
    pub(crate) fn execution_released(
        &mut self,
        region: &str,
        account: &str,
        job: &str,
        thing: &str,
        number: i64,
        at: i64,
    ) {
        let session = (region.to_string(), account.to_string(), thing.to_string());
        if let Some(key) = self.devices.sessions.get(&session).cloned() {
            self.notice(&key, account, job, number, at);
        }
    }

    /// The device `key`, connected to `account`, learns of an execution there.
    fn notice(&mut self, key: &DeviceKey, account: &str, job: &str, number: i64, at: i64) {
        let Some(dev) = self.devices.all.get_mut(key) else {
            return;
        };
        let handle = (account.to_string(), job.to_string(), number);
        if dev.handled.contains(&handle) {
            return;
        }
        let (behaviour, delay) = (dev.setting.behaviour, dev.setting.delay());
        if !matches!(behaviour, Behaviour::Follow | Behaviour::Reject) {
            return;
        }
        dev.handled.insert(handle);
        let (region, thing) = (key.0.clone(), key.2.clone());
        if behaviour == Behaviour::Follow {
            let started = self.set_execution(
                &region,
                account,
                job,
                &thing,
                number,
                ExecStatus::InProgress,
                BTreeMap::new(),
                at,
            );
            if !started {
                return;
            }
        }
        self.timers.push(
            at + delay,
            Timer::DeviceDone {
                device: key.clone(),
                account: account.to_string(),
                job: job.to_string(),
                number,
            },
        );
    }

    /// A device answers an execution it learnt of, if it is still connected where the job
    /// is: `follow` reports SUCCEEDED and moves to the endpoint of the document (FAILED
    /// without one), `reject` reports REJECTED.
    pub(crate) fn device_done(
        &mut self,
        key: &DeviceKey,
        account: &str,
        job: &str,
        number: i64,
        at: i64,
    ) {
        let Some(dev) = self.devices.all.get(key) else {
            return;
        };
        if dev.connected_to.as_deref() != Some(account) {
            // It cannot report: the execution stays as it is (and may time out).
            return;
        }
        let behaviour = dev.setting.behaviour;
        let (region, thing) = (key.0.clone(), key.2.clone());
        let document = self
            .data(&region, account)
            .and_then(|d| d.jobs.get(job))
            .map(|j| j.spec.document.clone());
        let Some(document) = document else { return };
        match behaviour {
            Behaviour::Reject => {
                let details = BTreeMap::from([("reason".to_string(), "rejected".to_string())]);
                self.set_execution(
                    &region,
                    account,
                    job,
                    &thing,
                    number,
                    ExecStatus::Rejected,
                    details,
                    at,
                );
            }
            Behaviour::Follow => match self.endpoint_in(&region, &document) {
                Some((address, to)) => {
                    let details = BTreeMap::from([("endpoint".to_string(), address)]);
                    let done = self.set_execution(
                        &region,
                        account,
                        job,
                        &thing,
                        number,
                        ExecStatus::Succeeded,
                        details,
                        at,
                    );
                    if done {
                        if let Some(dev) = self.devices.all.get_mut(key) {
                            dev.endpoint = to;
                        }
                        self.reevaluate(key, at);
                    }
                }
                None => {
                    let why = format!("no iot:Data-ATS endpoint of {region} in the job document");
                    let details = BTreeMap::from([("reason".to_string(), why)]);
                    self.set_execution(
                        &region,
                        account,
                        job,
                        &thing,
                        number,
                        ExecStatus::Failed,
                        details,
                        at,
                    );
                }
            },
            Behaviour::Ignore | Behaviour::Offline => {}
        }
    }

    /// The first string of `document` that is the `iot:Data-ATS` endpoint of an account of
    /// `region`: the address and the account.
    fn endpoint_in(&self, region: &str, document: &str) -> Option<(String, String)> {
        let value: Value = serde_json::from_str(document).ok()?;
        let mut strings = Vec::new();
        collect_strings(&value, &mut strings);
        let accounts = self.accounts_of(region);
        strings.into_iter().find_map(|s| {
            accounts.iter().find_map(|a| {
                (data_endpoint(a, region, "iot:Data-ATS").as_deref() == Some(s))
                    .then(|| (s.to_string(), a.clone()))
            })
        })
    }

    /// Every device, as `GET /_sim/devices` shows it, after running what is due.
    pub fn device_states(&mut self) -> Vec<DeviceState> {
        let now = crate::world::now_millis();
        self.advance(now);
        self.devices
            .all
            .iter()
            .map(|((region, account, thing), d)| {
                let open = d.offline_since.map_or(0, |s| (now - s).max(0));
                DeviceState {
                    region: region.clone(),
                    account: account.clone(),
                    thing: thing.clone(),
                    behaviour: d.setting.behaviour,
                    certificate_id: d.cert.clone(),
                    endpoint_account: d.endpoint.clone(),
                    connected_to: d.connected_to.clone(),
                    since_ms: d.since_ms,
                    seconds_offline: (d.offline_ms + open) as f64 / 1000.0,
                }
            })
            .collect()
    }
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}
