//! One module per command, each the same shape: its arguments in, one `run`, the exit code
//! out. Commands call the library layer (`run`, `lifecycle`, `plan`, `report`, `session`)
//! and never each other.

pub mod accept;
pub mod cancel;
pub mod completions;
pub mod man;
pub mod plan;
pub mod register;
pub mod reject;
pub mod report;
pub mod retire;
pub mod select;
pub mod status;
pub mod transfer;
pub mod validate;
pub mod verify;
