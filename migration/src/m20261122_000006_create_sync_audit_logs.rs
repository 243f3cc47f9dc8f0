//! The audit trail, as document 001's `sync_audit_logs`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncAuditLogs::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SyncAuditLogs::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SyncAuditLogs::EventType).string_len(100).not_null())
                    .col(ColumnDef::new(SyncAuditLogs::Operation).string_len(100).not_null())
                    .col(ColumnDef::new(SyncAuditLogs::Status).string_len(50).not_null())
                    .col(ColumnDef::new(SyncAuditLogs::DeviceId).string_len(255).null())
                    .col(ColumnDef::new(SyncAuditLogs::Details).text().null())
                    .col(ColumnDef::new(SyncAuditLogs::Timestamp).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_sync_audit_logs_device_id", SyncAuditLogs::DeviceId),
            ("idx_sync_audit_logs_timestamp", SyncAuditLogs::Timestamp),
            ("idx_sync_audit_logs_event_type", SyncAuditLogs::EventType),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(SyncAuditLogs::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SyncAuditLogs::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SyncAuditLogs {
    Table,
    Id,
    EventType,
    Operation,
    Status,
    DeviceId,
    Details,
    Timestamp,
}
