//! Credentials issued to single devices (docs/SECURITY.md): the token's id, its device, a hash
//! of its secret, who issued it, and when it was revoked.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeviceTokens::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DeviceTokens::Id).string_len(32).not_null().primary_key())
                    .col(ColumnDef::new(DeviceTokens::DeviceId).string_len(128).not_null())
                    .col(ColumnDef::new(DeviceTokens::SecretHash).string_len(64).not_null())
                    .col(ColumnDef::new(DeviceTokens::IssuedBy).string_len(128).not_null())
                    .col(ColumnDef::new(DeviceTokens::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(DeviceTokens::RevokedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_tokens_device_id")
                    .table(DeviceTokens::Table)
                    .col(DeviceTokens::DeviceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DeviceTokens::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum DeviceTokens {
    Table,
    Id,
    DeviceId,
    SecretHash,
    IssuedBy,
    CreatedAt,
    RevokedAt,
}
