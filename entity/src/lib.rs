//! The tables of device-sync as sea-orm entities, one module per table.
//!
//! - `station`, `order`: the cashier's billed seats and the orders on them (document 002).
//! - `catalogue`: categories and prices, stored as the JSON an admin sent.
//! - `change_log`: every change, numbered by a global `seq`, kept as it was broadcast.
//! - `sync_meta`: small server facts that must survive restarts (the log's epoch).
//! - `sync_audit_log`: who did what, when, with what outcome.
//! - `device_role`: the devices of the fleet, their priority and role.
//! - `device_token`: credentials issued to single devices (a hash of each).
//! - `sync_state`: each device's position against the change log.
//! - `master_election_log`: every successful election, with its term.
//! - `record`: generic records (table, id, JSON, version, tombstone).
//! - `write_receipt`: writes sent with an id, with their first answer: applied once each.
//! - `sync_conflict`: conflicts a device lost, listed in its next `sync_response`.
//! - `enums`: the enumerated columns (a device's role, its sync status).

pub mod catalogue;
pub mod change_log;
pub mod device_role;
pub mod device_token;
pub mod enums;
pub mod master_election_log;
pub mod order;
pub mod prelude;
pub mod record;
pub mod station;
pub mod sync_audit_log;
pub mod sync_conflict;
pub mod sync_meta;
pub mod sync_state;
pub mod write_receipt;
