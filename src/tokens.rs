//! `device-sync token`: devices' own tokens from the command line, on the server's database,
//! with the server running or stopped (docs/SECURITY.md). A second writer beside the server's
//! Persistence actor, as migrations are: SQLite serialises it with the server's writes, Postgres
//! takes it as any client. A running server closes the sessions of a token revoked here within
//! half a heartbeat (it reads recent revocations).

use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use sea_orm::TransactionTrait;

use crate::app::open_database;
use crate::domain::fleet::AuditEntry;
use crate::http::auth::DeviceToken;
use crate::protocol::inbound;
use crate::settings::Settings;
use crate::store;

/// Who the command line's actions are recorded as.
pub const CLI_NAME: &str = "cli";

/// What to do with a device's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAction {
    /// Issue one; it is printed once.
    Issue,
    /// List them (never their secrets).
    List,
    /// Revoke every live one.
    Revoke,
}

/// Carries out `action` for `device_id`; returns what to print.
pub async fn run(settings: &Settings, action: TokenAction, device_id: &str) -> Result<String, String> {
    inbound::check_id("device_id", device_id).map_err(|err| err.message)?;
    let db = open_database(&settings.database, 1).await.map_err(|err| err.to_string())?;
    match settings.database.is_sqlite() {
        true => Migrator::up(&db, None).await,
        false => store::cluster::one_at_a_time(&db, Migrator::up(&db, None)).await,
    }
    .map_err(|err| format!("migrating the database: {err}"))?;
    let now = Utc::now();
    let failed = |err: sea_orm::DbErr| format!("database: {err}");
    match action {
        TokenAction::Issue => {
            let (token, stored) = DeviceToken::issue(device_id, CLI_NAME);
            let details = format!("token {} by {CLI_NAME}", stored.id);
            let txn = db.begin().await.map_err(failed)?;
            store::tokens::issue(&txn, now, stored).await.map_err(failed)?;
            let audit = AuditEntry::success("device_token", "issue", Some(device_id), &details);
            store::audit::append(&txn, now, audit).await.map_err(failed)?;
            txn.commit().await.map_err(failed)?;
            Ok(format!("{token}\n"))
        }
        TokenAction::List => {
            let rows = store::tokens::of_device(&db, device_id).await.map_err(failed)?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let state =
                        row.revoked_at.map_or_else(|| "live".to_owned(), |at| format!("revoked {at}"));
                    format!(
                        "{}\t{}\tissued {} by {}\t{state}\n",
                        row.id, row.device_id, row.created_at, row.issued_by
                    )
                })
                .collect())
        }
        TokenAction::Revoke => {
            let txn = db.begin().await.map_err(failed)?;
            let revoked = store::tokens::revoke(&txn, now, device_id).await.map_err(failed)?;
            let details = format!("{revoked} tokens by {CLI_NAME}");
            let audit = AuditEntry::success("device_token", "revoke", Some(device_id), &details);
            store::audit::append(&txn, now, audit).await.map_err(failed)?;
            txn.commit().await.map_err(failed)?;
            Ok(format!("revoked {revoked} tokens of {device_id}\n"))
        }
    }
}
