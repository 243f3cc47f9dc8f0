//! Faults injected, history checked afterwards: a server killed mid-stream, stopped under load,
//! out of disk, or with a panicking writer keeps every change it acknowledged, and its change
//! log stays gap-free.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[cfg(feature = "fault-injection")]
use crate::helpers::spawn_app;
use crate::helpers::{WAIT, seq};
use crate::process::{Launch, Server};

const FAST: &str = "[limits]\nmessages_per_second = 100000\n";

/// A device writing `count` records of `table` as fast as it can (pipelined), counting each
/// acknowledgement into `acked`. Returns the acknowledged records and their `seq`s; stops at the
/// first close or error.
pub async fn device_writer(
    url: String,
    device: String,
    table: &'static str,
    count: usize,
    pad: usize,
    acked: Arc<AtomicUsize>,
) -> Vec<(String, u64)> {
    let Ok((ws, _)) = tokio_tungstenite::connect_async(&url).await else { return Vec::new() };
    let (mut sink, mut stream) = ws.split();
    let online = json!({"type": "device_online", "id": "online", "device_id": device}).to_string();
    if sink.send(Message::text(online)).await.is_err() {
        return Vec::new();
    }
    let padding = "x".repeat(pad);
    let sending = async {
        for i in 0..count {
            let write = json!({"type": "data_update", "id": format!("w{i}"), "device_id": device, "table_name": table,
                "record_id": format!("{device}-{i}"), "operation": "insert", "new_data": {"device": device, "i": i, "pad": padding}});
            if sink.send(Message::text(write.to_string())).await.is_err() {
                break;
            }
        }
    };
    let reading = async {
        let mut mine = Vec::new();
        while mine.len() < count {
            match tokio::time::timeout(WAIT, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                    if frame["type"] == "data_update_ack" {
                        let record = frame["record_id"].as_str().unwrap_or_default().to_owned();
                        mine.push((record, seq(&frame)));
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(Some(Ok(_))) => continue,
                _ => break,
            }
        }
        mine
    };
    let ((), mine) = tokio::join!(sending, reading);
    mine
}

/// Every change in the log, by `seq`, read over `/sync/pull`.
pub async fn whole_log(server_url: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut changes = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = http
            .get(format!("{server_url}/sync/pull?since_seq={after}&limit=10000"))
            .send()
            .await
            .expect("pull")
            .json()
            .await
            .expect("json");
        changes.extend(page["changes"].as_array().expect("changes").iter().cloned());
        after = page["last_seq"].as_u64().expect("last_seq");
        if page["has_more"] != true {
            return changes;
        }
    }
}

/// Checks the log after a fault: gap-free from 1, and holding every acknowledged record at its
/// `seq`. Returns how many acknowledged records it found.
pub fn check_history(log: &[Value], acked: &[(String, u64)]) -> usize {
    let seqs: Vec<u64> = log.iter().map(seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "the change log has no gap");
    let by_record: HashMap<String, u64> =
        log.iter().filter_map(|c| c["record_id"].as_str().map(|r| (r.to_owned(), seq(c)))).collect();
    let found = acked.iter().filter(|(record, at)| by_record.get(record) == Some(at)).count();
    let missing: Vec<&(String, u64)> =
        acked.iter().filter(|(record, at)| by_record.get(record) != Some(at)).take(5).collect();
    assert!(missing.is_empty(), "acknowledged changes not in the log (first few): {missing:?}");
    found
}

async fn run_writers(
    url: &str,
    devices: usize,
    count: usize,
    pad: usize,
    acked: &Arc<AtomicUsize>,
) -> Vec<actix_web::rt::task::JoinHandle<Vec<(String, u64)>>> {
    (0..devices)
        .map(|d| {
            actix_web::rt::spawn(device_writer(
                url.to_owned(),
                format!("dev{d}"),
                "crash",
                count,
                pad,
                Arc::clone(acked),
            ))
        })
        .collect()
}

async fn wait_for(acked: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + WAIT;
    while acked.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "only {} acknowledged", acked.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn a_server_killed_mid_stream_keeps_every_acknowledged_change() {
    let launch = Launch { settings: FAST.into(), ..Launch::default() };
    let mut server = Server::start(launch.clone());
    let acked = Arc::new(AtomicUsize::new(0));
    let writers = run_writers(&server.ws_url(), 4, 1500, 64, &acked).await;
    wait_for(&acked, 1500).await;
    server.kill();
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.expect("writer"));
    }
    let server = Server::start_in(Arc::clone(&server.dir), launch);
    let log = whole_log(&server.url("")).await;
    let found = check_history(&log, &all);
    eprintln!(
        "SIGKILL: {} changes acknowledged before the kill, {found} of them found after restart; log head {}",
        all.len(),
        log.len()
    );
}

