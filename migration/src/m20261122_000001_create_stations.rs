//! Stations: the billed seats whose timers the cashier clients drive.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stations::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Stations::StationId).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(Stations::Name).text().not_null())
                    .col(ColumnDef::new(Stations::IsRunning).boolean().not_null().default(false))
                    .col(ColumnDef::new(Stations::ElapsedSeconds).big_integer().not_null().default(0))
                    .col(ColumnDef::new(Stations::Mode).text().not_null())
                    .col(ColumnDef::new(Stations::CustomerCount).big_integer().not_null().default(1))
                    .col(ColumnDef::new(Stations::Notes).text().not_null())
                    .col(ColumnDef::new(Stations::Version).big_integer().not_null().default(1))
                    .col(ColumnDef::new(Stations::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Stations::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Stations::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Stations {
    Table,
    StationId,
    Name,
    IsRunning,
    ElapsedSeconds,
    Mode,
    CustomerCount,
    Notes,
    Version,
    CreatedAt,
    UpdatedAt,
}
