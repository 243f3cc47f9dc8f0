//! Each change keeps the JSON a sync page sends for it, rendered once when it is logged, so that
//! a page of changes is those texts joined instead of every row read apart and rendered again.
//! Changes logged before stay `NULL` and are rendered from their columns when read.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ChangeLog::Table)
                    .add_column(ColumnDef::new(ChangeLog::SyncChange).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(ChangeLog::Table).drop_column(ChangeLog::SyncChange).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    SyncChange,
}
