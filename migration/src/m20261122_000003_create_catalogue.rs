//! The catalogue: categories and prices, each one JSON document stored as sent.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Catalogue::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Catalogue::Name).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Catalogue::Body).text().not_null())
                    .col(ColumnDef::new(Catalogue::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Catalogue::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Catalogue {
    Table,
    Name,
    Body,
    UpdatedAt,
}
