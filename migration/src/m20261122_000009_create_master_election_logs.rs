//! Every successful election (document 001's `master_election_logs`, with the term, the
//! election's id and its method).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MasterElectionLogs::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(MasterElectionLogs::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MasterElectionLogs::ElectionId).string_len(64).not_null())
                    .col(ColumnDef::new(MasterElectionLogs::Term).big_integer().not_null())
                    .col(ColumnDef::new(MasterElectionLogs::PreviousMasterId).string_len(255).null())
                    .col(ColumnDef::new(MasterElectionLogs::NewMasterId).string_len(255).not_null())
                    .col(ColumnDef::new(MasterElectionLogs::ElectionReason).string_len(100).not_null())
                    .col(ColumnDef::new(MasterElectionLogs::ElectionMethod).string_len(50).not_null())
                    .col(
                        ColumnDef::new(MasterElectionLogs::ElectionTimestamp)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MasterElectionLogs::DevicesParticipating)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(MasterElectionLogs::CreatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_master_election_logs_timestamp")
                    .table(MasterElectionLogs::Table)
                    .col(MasterElectionLogs::ElectionTimestamp)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MasterElectionLogs::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum MasterElectionLogs {
    Table,
    Id,
    ElectionId,
    Term,
    PreviousMasterId,
    NewMasterId,
    ElectionReason,
    ElectionMethod,
    ElectionTimestamp,
    DevicesParticipating,
    CreatedAt,
}
