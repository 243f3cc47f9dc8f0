//! The change log: the global, gap-free `seq` of every change, with what was broadcast.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangeLog::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ChangeLog::Seq).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(ChangeLog::TableName).string_len(128).not_null())
                    .col(ColumnDef::new(ChangeLog::RecordId).string_len(128).null())
                    .col(ColumnDef::new(ChangeLog::Operation).string_len(16).not_null())
                    .col(ColumnDef::new(ChangeLog::EventType).string_len(64).not_null())
                    .col(ColumnDef::new(ChangeLog::Data).text().null())
                    .col(ColumnDef::new(ChangeLog::Version).big_integer().null())
                    .col(ColumnDef::new(ChangeLog::Frame).text().not_null())
                    .col(ColumnDef::new(ChangeLog::OriginSession).string_len(64).null())
                    .col(ColumnDef::new(ChangeLog::ReplyFrame).text().null())
                    .col(ColumnDef::new(ChangeLog::SourceDevice).string_len(128).null())
                    .col(ColumnDef::new(ChangeLog::CommittedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_change_log_committed_at")
                    .table(ChangeLog::Table)
                    .col(ChangeLog::CommittedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_change_log_table_record")
                    .table(ChangeLog::Table)
                    .col(ChangeLog::TableName)
                    .col(ChangeLog::RecordId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ChangeLog::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Seq,
    TableName,
    RecordId,
    Operation,
    EventType,
    Data,
    Version,
    Frame,
    OriginSession,
    ReplyFrame,
    SourceDevice,
    CommittedAt,
}
