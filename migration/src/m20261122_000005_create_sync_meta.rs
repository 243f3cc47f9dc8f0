//! Server facts that outlive a restart, as key/value pairs (the change log's epoch).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncMeta::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SyncMeta::Key).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(SyncMeta::Value).text().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SyncMeta::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SyncMeta {
    Table,
    Key,
    Value,
}
