//! Writes about the fleet: device records, liveness, who is master, the term, the election log
//! and the audit trail. Applied inside a batch like every write; they take no `seq`.

use chrono::{DateTime, Utc};
use entity::{device_role, master_election_log, sync_meta, sync_state};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};

use super::audit;
use crate::domain::fleet::{DeviceRecord, FleetWrite, Role, SyncStateWrite, SyncStatus};
use crate::store;

/// Applies the writes, in order, inside the batch's transaction.
pub(super) async fn apply(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    writes: Vec<FleetWrite>,
) -> Result<(), DbErr> {
    for write in writes {
        match write {
            FleetWrite::Device(d) => upsert_device(txn, now, d).await?,
            FleetWrite::Activity { device_id, active, last_seen } => {
                device_role::Entity::update_many()
                    .set(device_role::ActiveModel {
                        is_active: Set(active),
                        last_seen: Set(Some(last_seen)),
                        updated_at: Set(now),
                        ..Default::default()
                    })
                    .filter(device_role::Column::DeviceId.eq(device_id))
                    .exec(txn)
                    .await?;
            }
            FleetWrite::Seen(seen) => {
                for (device_id, at) in seen {
                    device_role::Entity::update_many()
                        .set(device_role::ActiveModel { last_seen: Set(Some(at)), ..Default::default() })
                        .filter(device_role::Column::DeviceId.eq(device_id))
                        .exec(txn)
                        .await?;
                }
            }
            FleetWrite::Master(master) => {
                let mut demote = device_role::Entity::update_many()
                    .set(device_role::ActiveModel {
                        role: Set(Role::Client),
                        updated_at: Set(now),
                        ..Default::default()
                    })
                    .filter(device_role::Column::Role.eq(Role::Master));
                if let Some(master) = &master {
                    demote = demote.filter(device_role::Column::DeviceId.ne(master.as_str()));
                }
                demote.exec(txn).await?;
                if let Some(master) = master {
                    device_role::Entity::update_many()
                        .set(device_role::ActiveModel {
                            role: Set(Role::Master),
                            updated_at: Set(now),
                            ..Default::default()
                        })
                        .filter(device_role::Column::DeviceId.eq(master))
                        .exec(txn)
                        .await?;
                }
            }
            FleetWrite::Term(term) => {
                sync_meta::Entity::insert(sync_meta::ActiveModel {
                    key: Set(store::meta::TERM.to_owned()),
                    value: Set(term.to_string()),
                })
                .on_conflict(
                    OnConflict::column(sync_meta::Column::Key)
                        .update_column(sync_meta::Column::Value)
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
            }
            FleetWrite::ElectionLog(e) => {
                master_election_log::Entity::insert(master_election_log::ActiveModel {
                    id: NotSet,
                    election_id: Set(e.election_id),
                    term: Set(i64::try_from(e.term).unwrap_or(i64::MAX)),
                    previous_master_id: Set(e.previous_master_id),
                    new_master_id: Set(e.new_master_id),
                    election_reason: Set(e.reason.to_owned()),
                    election_method: Set(e.method.to_owned()),
                    election_timestamp: Set(e.at),
                    devices_participating: Set(i32::try_from(e.devices_participating).unwrap_or(i32::MAX)),
                    created_at: Set(now),
                })
                .exec_without_returning(txn)
                .await?;
            }
            FleetWrite::Audit(entry) => audit(txn, now, entry).await?,
            FleetWrite::SyncState(state) => write_sync_state(txn, now, state).await?,
        }
    }
    Ok(())
}

async fn upsert_device(txn: &DatabaseTransaction, now: DateTime<Utc>, d: DeviceRecord) -> Result<(), DbErr> {
    // A registered device has a sync state from registration on: `pending` until it syncs.
    sync_state::Entity::insert(new_sync_state(&d.device_id, now))
        .on_conflict_do_nothing_on([sync_state::Column::DeviceId])
        .exec(txn)
        .await?;
    let capabilities = serde_json::to_string(&d.capabilities).unwrap_or_else(|_| "[]".to_owned());
    device_role::Entity::insert(device_role::ActiveModel {
        id: NotSet,
        device_id: Set(d.device_id),
        device_name: Set(d.name),
        device_type: Set(d.device_type),
        role: Set(Role::Client),
        priority: Set(d.priority),
        capabilities: Set(capabilities),
        last_seen: Set(d.last_seen),
        is_active: Set(d.is_active),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(device_role::Column::DeviceId)
            .update_columns([
                device_role::Column::DeviceName,
                device_role::Column::DeviceType,
                device_role::Column::Priority,
                device_role::Column::Capabilities,
                device_role::Column::LastSeen,
                device_role::Column::IsActive,
                device_role::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The sync state of a device that has not synced yet.
fn new_sync_state(device_id: &str, now: DateTime<Utc>) -> sync_state::ActiveModel {
    sync_state::ActiveModel {
        id: NotSet,
        device_id: Set(device_id.to_owned()),
        sync_status: Set(SyncStatus::Pending),
        pending_changes_count: Set(0),
        last_sync_timestamp: Set(None),
        last_error_message: Set(None),
        last_error_type: Set(None),
        confirmed_seq: Set(0),
        error_count: Set(0),
        reported_pending: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

async fn write_sync_state(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    w: SyncStateWrite,
) -> Result<(), DbErr> {
    let existing = sync_state::Entity::find()
        .filter(sync_state::Column::DeviceId.eq(w.device_id.as_str()))
        .one(txn)
        .await?;
    let errors = existing.as_ref().map_or(0, |e| e.error_count) + i64::from(w.count_error);
    let mut row = match existing {
        Some(e) => sync_state::ActiveModel {
            id: Set(e.id),
            device_id: Set(e.device_id),
            sync_status: Set(e.sync_status),
            pending_changes_count: Set(e.pending_changes_count),
            last_sync_timestamp: Set(e.last_sync_timestamp),
            last_error_message: Set(e.last_error_message),
            last_error_type: Set(e.last_error_type),
            confirmed_seq: Set(e.confirmed_seq),
            error_count: Set(e.error_count),
            reported_pending: Set(e.reported_pending),
            created_at: Set(e.created_at),
            updated_at: Set(now),
        },
        None => new_sync_state(&w.device_id, now),
    };
    if let Some(status) = w.status {
        row.sync_status = Set(status);
    }
    if let Some(seq) = w.confirmed_seq {
        row.confirmed_seq = Set(store::changes::to_db(seq));
    }
    if let Some(at) = w.synced_at {
        row.last_sync_timestamp = Set(Some(at));
    }
    if w.clear_error {
        row.last_error_message = Set(None);
        row.last_error_type = Set(None);
    }
    if let Some(error) = w.error {
        row.last_error_message = Set(Some(error));
        row.last_error_type = Set(w.error_type);
    }
    if w.count_error {
        row.error_count = Set(errors);
    }
    if let Some(pending) = w.reported_pending {
        row.reported_pending = Set(Some(pending));
        row.pending_changes_count = Set(pending);
    }
    match row.id {
        Set(_) => {
            sync_state::Entity::update(row).exec(txn).await?;
        }
        _ => {
            sync_state::Entity::insert(row).exec_without_returning(txn).await?;
        }
    }
    Ok(())
}
