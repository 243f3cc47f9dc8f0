//! Receipts of every write a client sent with an `id`, whatever carried it (`/ws`, Socket.IO,
//! `POST /sync/push`): one per writer (a registered device, or a cashier's `clientId`) and id,
//! written in the same transaction as the write, with the answer the writer was first given. A
//! write sent again is answered from it and applied no second time. They replace the receipts
//! of pushed events (`push_receipts`), which are carried over as devices' receipts. The election
//! log gets an index on its time, which retention deletes by.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WriteReceipts::Table)
                    .if_not_exists()
                    // `device` or `client`.
                    .col(ColumnDef::new(WriteReceipts::WriterKind).string_len(16).not_null())
                    .col(ColumnDef::new(WriteReceipts::Writer).string_len(128).not_null())
                    .col(ColumnDef::new(WriteReceipts::WriteId).string_len(128).not_null())
                    // The change it made, if any.
                    .col(ColumnDef::new(WriteReceipts::Seq).big_integer().null())
                    // The first answer (JSON); `NULL` for a pushed event carried over: it was applied.
                    .col(ColumnDef::new(WriteReceipts::Answer).text().null())
                    .col(ColumnDef::new(WriteReceipts::CreatedAt).timestamp_with_time_zone().not_null())
                    .primary_key(
                        Index::create()
                            .col(WriteReceipts::WriterKind)
                            .col(WriteReceipts::Writer)
                            .col(WriteReceipts::WriteId),
                    )
                    .to_owned(),
            )
            .await?;
        // Retention deletes the oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_write_receipts_created_at")
                    .table(WriteReceipts::Table)
                    .col(WriteReceipts::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO write_receipts (writer_kind, writer, write_id, seq, answer, created_at) \
                 SELECT 'device', device_id, event_id, seq, NULL, created_at FROM push_receipts",
            )
            .await?;
        manager.drop_table(Table::drop().table(PushReceipts::Table).to_owned()).await?;
        // Retention deletes the election log's oldest entries too.
        manager
            .create_index(
                Index::create()
                    .name("idx_master_election_logs_created_at")
                    .table(MasterElectionLogs::Table)
                    .col(MasterElectionLogs::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_master_election_logs_created_at")
                    .table(MasterElectionLogs::Table)
                    .to_owned(),
            )
            .await?;
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
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO push_receipts (device_id, event_id, seq, created_at) \
                 SELECT writer, write_id, seq, created_at FROM write_receipts WHERE writer_kind = 'device'",
            )
            .await?;
        manager.drop_table(Table::drop().table(WriteReceipts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum WriteReceipts {
    Table,
    WriterKind,
    Writer,
    WriteId,
    Seq,
    Answer,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MasterElectionLogs {
    Table,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PushReceipts {
    Table,
    DeviceId,
    EventId,
    Seq,
    CreatedAt,
}
