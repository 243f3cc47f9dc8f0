//! `device-sync backup FILE` and `device-sync restore FILE` (docs/RELIABILITY.md, "Backup and
//! restore"), for the embedded SQLite database; on Postgres the standard tools serve (`pg_dump`,
//! `pg_restore`), and the same epoch rule applies.
//!
//! - **backup** copies a running server's database with SQLite's `VACUUM INTO`: one read
//!   transaction, so writes go on meanwhile and the copy is the database as of one commit. The
//!   copy is made and checked under a `.partial` name, then linked to its own.
//! - **restore** puts a copy in place of a stopped server's database (a running server holds
//!   `<database>.lock`, and restore refuses while it does). The copy is checked, then given a new
//!   epoch: its log may be behind what devices saw, so a device that resumes with the old epoch
//!   is told to resync (`resync_required`) rather than replayed from a position the log no
//!   longer has. The database it replaces is kept as `.pre-restore`.

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

/// A file name this module can hand to SQLite as it is: no characters its URLs give a meaning.
fn plain(path: &Path) -> Result<&str, String> {
    let text = path.to_str().ok_or_else(|| format!("{}: not a UTF-8 path", path.display()))?;
    if text.contains(['?', '#', '%']) || text.starts_with("file:") {
        return Err(format!("{text}: choose a file name without '?', '#' or '%'"));
    }
    Ok(text)
}

/// `path` with `suffix` added to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn settings_of(path: &Path, durability: crate::settings::Durability) -> DatabaseSettings {
    DatabaseSettings { url: sqlite_url(path), durability }
}

/// Copies the SQLite database at `source` (read through SQLite, so its WAL counts) into
/// `target`, a new file, as of one read transaction (`VACUUM INTO`).
async fn copy_through_sqlite(source: &DatabaseSettings, target: &Path) -> Result<(), String> {
    let target = plain(target)?;
    let db = open_database(source, 1).await.map_err(|err| err.to_string())?;
    let vacuum = Statement::from_sql_and_values(db.get_database_backend(), "VACUUM INTO ?", [target.into()]);
    let copied = db.execute_raw(vacuum).await.map(|_| ()).map_err(|err| format!("copying: {err}"));
    db.close().await.map_err(|err| err.to_string())?;
    copied
}

/// Syncs a file and then its directory.
fn sync_file_and_dir(path: &Path) -> Result<(), String> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|err| format!("{}: {err}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    Ok(())
}

/// Copies the database to `file` (which must not exist); returns what to print. The copy is
/// made and checked under `<file>.partial`, readable by its owner only, and only then linked
/// to its name: a failed or interrupted backup leaves no file that looks finished.
pub async fn backup(settings: &Settings, file: &Path) -> Result<String, String> {
    let database = sqlite_only(settings, "backup")?;
    if !database.exists() {
        return Err(format!("there is no database at {} (check --config)", database.display()));
    }
    plain(file)?;
    if file.exists() {
        return Err(format!("{} exists already: give a new file", file.display()));
    }
    let partial = beside(file, ".partial");
    remove_with_sidecars(&partial);
    let (head, epoch) = or_remove(&partial, async {
        copy_through_sqlite(&settings.database, &partial).await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
                .map_err(|err| format!("{}: {err}", partial.display()))?;
        }
        sync_file_and_dir(&partial)?;
        check(&settings_of(&partial, settings.database.durability)).await
    })
    .await?;
    // A link fails if `file` appeared meanwhile: nothing is replaced.
    let linked = std::fs::hard_link(&partial, file).map_err(|err| format!("{}: {err}", file.display()));
    remove_with_sidecars(&partial);
    linked?;
    sync_file_and_dir(file)?;
    Ok(format!("backed up to {}: log head {head}, epoch {epoch}\n", file.display()))
}

