//! `loadgen idle`: N sessions held open and quiet, as a shop's devices are most of the day.
//! Reports how long each connection took (p50/p99, `--concurrency` opening at once), how many
//! failed, and — given the server's process id — its resident memory per session: the growth
//! from before the first connection to when all are open and settled, divided by N.
//!
//! Each session is a plain WebSocket upgrade followed by one `ping` frame, which any server of
//! document 002's protocol answers or ignores; nothing else is sent while they are held.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use futures_util::stream::{self, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::procfs;
use super::report::{Report, ms};
use super::stats::Latencies;

/// What to run.
pub struct Options {
    /// The server, `http://host:port`.
    pub server: String,
    pub sessions: usize,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// How long to hold them all open before measuring memory.
    pub hold: Duration,
    /// The device token, when the server needs one.
    pub token: Option<String>,
    /// The server's process, for the memory figures.
    pub server_pid: Option<u32>,
}

pub async fn run(o: Options) -> Result<Report, String> {
    procfs::raise_open_files();
    let token_query = o.token.as_deref().map(|t| format!("?token={t}")).unwrap_or_default();
    let ws_url = format!("{}/ws{token_query}", o.server.replacen("http", "ws", 1));
    let before = o.server_pid.and_then(procfs::sample);

    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..o.sessions)
        .map(|_| {
            let url = ws_url.clone();
            async move {
                let opening = Instant::now();
                let mut ws = super::client::open(&url).await?;
                let took = opening.elapsed();
                ws.send(Message::text(r#"{"type":"ping"}"#)).await.map_err(|e| e.to_string())?;
                Ok::<_, String>((ws, took))
            }
        })
        .buffer_unordered(o.concurrency.max(1))
        .collect()
        .await;
    let opened_in = started.elapsed();

    let mut held = Vec::with_capacity(o.sessions);
    let mut connect = Latencies::default();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok((ws, took)) => {
                connect.push(took);
                held.push(ws);
            }
            Err(err) => failures.push(err),
        }
    }
    // Let the server settle (answers sent, buffers shrunk), then measure while all are held.
    tokio::time::sleep(o.hold).await;
    let after = o.server_pid.and_then(procfs::sample);
    let open = held.len();

    let mut report = Report::new("idle");
    report
        .add("sessions", o.sessions, "")
        .add("concurrency", o.concurrency, "")
        .add("opened", open, "")
        .add("failures", failures.len(), "")
        .add("connect_p50_ms", connect.percentile_ms(50.0), "ms")
        .add("connect_p99_ms", connect.percentile_ms(99.0), "ms")
        .add("connect_max_ms", connect.percentile_ms(100.0), "ms")
        .add("all_open_in_ms", ms(opened_in), "ms");
    if let Some(first) = failures.first() {
        report.add("first_failure", first.clone(), "");
    }
    if let (Some(b), Some(a)) = (before, after) {
        let grown = a.rss_kib.saturating_sub(b.rss_kib);
        report
            .add("server_rss_before_kib", b.rss_kib, "KiB")
            .add("server_rss_held_kib", a.rss_kib, "KiB")
            .add("server_kib_per_session", if open > 0 { grown as f64 / open as f64 } else { 0.0 }, "KiB");
    }
    drop(held);
    Ok(report)
}
