//! A device's last sync error keeps its type (`sync_error.error_type`) beside its message, each
//! as the device sent it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SyncStates::Table)
                    .add_column(ColumnDef::new(SyncStates::LastErrorType).string_len(128).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(SyncStates::Table).drop_column(SyncStates::LastErrorType).to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum SyncStates {
    Table,
    LastErrorType,
}