/// Puts the copy `file` in place of the (stopped) server's database; returns what to print.
///
/// The copy is read through SQLite into `<database>.restoring`, checked and given a new epoch;
/// the database in place is checkpointed and kept as `<database>.pre-restore`; then the copy is
/// renamed over it, which replaces it in one step: a crash leaves either database, never none.
pub async fn restore(settings: &Settings, file: &Path) -> Result<String, String> {
    let database = sqlite_only(settings, "restore")?;
    let _lock = lock(&settings.database)?;
    plain(file)?;
    let durability = settings.database.durability;
    let staged = beside(&database, ".restoring");
    let source = file.canonicalize().map_err(|err| format!("{}: {err}", file.display()))?;
    let taken = [&database, &staged].iter().any(|p| p.canonicalize().is_ok_and(|p| p == source));
    if taken {
        return Err(format!(
            "{}: restore from a copy elsewhere, not the database's own files",
            file.display()
        ));
    }
    // Anything an interrupted restore left goes first, its WAL above all.
    remove_with_sidecars(&staged);
    let (head, epoch) = or_remove(&staged, async {
        copy_through_sqlite(&settings_of(&source, durability), &staged).await?;
        let (head, _) = check(&settings_of(&staged, durability)).await?;
        let db = open_database(&settings_of(&staged, durability), 1).await.map_err(|err| err.to_string())?;
        let epoch = uuid::Uuid::new_v4().to_string();
        let renew = Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE sync_meta SET value = ? WHERE key = ?",
            [epoch.clone().into(), crate::store::meta::EPOCH.into()],
        );
        db.execute_raw(renew).await.map_err(|err| format!("renewing the epoch: {err}"))?;
        truncate_wal(db).await?;
        keep_owner(&database, &staged)?;
        sync_file_and_dir(&staged)?;
        Ok::<_, String>((head, epoch))
    })
    .await?;
    if database.exists() {
        // Its WAL folded in, the database is whole in its one file: kept, then replaced.
        let db = open_database(&settings.database, 1).await.map_err(|err| err.to_string())?;
        truncate_wal(db).await.map_err(|err| format!("the database in place: {err}"))?;
        let kept = beside(&database, ".pre-restore");
        remove_with_sidecars(&kept);
        std::fs::hard_link(&database, &kept).map_err(|err| format!("{}: {err}", kept.display()))?;
        for sidecar in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(beside(&database, sidecar));
        }
    }
    std::fs::rename(&staged, &database).map_err(|err| format!("{}: {err}", database.display()))?;
    remove_with_sidecars(&staged);
    sync_file_and_dir(&database)?;
    Ok(format!(
        "restored {} into {}: log head {head}, new epoch {epoch}: every device that resumes with \
         the old epoch resyncs (the database before is kept as {})\n",
        file.display(),
        database.display(),
        beside(&database, ".pre-restore").display()
    ))
}

/// The result of `work`; on an error, `copy` (a copy it was making) is removed first.
async fn or_remove<T>(
    copy: &Path,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let done = work.await;
    if done.is_err() {
        remove_with_sidecars(copy);
    }
    done
}

/// Folds the WAL into the database file, empties it, and closes the connection.
async fn truncate_wal(db: DatabaseConnection) -> Result<(), String> {
    let checkpoint = Statement::from_string(db.get_database_backend(), "PRAGMA wal_checkpoint(TRUNCATE)");
    db.execute_raw(checkpoint).await.map_err(|err| format!("checkpoint: {err}"))?;
    db.close().await.map_err(|err| err.to_string())
}

/// Gives `staged` the owner and mode of the database it replaces (a restore run as root must
/// not leave the service a database it cannot open).
fn keep_owner(database: &Path, staged: &Path) -> Result<(), String> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(database) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let failed = |err: std::io::Error| format!("{}: {err}", staged.display());
        std::os::unix::fs::chown(staged, Some(meta.uid()), Some(meta.gid())).map_err(failed)?;
        std::fs::set_permissions(staged, std::fs::Permissions::from_mode(meta.mode() & 0o777))
            .map_err(failed)?;
    }
    Ok(())
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Removes an SQLite file and its WAL and shared-memory files, those that exist.
fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(beside(path, suffix));
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
