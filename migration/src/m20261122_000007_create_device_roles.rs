//! Devices and their roles (document 001's `device_roles`, with name, type and capabilities).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeviceRoles::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DeviceRoles::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DeviceRoles::DeviceId).string_len(255).not_null().unique_key())
                    .col(ColumnDef::new(DeviceRoles::DeviceName).text().null())
                    .col(ColumnDef::new(DeviceRoles::DeviceType).string_len(64).null())
                    .col(ColumnDef::new(DeviceRoles::Role).string_len(50).not_null().default("client"))
                    .col(ColumnDef::new(DeviceRoles::Priority).integer().not_null().default(0))
                    .col(ColumnDef::new(DeviceRoles::Capabilities).text().not_null().default("[]"))
                    .col(ColumnDef::new(DeviceRoles::LastSeen).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(DeviceRoles::IsActive).boolean().not_null().default(false))
                    .col(ColumnDef::new(DeviceRoles::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(DeviceRoles::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_roles_role")
                    .table(DeviceRoles::Table)
                    .col(DeviceRoles::Role)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DeviceRoles::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum DeviceRoles {
    Table,
    Id,
    DeviceId,
    DeviceName,
    DeviceType,
    Role,
    Priority,
    Capabilities,
    LastSeen,
    IsActive,
    CreatedAt,
    UpdatedAt,
}
