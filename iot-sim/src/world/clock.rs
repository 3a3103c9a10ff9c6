//! The simulator's own time: what happens later by itself (a job execution rolled out, a
//! device that finishes a job, an execution that times out) waits here as a timer, and is
//! run, in time order and at its own time, before anything observes the world (every
//! operation, the state dump, the device listing). Nobody can tell this from a world that
//! ran each timer the moment it was due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{now_epoch, World};
use crate::devices::DeviceKey;

/// Milliseconds since the Unix epoch.
pub(crate) type Millis = i64;

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> Millis {
    (now_epoch() * 1000.0).round() as Millis
}

/// Something due at a moment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The rollout makes an execution known to the device of its thing.
    Release {
        region: String,
        account: String,
        job: String,
        thing: String,
        number: i64,
    },
    /// A device is done with an execution it started (its behaviour says how).
    DeviceDone {
        device: DeviceKey,
        account: String,
        job: String,
        number: i64,
    },
    /// An IN_PROGRESS execution reaches its job's timeout.
    Timeout {
        region: String,
        account: String,
        job: String,
        thing: String,
        number: i64,
    },
}

/// The timers waiting, earliest first (ties in the order they were set).
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Millis, u64, Timer)>>,
    seq: u64,
}

impl Timers {
    /// Sets `timer` for `at`.
    pub(crate) fn push(&mut self, at: Millis, timer: Timer) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, timer)));
    }

    fn pop_due(&mut self, now: Millis) -> Option<(Millis, Timer)> {
        if self
            .heap
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            self.heap.pop().map(|Reverse((at, _, t))| (at, t))
        } else {
            None
        }
    }
}

impl World {
    /// Runs every timer due by `now`, each at its own time.
    pub(crate) fn advance(&mut self, now: Millis) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Release {
                    region,
                    account,
                    job,
                    thing,
                    number,
                } => self.execution_released(&region, &account, &job, &thing, number, at),
                Timer::DeviceDone {
                    device,
                    account,
                    job,
                    number,
                } => self.device_done(&device, &account, &job, number, at),
                Timer::Timeout {
                    region,
                    account,
                    job,
                    thing,
                    number,
                } => self.execution_timed_out(&region, &account, &job, &thing, number, at),
            }
        }
    }
}
