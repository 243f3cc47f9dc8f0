//! `device-sync backup FILE` and `device-sync restore FILE` (docs/RELIABILITY.md, "Backup and
//! restore"), for the embedded SQLite database; on Postgres the standard tools serve (`pg_dump`,
//! `pg_restore`), and the same epoch rule applies.
//!
//! - **backup** copies a running server's database with SQLite's `VACUUM INTO`: one read
//!   transaction, so writes go on meanwhile and the copy is the database as of one commit. The
//!   copy is checked (`PRAGMA integrity_check`) before it is reported.
//! - **restore** puts a copy in place of a stopped server's database (a running server holds
//!   `<database>.lock`, and restore refuses while it does). The copy is checked, then given a new
//!   epoch: its log may be behind what devices saw, so every device that resumes is told to
//!   resync (`resync_required`) rather than replayed from a position the log no longer has.

use std::fs::File;
use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::app::{open_database, refuse_a_newer_schema};
use crate::settings::{DatabaseSettings, Settings};

/// The lock a running server holds on its SQLite database (released when the process ends,
/// however it ends).
pub struct ServerLock(#[allow(dead_code)] File);

/// `<database>.lock` beside an SQLite database.
fn lock_path(database: &DatabaseSettings) -> Option<PathBuf> {
    let path = database.sqlite_path()?;
    let mut name = path.file_name()?.to_os_string();
    name.push(".lock");
    Some(path.with_file_name(name))
}

/// Takes the database's lock, or says who holds it. `None` on Postgres (nothing to hold).
pub fn lock(database: &DatabaseSettings) -> Result<Option<ServerLock>, String> {
    let Some(path) = lock_path(database) else { return Ok(None) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let taken = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    if taken != 0 {
        return Err(format!(
            "a device-sync server is using this database ({} is held): stop it first (systemctl stop device-sync)",
            path.display()
        ));
    }
    Ok(Some(ServerLock(file)))
}

fn sqlite_only(settings: &Settings, what: &str) -> Result<PathBuf, String> {
    settings.database.sqlite_path().ok_or_else(|| {
        format!(
            "{what} works on the embedded SQLite database; on Postgres use pg_dump and pg_restore \
             (docs/RELIABILITY.md, \"Backup and restore\")"
        )
    })
}

/// Copies the database to `file` (which must not exist); returns what to print.
pub async fn backup(settings: &Settings, file: &Path) -> Result<String, String> {
    sqlite_only(settings, "backup")?;
    if file.exists() {
        return Err(format!("{} exists already: give a new file", file.display()));
    }
    let db = open_database(&settings.database, 1).await.map_err(|err| err.to_string())?;
    let target = file.to_str().ok_or_else(|| format!("{}: not a UTF-8 path", file.display()))?;
    let vacuum = Statement::from_sql_and_values(db.get_database_backend(), "VACUUM INTO ?", [target.into()]);
    db.execute_raw(vacuum).await.map_err(|err| format!("copying: {err}"))?;
    db.close().await.map_err(|err| err.to_string())?;
    File::open(file).and_then(|f| f.sync_all()).map_err(|err| format!("{}: {err}", file.display()))?;
    let copy = DatabaseSettings { url: sqlite_url(file), durability: settings.database.durability };
    let (head, epoch) = check(&copy).await?;
    Ok(format!("backed up to {}: log head {head}, epoch {epoch}\n", file.display()))
}

/// Puts the copy `file` in place of the (stopped) server's database; returns what to print.
pub async fn restore(settings: &Settings, file: &Path) -> Result<String, String> {
    let database = sqlite_only(settings, "restore")?;
    let _lock = lock(&settings.database)?;
    let mut staged = database.clone().into_os_string();
    staged.push(".restoring");
    let staged = PathBuf::from(staged);
    std::fs::copy(file, &staged).map_err(|err| format!("{}: {err}", file.display()))?;
    let copy = DatabaseSettings { url: sqlite_url(&staged), durability: settings.database.durability };
    let prepared = async {
        let (head, _) = check(&copy).await?;
        let db = open_database(&copy, 1).await.map_err(|err| err.to_string())?;
        let epoch = uuid::Uuid::new_v4().to_string();
        let renew = Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE sync_meta SET value = ? WHERE key = ?",
            [epoch.clone().into(), crate::store::meta::EPOCH.into()],
        );
        db.execute_raw(renew).await.map_err(|err| format!("renewing the epoch: {err}"))?;
        let checkpoint = Statement::from_string(db.get_database_backend(), "PRAGMA wal_checkpoint(TRUNCATE)");
        db.execute_raw(checkpoint).await.map_err(|err| format!("checkpoint: {err}"))?;
        db.close().await.map_err(|err| err.to_string())?;
        Ok::<_, String>((head, epoch))
    }
    .await;
    let (head, epoch) = match prepared {
        Ok(done) => done,
        Err(err) => {
            remove_with_sidecars(&staged);
            return Err(err);
        }
    };
    File::open(&staged).and_then(|f| f.sync_all()).map_err(|err| format!("{}: {err}", staged.display()))?;
    remove_with_sidecars(&database);
    std::fs::rename(&staged, &database).map_err(|err| format!("{}: {err}", database.display()))?;
    remove_with_sidecars(&staged);
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    Ok(format!(
        "restored {} into {}: log head {head}, new epoch {epoch}: every device will resync\n",
        file.display(),
        database.display()
    ))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Removes an SQLite file and its WAL and shared-memory files, those that exist.
fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Checks a copy: intact, a device-sync database this build can open, with an epoch; returns
/// its log head and epoch.
async fn check(copy: &DatabaseSettings) -> Result<(i64, String), String> {
    let db = open_database(copy, 1).await.map_err(|err| err.to_string())?;
    let checked = read_check(&db).await;
    db.close().await.map_err(|err| err.to_string())?;
    checked
}

async fn read_check(db: &DatabaseConnection) -> Result<(i64, String), String> {
    let backend = db.get_database_backend();
    let one = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let integrity = db.query_one_raw(one("PRAGMA integrity_check")).await.map_err(|err| err.to_string())?;
    let verdict: String = integrity.and_then(|row| row.try_get_by_index(0).ok()).unwrap_or_default();
    if verdict != "ok" {
        return Err(format!("the copy is damaged (integrity_check: {verdict})"));
    }
    refuse_a_newer_schema(db).await.map_err(|err| err.to_string())?;
    let epoch = db
        .query_one_raw(one("SELECT value FROM sync_meta WHERE key = 'epoch'"))
        .await
        .map_err(|err| format!("not a device-sync database ({err})"))?
        .and_then(|row| row.try_get_by_index::<String>(0).ok())
        .ok_or("not a device-sync database (it has no epoch)")?;
    let head = db
        .query_one_raw(one("SELECT COALESCE(MAX(seq), 0) FROM change_log"))
        .await
        .map_err(|err| err.to_string())?
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0);
    Ok((head, epoch))
}
