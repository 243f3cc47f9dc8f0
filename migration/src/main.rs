//! sea-orm's migration command line for device-sync's schema (`--features cli`).
//! The server migrates on start; this is for inspecting and operating a database by hand.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
