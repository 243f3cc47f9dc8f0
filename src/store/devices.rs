//! Devices and their election history: read here, and written here by the Persistence actor
//! inside its transactions.

use chrono::{DateTime, Utc};
use entity::{device_role, master_election_log, sync_state};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::fleet::{DeviceRecord, ElectionLogEntry, Role};
use crate::protocol::outbound::MasterElected;

/// Every device, by id.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<DeviceRecord>, DbErr> {
    let rows = device_role::Entity::find().order_by_asc(device_role::Column::DeviceId).all(db).await?;
    Ok(rows.into_iter().map(to_record).collect())
}

/// Whether a device of this id was ever registered.
pub async fn exists<C: ConnectionTrait>(db: &C, device_id: &str) -> Result<bool, DbErr> {
    let found =
        device_role::Entity::find().filter(device_role::Column::DeviceId.eq(device_id)).count(db).await?;
    Ok(found > 0)
}

fn to_record(row: device_role::Model) -> DeviceRecord {
    DeviceRecord {
        device_id: row.device_id,
        name: row.device_name,
        device_type: row.device_type,
        priority: row.priority,
        capabilities: serde_json::from_str(&row.capabilities).unwrap_or_default(),
        role: row.role,
        is_active: row.is_active,
        last_seen: row.last_seen,
    }
}

/// A page of the election log, newest first, and how many entries there are in all.
pub async fn election_logs<C: ConnectionTrait>(
    db: &C,
    limit: u64,
    offset: u64,
) -> Result<(Vec<master_election_log::Model>, u64), DbErr> {
    let total = master_election_log::Entity::find().count(db).await?;
    let rows = master_election_log::Entity::find()
        .order_by_desc(master_election_log::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Records a device (a new one as a client, with a `pending` sync state); its role is left as
/// it was.
pub async fn upsert<C: ConnectionTrait>(txn: &C, now: DateTime<Utc>, d: DeviceRecord) -> Result<(), DbErr> {
    // A registered device has a sync state from registration on: `pending` until it syncs.
    sync_state::Entity::insert(super::sync_states::new_row(&d.device_id, now))
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

/// Marks a device active or not, seen at `last_seen`.
pub async fn set_activity<C: ConnectionTrait>(
    txn: &C,
    now: DateTime<Utc>,
    device_id: &str,
    active: bool,
    last_seen: DateTime<Utc>,
) -> Result<(), DbErr> {
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
    Ok(())
}

/// Notes when a device was last heard from.
pub async fn set_seen<C: ConnectionTrait>(txn: &C, device_id: &str, at: DateTime<Utc>) -> Result<(), DbErr> {
    device_role::Entity::update_many()
        .set(device_role::ActiveModel { last_seen: Set(Some(at)), ..Default::default() })
        .filter(device_role::Column::DeviceId.eq(device_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Makes `master` the one master (no master with `None`); every other device is a client.
pub async fn set_master<C: ConnectionTrait>(
    txn: &C,
    now: DateTime<Utc>,
    master: Option<&str>,
) -> Result<(), DbErr> {
    let mut demote = device_role::Entity::update_many()
        .set(device_role::ActiveModel { role: Set(Role::Client), updated_at: Set(now), ..Default::default() })
        .filter(device_role::Column::Role.eq(Role::Master));
    if let Some(master) = master {
        demote = demote.filter(device_role::Column::DeviceId.ne(master));
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
    Ok(())
}

/// Adds a successful election to the election log.
pub async fn log_election<C: ConnectionTrait>(
    txn: &C,
    now: DateTime<Utc>,
    e: ElectionLogEntry,
) -> Result<(), DbErr> {
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
    Ok(())
}

/// Deletes up to `limit` of the election log's oldest entries written before `before`
/// (retention); how many.
pub async fn prune_election_log<C: ConnectionTrait>(
    txn: &C,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Query;
    let oldest = Query::select()
        .column(master_election_log::Column::Id)
        .from(master_election_log::Entity)
        .and_where(master_election_log::Column::CreatedAt.lt(before))
        .order_by(master_election_log::Column::Id, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let done = master_election_log::Entity::delete_many()
        .filter(master_election_log::Column::Id.in_subquery(oldest))
        .exec(txn)
        .await?;
    Ok(done.rows_affected)
}

/// The latest election recorded, as its announcement said it (`None` before the first).
pub async fn last_election<C: ConnectionTrait>(db: &C) -> Result<Option<MasterElected>, DbErr> {
    let Some(row) =
        master_election_log::Entity::find().order_by_desc(master_election_log::Column::Id).one(db).await?
    else {
        return Ok(None);
    };
    let known = |text: &str| crate::domain::election::Reason::known_name(text);
    let (Some(reason), Some(method)) = (known(&row.election_reason), known(&row.election_method)) else {
        return Ok(None);
    };
    Ok(Some(MasterElected {
        new_master_name: None,
        previous_master: row.previous_master_id.clone(),
        previous_master_id: row.previous_master_id,
        new_master_id: row.new_master_id,
        election_id: row.election_id,
        election_reason: reason,
        election_timestamp: crate::protocol::time::format(row.election_timestamp),
        election_method: method,
        devices_participating: usize::try_from(row.devices_participating).unwrap_or(0),
        term: u64::try_from(row.term).unwrap_or(0),
    }))
}

/// Deletes a device's record (with its role) and its sync state.
pub async fn retire<C: ConnectionTrait>(txn: &C, device_id: &str) -> Result<(), DbErr> {
    device_role::Entity::delete_many().filter(device_role::Column::DeviceId.eq(device_id)).exec(txn).await?;
    sync_state::Entity::delete_many().filter(sync_state::Column::DeviceId.eq(device_id)).exec(txn).await?;
    Ok(())
}
