//! The audit log: read here, and written here by the Persistence actor inside its
//! transactions.

use chrono::{DateTime, Utc};
use entity::sync_audit_log;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::fleet::AuditEntry;

/// Which audit entries to read.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    pub device_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// A page of the audit entries that match, newest first, and how many match in all.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    filter: AuditFilter<'_>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<sync_audit_log::Model>, u64), DbErr> {
    let mut select = sync_audit_log::Entity::find();
    if let Some(device_id) = filter.device_id {
        select = select.filter(sync_audit_log::Column::DeviceId.eq(device_id));
    }
    if let Some(event_type) = filter.event_type {
        select = select.filter(sync_audit_log::Column::EventType.eq(event_type));
    }
    if let Some(start) = filter.start {
        select = select.filter(sync_audit_log::Column::Timestamp.gte(start));
    }
    if let Some(end) = filter.end {
        select = select.filter(sync_audit_log::Column::Timestamp.lte(end));
    }
    let total = select.clone().count(db).await?;
    let rows = select.order_by_desc(sync_audit_log::Column::Id).offset(offset).limit(limit).all(db).await?;
    Ok((rows, total))
}

/// Adds an audit entry.
pub async fn append<C: ConnectionTrait>(txn: &C, now: DateTime<Utc>, entry: AuditEntry) -> Result<(), DbErr> {
    sync_audit_log::Entity::insert(sync_audit_log::ActiveModel {
        id: NotSet,
        event_type: Set(entry.event_type),
        operation: Set(entry.operation),
        status: Set(entry.status.to_owned()),
        device_id: Set(entry.device_id),
        details: Set(Some(entry.details)),
        timestamp: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Deletes up to `limit` of the oldest entries written before `before` (retention); how many.
pub async fn prune<C: ConnectionTrait>(txn: &C, before: DateTime<Utc>, limit: u64) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Query;
    let oldest = Query::select()
        .column(sync_audit_log::Column::Id)
        .from(sync_audit_log::Entity)
        .and_where(sync_audit_log::Column::Timestamp.lt(before))
        .order_by(sync_audit_log::Column::Id, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let done = sync_audit_log::Entity::delete_many()
        .filter(sync_audit_log::Column::Id.in_subquery(oldest))
        .exec(txn)
        .await?;
    Ok(done.rows_affected)
}
