//! Generic records (documents 000 and 001): JSON objects keyed by table and record id, with a
//! version, kept as tombstones when deleted.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Records::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Records::TableName).string_len(128).not_null())
                    .col(ColumnDef::new(Records::RecordId).string_len(128).not_null())
                    .col(ColumnDef::new(Records::Data).text().null())
                    .col(ColumnDef::new(Records::Version).big_integer().not_null())
                    .col(ColumnDef::new(Records::Deleted).boolean().not_null().default(false))
                    .col(ColumnDef::new(Records::WrittenAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Records::UpdatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Records::LastSeq).big_integer().not_null())
                    .col(ColumnDef::new(Records::SourceDevice).string_len(128).null())
                    .primary_key(Index::create().col(Records::TableName).col(Records::RecordId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_records_table_seq")
                    .table(Records::Table)
                    .col(Records::TableName)
                    .col(Records::LastSeq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Records::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Records {
    Table,
    TableName,
    RecordId,
    Data,
    Version,
    Deleted,
    WrittenAt,
    UpdatedAt,
    LastSeq,
    SourceDevice,
}
