//! The black-box test suite: the real binary, through the real aws-sdk-iot client, against
//! the simulator started in-process on 127.0.0.1. One test binary with a module per area
//! (one link step instead of one per file).

mod aws_rules;
mod carry;
mod checkpoint;
mod conventions;
mod credentials;
mod devices;
mod durability;
mod failsafe;
mod handoff;
mod harness;
mod iam;
mod lifecycle;
mod mistakes;
mod operator;
mod realaws;
mod register;
mod report;
mod select;
mod select_query;
mod soak;
mod survival;
mod transfer;
mod verdict;
mod verify;
