//! The tables of device-sync as sea-orm entities, one module per table.
//!
//! - `station`, `order`: the cashier's billed seats and the orders on them (document 002).
//! - `catalogue`: categories and prices, stored as the JSON an admin sent.
//! - `change_log`: every change, numbered by a global `seq`, kept as it was broadcast.
//! - `sync_meta`: small server facts that must survive restarts (the log's epoch).
//! - `sync_audit_log`: who did what, when, with what outcome.

pub mod catalogue;
pub mod change_log;
pub mod order;
pub mod prelude;
pub mod station;
pub mod sync_audit_log;
pub mod sync_meta;