/// Many crashes (docs/RELIABILITY.md, "Many crashes"): the server is killed with SIGKILL under
/// writers, restarted on the same database, again and again (`CRASH_CYCLES`, 3 in `make test`,
/// 100 in `make crash-cycles`), each kill at another point of the writes; then the history
/// checker reads the whole log once: gap-free, and every change acknowledged in any cycle at
/// its `seq`.
#[actix_web::test]
async fn kill_after_kill_under_writers_keeps_every_acknowledged_change() {
    let cycles: usize = std::env::var("CRASH_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    let launch = Launch { settings: FAST.into(), ..Launch::default() };
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut all = Vec::new();
    for cycle in 0..cycles {
        let mut server = Server::start_in(Arc::clone(&dir), launch.clone());
        let acked = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..2)
            .map(|d| {
                let device = format!("c{cycle}-d{d}");
                actix_web::rt::spawn(device_writer(
                    server.ws_url(),
                    device,
                    "crash",
                    600,
                    32,
                    Arc::clone(&acked),
                ))
            })
            .collect();
        // Each kill lands at another point: after 50 to 549 acknowledgements.
        wait_for(&acked, 50 + (cycle * 137) % 500).await;
        server.kill();
        for w in writers {
            all.extend(w.await.expect("writer"));
        }
    }
    let server = Server::start_in(Arc::clone(&dir), launch);
    let log = whole_log(&server.url("")).await;
    let found = check_history(&log, &all);
    assert_eq!(found, all.len());
    eprintln!(
        "{cycles} SIGKILL cycles: {} changes acknowledged, all {found} found at their seq; log head {}, no gap",
        all.len(),
        log.len()
    );
}

#[actix_web::test]
async fn sigterm_under_load_keeps_every_acknowledged_change_and_exits_0() {
    let launch = Launch { settings: FAST.into(), ..Launch::default() };
    let mut server = Server::start(launch.clone());
    let acked = Arc::new(AtomicUsize::new(0));
    let writers = run_writers(&server.ws_url(), 4, 1500, 64, &acked).await;
    wait_for(&acked, 1500).await;
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.expect("writer"));
    }
    let server = Server::start_in(Arc::clone(&server.dir), launch);
    let log = whole_log(&server.url("")).await;
    let found = check_history(&log, &all);
    eprintln!("SIGTERM: {} acknowledged, {found} found after restart; log head {}", all.len(), log.len());
}

