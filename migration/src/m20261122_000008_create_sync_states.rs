//! Each device's sync state (document 001's `sync_states`, with the `seq` it confirmed).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncStates::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SyncStates::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SyncStates::DeviceId).string_len(255).not_null().unique_key())
                    .col(ColumnDef::new(SyncStates::SyncStatus).string_len(50).not_null().default("pending"))
                    .col(ColumnDef::new(SyncStates::PendingChangesCount).big_integer().not_null().default(0))
                    .col(ColumnDef::new(SyncStates::LastSyncTimestamp).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(SyncStates::LastErrorMessage).text().null())
                    .col(ColumnDef::new(SyncStates::ConfirmedSeq).big_integer().not_null().default(0))
                    .col(ColumnDef::new(SyncStates::ErrorCount).big_integer().not_null().default(0))
                    .col(ColumnDef::new(SyncStates::ReportedPending).big_integer().null())
                    .col(ColumnDef::new(SyncStates::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(SyncStates::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_states_status")
                    .table(SyncStates::Table)
                    .col(SyncStates::SyncStatus)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SyncStates::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SyncStates {
    Table,
    Id,
    DeviceId,
    SyncStatus,
    PendingChangesCount,
    LastSyncTimestamp,
    LastErrorMessage,
    ConfirmedSeq,
    ErrorCount,
    ReportedPending,
    CreatedAt,
    UpdatedAt,
}
