//! Rules that need no I/O, each a plain type or function with unit tests, called by the actors.
//!
//! - `station`: a station's timer and order list, and what each cashier command does to it.
//! - `caller`: who a request or session speaks as, by its token.
//! - `catalogue`: the catalogue documents an admin writes.
//! - `commands`: the changes a client can ask for, one vocabulary for every transport.
//! - `election`: who wins an election, default priorities, when an election gives up.
//! - `feed`: a session's feed of logged changes (catch-up, resumes, going live), exactly once.
//! - `fleet`: devices, elections, audit rows and sync states as recorded, and their writes.
//! - `records`: record ids, conflicts under each policy, the sync-error retry schedule.
//! - `resume`: whether a reconnecting client can be replayed what it missed.

pub mod caller;
pub mod catalogue;
pub mod commands;
pub mod election;
pub mod feed;
pub mod fleet;
pub mod records;
pub mod resume;
#[cfg(test)]
pub mod seeded;
pub mod station;
