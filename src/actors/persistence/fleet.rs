//! Writes about the fleet: device records, liveness, who is master, the term, the election log
//! and the audit trail. Applied inside a batch like every write; they take no `seq`.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::domain::fleet::FleetWrite;
use crate::store;

/// Applies the writes, in order, inside the batch's transaction.
pub(super) async fn apply(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    writes: Vec<FleetWrite>,
) -> Result<(), DbErr> {
    for write in writes {
        match write {
            // Checked before the batch's writes are applied (`Write for Vec<FleetWrite>`).
            FleetWrite::Fenced { .. } => {}
            FleetWrite::Device(d) => store::devices::upsert(txn, now, d).await?,
            FleetWrite::Activity { device_id, active, last_seen } => {
                store::devices::set_activity(txn, now, &device_id, active, last_seen).await?;
            }
            FleetWrite::Seen(seen) => {
                for (device_id, at) in seen {
                    store::devices::set_seen(txn, &device_id, at).await?;
                }
            }
            FleetWrite::Master(master) => store::devices::set_master(txn, now, master.as_deref()).await?,
            FleetWrite::Term(term) => store::meta::set(txn, store::meta::TERM, &term.to_string()).await?,
            FleetWrite::TermSpent(term) => store::meta::spend_term(txn, term).await?,
            FleetWrite::ElectionLog(e) => store::devices::log_election(txn, now, e).await?,
            FleetWrite::Audit(entry) => store::audit::append(txn, now, entry).await?,
            FleetWrite::SyncState(state) => store::sync_states::write(txn, now, state).await?,
            FleetWrite::Retire(device_id) => store::devices::retire(txn, &device_id).await?,
            FleetWrite::TokenIssued(token) => store::tokens::issue(txn, now, token).await?,
            FleetWrite::TokensRevoked(device_id) => {
                store::tokens::revoke(txn, now, &device_id).await?;
            }
        }
    }
    Ok(())
}
