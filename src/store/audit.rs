//! The audit log, as stored: read here, written by the Persistence actor.

use chrono::{DateTime, Utc};
use entity::sync_audit_log;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

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
