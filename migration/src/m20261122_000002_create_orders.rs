//! Orders on a station, kept in `position` order (the wire's `orderIndex`).

use sea_orm_migration::prelude::*;

use super::m20261122_000001_create_stations::Stations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Orders::OrderId).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Orders::StationId).string_len(128).not_null())
                    .col(ColumnDef::new(Orders::Position).integer().not_null())
                    .col(ColumnDef::new(Orders::Name).text().not_null())
                    .col(ColumnDef::new(Orders::Price).big_integer().not_null())
                    .col(ColumnDef::new(Orders::Quantity).big_integer().not_null())
                    .col(ColumnDef::new(Orders::Notes).text().not_null())
                    .col(ColumnDef::new(Orders::FirstOrderTime).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Orders::LastOrderTime).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_orders_station")
                            .from(Orders::Table, Orders::StationId)
                            .to(Stations::Table, Stations::StationId)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_station_position")
                    .table(Orders::Table)
                    .col(Orders::StationId)
                    .col(Orders::Position)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Orders::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    OrderId,
    StationId,
    Position,
    Name,
    Price,
    Quantity,
    Notes,
    FirstOrderTime,
    LastOrderTime,
}
