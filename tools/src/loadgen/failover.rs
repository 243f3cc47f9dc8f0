//! `loadgen failover`: M devices online; the master leaves and the time is taken until every
//! other device has been told of its successor (`master_elected` with a newer term).
//!
//! Every device behaves as a real one does: it confirms a `role_change` naming it master with
//! `role_change_ack`, and notes the moment each `master_elected` reaches it. Each repeat, the
//! master either sends `device_shutdown` (`--how shutdown`) or has its socket dropped without a
//! word (`--how drop`; the server then waits `election.reconnect_grace_s` before it elects, so
//! that grace is part of the figure). The departed device comes back as a client before the
//! next repeat, so M stay online.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::client::WAIT;
use super::report::Report;
use super::stats::Latencies;

type Sink = Arc<Mutex<SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>>>;

/// How the master leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Departure {
    /// It sends `device_shutdown`.
    Shutdown,
    /// Its connection is dropped without a close frame.
    Drop,
}

/// What to run.
pub struct Options {
    /// The server, `http://host:port`.
    pub server: String,
    pub devices: usize,
    pub repeats: usize,
    pub how: Departure,
    /// The device token, when the server needs one.
    pub token: Option<String>,
}

/// What a device tells the coordinator.
enum Heard {
    /// `device_online_ack`: its role and the term.
    Online { device: usize, role: String, term: u64 },
    /// `master_elected`, and when it arrived.
    Elected { device: usize, master: String, term: u64, at: Instant },
}

/// One device's connection.
struct Device {
    sink: Sink,
    reader: JoinHandle<()>,
}

async fn connect(
    url: &str,
    index: usize,
    id: &str,
    heard: mpsc::UnboundedSender<Heard>,
) -> Result<Device, String> {
    let (sink, mut stream) = super::client::open(url).await?.split();
    let sink: Sink = Arc::new(Mutex::new(sink));
    let online = json!({"type": "device_online", "device_id": id, "device_name": id,
        "priority": 10 + index % 80});
    send(&sink, &online).await?;
    let (me, acking) = (id.to_owned(), Arc::clone(&sink));
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            let at = Instant::now();
            let Message::Text(text) = frame else { continue };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
            let term = frame["term"].as_u64().unwrap_or(0);
            let news = match frame["type"].as_str() {
                Some("device_online_ack") => {
                    let role = frame["role"].as_str().unwrap_or_default().to_owned();
                    Heard::Online { device: index, role, term }
                }
                Some("master_elected") => {
                    let master = frame["new_master_id"].as_str().unwrap_or_default().to_owned();
                    Heard::Elected { device: index, master, term, at }
                }
                Some("role_change") if frame["device_id"] == me.as_str() && frame["new_role"] == "master" => {
                    let ack = json!({"type": "role_change_ack", "device_id": me, "new_role": "master",
                        "status": "success"});
                    if send(&acking, &ack).await.is_err() {
                        return;
                    }
                    continue;
                }
                _ => continue,
            };
            if heard.send(news).is_err() {
                return;
            }
        }
    });
    Ok(Device { sink, reader })
}

/// Sends one JSON frame on a device's connection.
async fn send(sink: &Sink, frame: &Value) -> Result<(), String> {
    sink.lock().await.send(Message::text(frame.to_string())).await.map_err(|e| e.to_string())
}

