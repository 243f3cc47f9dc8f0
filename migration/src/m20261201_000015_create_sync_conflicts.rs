//! The conflicts a device lost (its write was refused because the stored copy won), so that its
//! next `sync_response` lists them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncConflicts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SyncConflicts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SyncConflicts::DeviceId).string_len(128).not_null())
                    .col(ColumnDef::new(SyncConflicts::TableName).string_len(128).not_null())
                    .col(ColumnDef::new(SyncConflicts::RecordId).string_len(128).not_null())
                    .col(ColumnDef::new(SyncConflicts::ConflictType).string_len(32).not_null())
                    .col(ColumnDef::new(SyncConflicts::LocalVersion).big_integer().null())
                    .col(ColumnDef::new(SyncConflicts::ServerVersion).big_integer().not_null())
                    .col(ColumnDef::new(SyncConflicts::ResolutionMethod).string_len(32).not_null())
                    .col(ColumnDef::new(SyncConflicts::CreatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_conflicts_device")
                    .table(SyncConflicts::Table)
                    .col(SyncConflicts::DeviceId)
                    .col(SyncConflicts::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SyncConflicts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SyncConflicts {
    Table,
    Id,
    DeviceId,
    TableName,
    RecordId,
    ConflictType,
    LocalVersion,
    ServerVersion,
    ResolutionMethod,
    CreatedAt,
}
