//! The entities under short names.

pub use super::catalogue::Entity as Catalogue;
pub use super::change_log::Entity as ChangeLog;
pub use super::device_role::Entity as DeviceRole;
pub use super::device_token::Entity as DeviceToken;
pub use super::master_election_log::Entity as MasterElectionLog;
pub use super::order::Entity as Order;
pub use super::record::Entity as Record;
pub use super::station::Entity as Station;
pub use super::sync_audit_log::Entity as SyncAuditLog;
pub use super::sync_conflict::Entity as SyncConflict;
pub use super::sync_meta::Entity as SyncMeta;
pub use super::sync_state::Entity as SyncState;
pub use super::write_receipt::Entity as WriteReceipt;
