//! What `POST /sync/push` applied, per device and event id: a queue flushed twice is applied once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushReceipts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PushReceipts::DeviceId).string_len(128).not_null())
                    .col(ColumnDef::new(PushReceipts::EventId).string_len(128).not_null())
                    .col(ColumnDef::new(PushReceipts::Seq).big_integer().null())
                    .col(ColumnDef::new(PushReceipts::CreatedAt).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(PushReceipts::DeviceId).col(PushReceipts::EventId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PushReceipts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum PushReceipts {
    Table,
    DeviceId,
    EventId,
    Seq,
    CreatedAt,
}
