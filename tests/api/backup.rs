//! Backup and restore of the embedded database (docs/RELIABILITY.md, "Backup and restore"):
//! `device-sync backup` copies a running server's database while a device goes on writing;
//! `device-sync restore` refuses while the server runs, then puts the copy in place with a new
//! epoch, so a device resuming from the old one is told to resync, and every change the copy
//! held is there, without a gap. A database a newer build migrated is refused and left as it
//! was. SQLite only: the Postgres pass leaves this module out (`make test-postgres`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{WAIT, WsClient};
use crate::process::{Launch, Server};

fn device_sync(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_device-sync"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn status(http: &reqwest::Client, server: &Server) -> Value {
    http.get(server.url("/sync/status")).send().await.expect("status").json().await.expect("JSON")
}

async fn head(http: &reqwest::Client, server: &Server) -> u64 {
    status(http, server).await["head_seq"].as_u64().expect("head_seq")
}

/// Waits until the log's head passes `seq`.
async fn head_past(http: &reqwest::Client, server: &Server, seq: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = head(http, server).await;
        if now > seq {
            return now;
        }
        assert!(Instant::now() < deadline, "the head stayed at {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_backup_under_load_restores_with_a_new_epoch_and_every_change_it_held() {
    let mut server = Server::start(Launch::default());
    let dir = Arc::clone(&server.dir);
    let config = dir.path().join("site.toml");
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("client");
    let push_url = server.url("/sync/push");

    // A device writing all along, each write acknowledged.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (http, push_url, writing) = (http.clone(), push_url.clone(), Arc::clone(&writing));
        actix_web::rt::spawn(async move {
            let mut n = 0u64;
            while writing.load(Ordering::Relaxed) {
                let event = json!({"id": format!("w-{n}"), "type": "data_update", "device_id": "till",
                    "table_name": "sales", "record_id": n, "new_data": {"total": n}});
                let pushed = http
                    .post(&push_url)
                    .json(&json!({"device_id": "till", "events": [event]}))
                    .send()
                    .await
                    .expect("push");
                assert_eq!(pushed.status(), 200);
                n += 1;
            }
            n
        })
    };
    head_past(&http, &server, 20).await;
    let before = status(&http, &server).await;
    let file = dir.path().join("shop.backup");
    let taken = {
        let (file, config) = (file.clone(), config.clone());
        actix_web::rt::task::spawn_blocking(move || {
            device_sync(&["backup", file.to_str().expect("path")], &config)
        })
        .await
        .expect("backup")
    };
    assert!(taken.status.success(), "{}", text(&taken.stderr));
    let said = text(&taken.stdout);
    let held: u64 = said
        .split("log head ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the backup names its head: {said}"));
    // Writes went on during and after the copy.
    head_past(&http, &server, held + 5).await;
    writing.store(false, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(held >= 20 && held < written, "the copy holds {held} of {written} writes");

    let refused = device_sync(&["restore", file.to_str().expect("path")], &config);
    assert!(!refused.status.success(), "restore refused while the server runs");
    assert!(text(&refused.stderr).contains("stop it first"), "{}", text(&refused.stderr));
    // A backup that cannot be made leaves nothing that looks like one; one that exists is kept.
    let nowhere = dir.path().join("no-such-dir").join("x.db");
    assert!(!device_sync(&["backup", nowhere.to_str().expect("path")], &config).status.success());
    assert!(!nowhere.exists() && !dir.path().join("no-such-dir").exists());
    assert!(!device_sync(&["backup", file.to_str().expect("path")], &config).status.success());
    assert_eq!(server.terminate().code(), Some(0));

    // What an interrupted restore left (a stray WAL of its staged copy) does not get in.
    let database = crate::helpers::db_path(&dir);
    let stray = format!("{}.restoring-wal", database.display());
    std::fs::write(&stray, vec![0x5a; 64 * 1024]).expect("a stray WAL");
    // The database's own file is no copy to restore from.
    let own = device_sync(&["restore", database.to_str().expect("path")], &config);
    assert!(!own.status.success(), "{}", text(&own.stdout));

    let restored = device_sync(&["restore", file.to_str().expect("path")], &config);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert!(text(&restored.stdout).contains(&format!("log head {held}")), "{}", text(&restored.stdout));
    assert!(!Path::new(&stray).exists());
    let kept = format!("{}.pre-restore", database.display());
    assert!(std::fs::metadata(&kept).is_ok_and(|m| m.len() > 0), "the database before is kept");
    let server = Server::start_in(Arc::clone(&dir), Launch::default());
    let after = status(&http, &server).await;
    assert_eq!(after["head_seq"].as_u64(), Some(held), "the log as the copy held it");
    assert_ne!(after["epoch"], before["epoch"], "a restore gives the log a new epoch");

    // A device resuming from where it was under the old epoch is told to resync.
    let mut till = WsClient::open(&server.ws_url()).await;
    till.send(json!({"type": "connect", "clientId": "till", "last_seq": written, "epoch": before["epoch"]}))
        .await;
    let resync = till.expect("resync_required").await;
    assert_eq!(resync["epoch"], after["epoch"], "{resync}");

    // Every change the copy held is there, once, with no gap.
    let mut seqs = Vec::new();
    let mut since = 0;
    loop {
        let page: Value = http
            .get(server.url(&format!("/sync/pull?since_seq={since}&limit=100")))
            .send()
            .await
            .expect("pull")
            .json()
            .await
            .expect("JSON");
        let changes = page["changes"].as_array().expect("changes");
        if changes.is_empty() {
            break;
        }
        for change in changes {
            since = change["seq"].as_u64().expect("seq");
            seqs.push(since);
        }
    }
    assert_eq!(seqs, (1..=held).collect::<Vec<_>>());
    till.close().await;
}

#[actix_web::test]
async fn a_database_from_a_newer_build_is_refused_and_left_as_it_was() {
    let mut server = Server::start(Launch::default());
    let dir = Arc::clone(&server.dir);
    assert_eq!(server.terminate().code(), Some(0));
    let database = crate::helpers::db_path(&dir);
    let url = format!("sqlite://{}", database.display());
    {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(url.as_str()).await.expect("open");
        let newer = "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000099_from_the_future', 0)";
        db.execute_unprepared(newer).await.expect("a newer build's migration");
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.expect("checkpoint");
        db.close().await.expect("close");
    }
    let bytes = std::fs::read(&database).expect("read");
    let out = Command::new(env!("CARGO_BIN_EXE_device-sync"))
        .args(["serve", "--config"])
        .arg(dir.path().join("site.toml"))
        .output()
        .expect("serve");
    assert!(!out.status.success());
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("written by a newer device-sync") && said.contains("from_the_future"), "{said}");
    assert_eq!(std::fs::read(&database).expect("read"), bytes, "the database is left as it was");
}