#[actix_web::test]
async fn a_full_disk_refuses_writes_without_acknowledging_them_and_everything_resumes() {
    // The process may write files of at most 1 MiB: its WAL fills up as a disk would.
    let limited = Launch { settings: FAST.into(), file_size_limit: Some(1 << 20), ..Launch::default() };
    let mut server = Server::start(limited);
    let http = reqwest::Client::new();
    let mut device =
        crate::helpers::TestDevice::from_ws(crate::helpers::WsClient::open(&server.ws_url()).await, "till-1");
    device.send(json!({"type": "device_online", "device_id": "till-1"})).await;
    device.recv_until("device_online_ack").await;
    let pad = "p".repeat(2048);
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    // The health seen right after each refusal: unhealthy while the database cannot be written.
    // (The server probes it with a small write; one that lands between a refusal and the look,
    // after a checkpoint made room in the WAL, is healthy again for a moment.)
    let mut unhealthy = Vec::new();
    for i in 0..3000 {
        let record = format!("r{i}");
        let reply = device
            .request(json!({"type": "data_update", "device_id": "till-1", "table_name": "crash", "record_id": record, "new_data": {"i": i, "pad": pad}}))
            .await;
        match reply["type"].as_str() {
            Some("data_update_ack") => acked.push((record, seq(&reply))),
            Some("error") => {
                assert_eq!(reply["code"], "DATABASE_UNAVAILABLE", "{reply}");
                assert_eq!(reply["numeric_code"], 5001);
                refused.push(record);
                let health = http.get(server.url("/system/health")).send().await.expect("health");
                if health.status() == 503 {
                    unhealthy.push(health.json::<Value>().await.expect("json"));
                }
                if refused.len() >= 5 {
                    break;
                }
            }
            other => panic!("unexpected {other:?}: {reply}"),
        }
    }
    assert!(refused.len() >= 5 && !acked.is_empty(), "the disk filled up ({} acknowledged)", acked.len());
    let health = unhealthy.first().expect("health was 503 after a refusal");
    assert_eq!(
        (health["status"].as_str(), health["database"]["status"].as_str()),
        (Some("unhealthy"), Some("unavailable"))
    );

    // Room again: the server notices by itself, and writes are taken again.
    server.lift_file_size_limit();
    let deadline = Instant::now() + WAIT;
    loop {
        let status = http.get(server.url("/system/health")).send().await.expect("health").status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "health stayed {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..20 {
        let record = format!("after{i}");
        let reply = device
            .request(json!({"type": "data_update", "device_id": "till-1", "table_name": "crash", "record_id": record, "new_data": {"i": i}}))
            .await;
        if reply["type"] != "data_update_ack" {
            let logs = server.logs();
            panic!("{reply}\n{}", logs[logs.len().saturating_sub(30)..].join("\n"));
        }
        acked.push((record, seq(&reply)));
    }
    assert_eq!(server.terminate().code(), Some(0));

    let server = Server::start_in(Arc::clone(&server.dir), Launch::default());
    let log = whole_log(&server.url("")).await;
    let found = check_history(&log, &acked);
    let records: Vec<&str> = log.iter().filter_map(|c| c["record_id"].as_str()).collect();
    for r in &refused {
        assert!(!records.contains(&r.as_str()), "refused {r} is not stored");
    }
    eprintln!("disk full: {found} acknowledged and found, {} refused and absent", refused.len());
}

/// Needs a build with fault injection (`make test` has it).
#[cfg(feature = "fault-injection")]
#[actix_web::test]
async fn the_persistence_actor_restarts_after_a_panic_and_loses_nothing_acknowledged() {
    use device_sync::actors::persistence::{Origin, persist};
    use device_sync::domain::commands::{Command, Fault, RecordWrite};
    use device_sync::domain::records::Operation;
    let app = spawn_app().await;
    let (mut device, _) = app.device("till-1", 50).await;
    let mut acked = Vec::new();
    let write = |record: String| RecordWrite {
        table: "crash".into(),
        record_id: record,
        operation: Operation::Insert,
        data: Some(serde_json::Map::new()),
        base_version: None,
        at: None,
        device: "till-1".into(),
        reported: false,
        local_version: None,
    };
    for i in 0..10 {
        let record = format!("before{i}");
        let reply = device.request(json!({"type": "data_update", "device_id": "till-1", "table": "crash", "record_id": record, "data": {}})).await;
        acked.push((record, seq(&reply)));
    }
    // A batch with a panic in it: the first write commits alone (no batch was running), the
    // rest queue into one batch with the fault.
    let persistence = &app.state.persistence;
    let mut pending = vec![(
        "alone".to_owned(),
        persist(persistence, Command::Record(write("alone".into())), Origin::Rest),
    )];
    for i in 0..5 {
        let record = format!("doomed{i}");
        pending.push((record.clone(), persist(persistence, Command::Record(write(record)), Origin::Rest)));
    }
    pending.push(("fault".into(), persist(persistence, Command::Fault(Fault::Panic), Origin::Rest)));
    let mut lost = Vec::new();
    for (record, result) in pending {
        match result.await {
            Ok(applied) => acked.push((record, applied.seq.expect("a seq"))),
            Err(err) => {
                assert!(err.to_string().contains("interrupted"), "{err}");
                lost.push(record);
            }
        }
    }
    assert!(lost.len() >= 5, "the batch with the fault was not acknowledged: {lost:?}");
    for i in 0..10 {
        let record = format!("after{i}");
        let reply = device.request(json!({"type": "data_update", "device_id": "till-1", "table": "crash", "record_id": record, "data": {}})).await;
        assert_eq!(reply["type"], "data_update_ack", "{reply}");
        acked.push((record, seq(&reply)));
    }
    let log = crate::reliability::whole_log(&app.url("")).await;
    check_history(&log, &acked);
    let records: Vec<&str> = log.iter().filter_map(|c| c["record_id"].as_str()).collect();
    assert!(
        lost.iter().all(|r| !records.contains(&r.as_str())),
        "nothing of the interrupted batch was stored"
    );
}
