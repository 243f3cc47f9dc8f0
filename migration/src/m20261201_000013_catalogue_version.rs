//! Each catalogue document counts its versions: 1 when first written, one more per write.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Catalogue::Table)
                    .add_column(ColumnDef::new(Catalogue::Version).big_integer().not_null().default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Catalogue::Table).drop_column(Catalogue::Version).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Catalogue {
    Table,
    Version,
}