/// Waits for device `index`'s `device_online_ack`: its role and the term.
async fn online_ack(
    heard: &mut mpsc::UnboundedReceiver<Heard>,
    index: usize,
) -> Result<(String, u64), String> {
    loop {
        match tokio::time::timeout(WAIT, heard.recv()).await {
            Ok(Some(Heard::Online { device, role, term })) if device == index => return Ok((role, term)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return Err(format!("device {index}: no device_online_ack in {WAIT:?}")),
        }
    }
}

pub async fn run(o: Options) -> Result<Report, String> {
    super::procfs::raise_open_files();
    let token_query = o.token.as_deref().map(|t| format!("?token={t}")).unwrap_or_default();
    let url = format!("{}/ws{token_query}", o.server.replacen("http", "ws", 1));
    let run_id = std::process::id();
    let (tell, mut heard) = mpsc::unbounded_channel();

    // A slot is empty while its device's connection is dropped.
    let mut devices: Vec<Option<Device>> = Vec::with_capacity(o.devices);
    let ids: Vec<String> = (0..o.devices).map(|i| format!("failover-{run_id}-{i:04}")).collect();
    let (mut master, mut term) = (None, 0);
    for (i, id) in ids.iter().enumerate() {
        devices.push(Some(connect(&url, i, id, tell.clone()).await?));
        let (role, t) = online_ack(&mut heard, i).await?;
        term = term.max(t);
        if role == "master" {
            master = Some(i);
        }
    }
    // Settle: the elections the arrivals may have caused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(news) = heard.try_recv() {
        if let Heard::Elected { master: m, term: t, .. } = news
            && t >= term
        {
            term = t;
            master = ids.iter().position(|id| *id == m);
        }
    }
    let mut master = master.ok_or("no device of this run is master (is another device master already?)")?;

    let mut to_last = Latencies::default();
    let mut to_each = Latencies::default();
    for _ in 0..o.repeats {
        let leaving = devices[master].take().ok_or("the master's connection is gone")?;
        let left_at = Instant::now();
        match o.how {
            Departure::Shutdown => {
                let bye = json!({"type": "device_shutdown", "device_id": ids[master], "reason": "loadgen"});
                send(&leaving.sink, &bye).await?;
                devices[master] = Some(leaving);
            }
            Departure::Drop => {
                // Both halves go: the socket closes with no close frame.
                leaving.reader.abort();
                drop(leaving);
            }
        }
        // Every other device must hear of the successor.
        let mut arrived: HashMap<usize, Instant> = HashMap::new();
        let mut successor = None;
        let deadline = left_at + WAIT + Duration::from_secs(10);
        while arrived.len() < o.devices - 1 {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, heard.recv()).await {
                Ok(Some(Heard::Elected { device, master: m, term: t, at }))
                    if t > term && device != master =>
                {
                    arrived.insert(device, at);
                    successor = ids.iter().position(|id| *id == m);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    return Err(format!(
                        "after the master left, {} of {} devices heard of a successor",
                        arrived.len(),
                        o.devices - 1
                    ));
                }
            }
        }
        for at in arrived.values() {
            to_each.push(at.duration_since(left_at));
        }
        if let Some(last) = arrived.values().max() {
            to_last.push(last.duration_since(left_at));
        }
        term += 1;
        let next = successor.ok_or("master_elected named a device of another run")?;
        // The departed device comes back, as a client.
        let id = &ids[master];
        match &devices[master] {
            Some(device) => {
                let again = json!({"type": "device_online", "device_id": id, "priority": 10 + master % 80});
                send(&device.sink, &again).await?;
            }
            None => devices[master] = Some(connect(&url, master, id, tell.clone()).await?),
        }
        let (role, t) = online_ack(&mut heard, master).await?;
        if role != "client" || t != term {
            return Err(format!("{id} came back as {role} in term {t}, expected client in {term}"));
        }
        master = next;
    }
    for d in devices.into_iter().flatten() {
        d.reader.abort();
    }

    let mut report = Report::new("failover");
    report
        .add("devices", o.devices, "")
        .add("repeats", o.repeats, "")
        .add("departure", format!("{:?}", o.how).to_lowercase(), "")
        .add("to_last_device_p50_ms", to_last.percentile_ms(50.0), "ms")
        .add("to_last_device_p99_ms", to_last.percentile_ms(99.0), "ms")
        .add("to_last_device_max_ms", to_last.percentile_ms(100.0), "ms")
        .add("per_device_p50_ms", to_each.percentile_ms(50.0), "ms")
        .add("per_device_p99_ms", to_each.percentile_ms(99.0), "ms");
    Ok(report)
}
