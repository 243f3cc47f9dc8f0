//! The schema of device-sync, one migration per file, applied in order on every start.
//! A released migration is never renamed or edited; changes come as new migrations.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_stations;
mod m20261122_000002_create_orders;
mod m20261122_000003_create_catalogue;
mod m20261122_000004_create_change_log;
mod m20261122_000005_create_sync_meta;
mod m20261122_000006_create_sync_audit_logs;
mod m20261122_000007_create_device_roles;
mod m20261122_000008_create_sync_states;
mod m20261122_000009_create_master_election_logs;
mod m20261122_000010_create_records;
mod m20261122_000011_create_push_receipts;
mod m20261201_000012_sync_state_error_type;
mod m20261201_000013_catalogue_version;
mod m20261201_000014_change_log_committed_at;
mod m20261201_000015_create_sync_conflicts;
mod m20261202_000016_change_log_sync_change;
mod m20261202_000017_create_cluster;
mod m20261202_000018_create_cluster_bus;
mod m20261207_000019_create_write_receipts;
mod m20261208_000020_create_device_tokens;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_stations::Migration),
            Box::new(m20261122_000002_create_orders::Migration),
            Box::new(m20261122_000003_create_catalogue::Migration),
            Box::new(m20261122_000004_create_change_log::Migration),
            Box::new(m20261122_000005_create_sync_meta::Migration),
            Box::new(m20261122_000006_create_sync_audit_logs::Migration),
            Box::new(m20261122_000007_create_device_roles::Migration),
            Box::new(m20261122_000008_create_sync_states::Migration),
            Box::new(m20261122_000009_create_master_election_logs::Migration),
            Box::new(m20261122_000010_create_records::Migration),
            Box::new(m20261122_000011_create_push_receipts::Migration),
            Box::new(m20261201_000012_sync_state_error_type::Migration),
            Box::new(m20261201_000013_catalogue_version::Migration),
            Box::new(m20261201_000014_change_log_committed_at::Migration),
            Box::new(m20261201_000015_create_sync_conflicts::Migration),
            Box::new(m20261202_000016_change_log_sync_change::Migration),
            Box::new(m20261202_000017_create_cluster::Migration),
            Box::new(m20261202_000018_create_cluster_bus::Migration),
            Box::new(m20261207_000019_create_write_receipts::Migration),
            Box::new(m20261208_000020_create_device_tokens::Migration),
        ]
    }
}

/// Runs `sql` on Postgres only: what several nodes share, which a SQLite database (one node)
/// has no use for.
pub(crate) async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await.map(|_| ())
}
