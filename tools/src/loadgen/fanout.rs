//! `loadgen fanout`: N clients, K of them sending `device_update`s at R a second each with a
//! payload of B bytes, every other client receiving them. Each receiver measures delivery
//! latency (the send time travels in the payload) and checks that it gets every update once,
//! in order. Optionally S more clients connect and never read (stuck): the report says when
//! the server closed them and how its memory behaved meanwhile.
//!
//! It speaks only `ping`, `device_update` and `device_updated`, so it measures any server of
//! document 002's protocol (`--peer` skips the station set-up a device-sync server needs).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use super::procfs;
use super::report::Report;
use super::stats::Latencies;
use super::wire::Transport;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server, `http://host:port`.
    pub server: String,
    /// Clients in all, senders included (stuck clients come on top).
    pub clients: usize,
    pub senders: usize,
    /// Updates a second, per sender.
    pub rate: f64,
    /// Bytes of padding in each update.
    pub payload: usize,
    pub seconds: f64,
    /// Clients that connect and never read.
    pub stuck: usize,
    /// The admin token, to create the senders' stations (device-sync).
    pub admin_token: Option<String>,
    /// The server is a peer without stations to create or health to ask.
    pub peer: bool,
    /// The server's process, for CPU and memory figures.
    pub server_pid: Option<u32>,
    /// The protocol every client speaks.
    pub transport: Transport,
    /// Other nodes of the same site: clients and senders are spread over `server` and these.
    pub also: Vec<String>,
}

impl Options {
    /// The node the `i`-th client (or sender) connects to.
    fn node(&self, i: usize) -> &str {
        match i % (self.also.len() + 1) {
            0 => &self.server,
            n => &self.also[n - 1],
        }
    }
}

#[derive(Deserialize)]
struct Update<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    data: Option<UpdateData<'a>>,
}

#[derive(Deserialize)]
struct UpdateData<'a> {
    #[serde(borrow)]
    notes: Option<&'a str>,
}

/// What one receiver saw.
#[derive(Default)]
struct Seen {
    latencies: Latencies,
    /// The last sequence number per sender.
    last: HashMap<u32, u64>,
    received: u64,
    duplicated: u64,
    out_of_order: u64,
}

/// Reads the sender, sequence number and send time from an update's notes.
fn parse_notes(notes: &str) -> Option<(u32, u64, u64)> {
    let mut parts = notes.splitn(4, ':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub async fn run(o: Options) -> Result<Report, String> {
    procfs::raise_open_files();
    let transport = o.transport;
    let http = reqwest::Client::new();
    if !o.peer {
        for k in 0..o.senders {
            let mut request = http
                .post(format!("{}/cashier/devices", o.server))
                .json(&json!({"deviceId": format!("lg-{k}")}));
            if let Some(token) = &o.admin_token {
                request = request.bearer_auth(token);
            }
            let status = request.send().await.map_err(|e| e.to_string())?.status();
            if !(status.is_success() || status.as_u16() == 409) {
                return Err(format!("creating station lg-{k}: {status} (is --admin-token right?)"));
            }
        }
    }
    let base = Instant::now();
    let receivers = o.clients.saturating_sub(o.senders);
    let connecting = Instant::now();
    let mut connect_times = Latencies::default();

    // Receivers: read everything, measure each update.
    let mut receiving = Vec::with_capacity(receivers);
    let stop = Arc::new(AtomicBool::new(false));
    for r in 0..receivers {
        let started = Instant::now();
        let ws = transport.open(o.node(r)).await?;
        connect_times.push(started.elapsed());
        let (mut sink, mut stream) = ws.split();
        let stop = Arc::clone(&stop);
        receiving.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(Ok(frame))) =
                    tokio::time::timeout(Duration::from_millis(200), stream.next()).await
                else {
                    continue;
                };
                let Message::Text(text) = frame else { continue };
                if text.as_str() == "2" {
                    // Engine.IO's ping.
                    let _ = sink.send(Message::text("3")).await;
                    continue;
                }
                let Some(object) = transport.decode(&text) else { continue };
                let Ok(update) = serde_json::from_str::<Update<'_>>(object) else { continue };
                if update.kind != "device_updated" {
                    continue;
                }
                let Some((sender, seq, sent)) = update.data.and_then(|d| d.notes).and_then(parse_notes)
                else {
                    continue;
                };
                let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                seen.latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
                seen.received += 1;
                match seen.last.get(&sender) {
                    Some(last) if seq == *last => seen.duplicated += 1,
                    Some(last) if seq < *last => seen.out_of_order += 1,
                    _ => {
                        seen.last.insert(sender, seq);
                    }
                }
            }
            drop(sink);
            seen
        }));
    }
    // Stuck clients: connect, say one thing, never read again.
    let mut stuck = Vec::with_capacity(o.stuck);
    for _ in 0..o.stuck {
        stuck.push(transport.open(&o.server).await?);
    }
    // Senders: send at their rate; drain what they are sent (answering Engine.IO's pings,
    // so a long Socket.IO run keeps its senders).
    let mut sender_sinks = Vec::with_capacity(o.senders);
    let mut draining = Vec::with_capacity(o.senders);
    for k in 0..o.senders {
        let ws = transport.open(o.node(k)).await?;
        let (sink, mut stream) = ws.split();
        let sink = Arc::new(Mutex::new(sink));
        let (stop, pongs) = (Arc::clone(&stop), Arc::clone(&sink));
        draining.push(tokio::spawn(async move {
            // Updates the server refused (rate limit, validation) are not owed to anyone.
            let mut refused = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(Ok(Message::Text(text)))) =
                    tokio::time::timeout(Duration::from_millis(200), stream.next()).await
                else {
                    continue;
                };
                if text.as_str() == "2" {
                    let _ = pongs.lock().await.send(Message::text("3")).await;
                } else if let Some(object) = transport.decode(&text)
                    && serde_json::from_str::<Update<'_>>(object).is_ok_and(|u| u.kind == "error")
                {
                    refused += 1;
                }
            }
            refused
        }));
        sender_sinks.push(sink);
    }
    let connected_in = connecting.elapsed();
    // Let every session attach before the first update.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = o.server_pid.and_then(procfs::sample);
    let peak_rss = Arc::new(AtomicU64::new(before.map_or(0, |s| s.rss_kib)));
    let sampling = o.server_pid.map(|pid| {
        let (peak, stop) = (Arc::clone(&peak_rss), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(s) = procfs::sample(pid) {
                    peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let stuck_closed = Arc::new(Mutex::new(None::<Duration>));
    let watching = (o.stuck > 0 && !o.peer).then(|| {
        let (http, url, stop, closed) = (
            http.clone(),
            format!("{}/system/health", o.server),
            Arc::clone(&stop),
            Arc::clone(&stuck_closed),
        );
        let expected = receivers + o.senders;
        tokio::spawn(async move {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(response) = http.get(&url).send().await
                    && let Ok(health) = response.json::<serde_json::Value>().await
                    && health["sessions"].as_u64().is_some_and(|n| n as usize <= expected)
                {
                    *closed.lock().await = Some(started.elapsed());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    });

    // Send.
    let sent = Arc::new(AtomicU64::new(0));
    let padding = "x".repeat(o.payload);
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let mut sending = Vec::with_capacity(o.senders);
    for (k, sink) in sender_sinks.into_iter().enumerate() {
        let (sent, padding) = (Arc::clone(&sent), padding.clone());
        let interval = Duration::from_secs_f64(1.0 / o.rate.max(0.001));
        // Senders are spread over the interval, as independent devices are, rather than all
        // sending in the same instant.
        let offset = interval.mul_f64(k as f64 / o.senders as f64);
        sending.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 0u64;
            while Instant::now() < deadline {
                ticks.tick().await;
                seq += 1;
                let at = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let update = json!({"type": "device_update", "deviceId": format!("lg-{k}"),
                    "data": {"notes": format!("{k}:{seq}:{at}:{padding}"), "elapsedSeconds": seq}});
                let frame = transport.encode("device_update", &update.to_string());
                if sink.lock().await.send(Message::text(frame)).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            sink
        }));
    }
    let mut sinks = Vec::new();
    for s in sending {
        sinks.push(s.await.map_err(|e| e.to_string())?);
    }
    let sending_took = Duration::from_secs_f64(o.seconds);
    // Let the last updates arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = o.server_pid.and_then(procfs::sample);
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for r in receiving {
        let s = r.await.map_err(|e| e.to_string())?;
        seen.latencies.extend(s.latencies);
        seen.received += s.received;
        seen.duplicated += s.duplicated;
        seen.out_of_order += s.out_of_order;
    }
    let mut refused = 0u64;
    for d in draining {
        refused += d.await.unwrap_or(0);
    }
    if let Some(s) = sampling {
        let _ = s.await;
    }
    if let Some(w) = watching {
        let _ = w.await;
    }
    drop(sinks);
    drop(stuck);

    let sent = sent.load(Ordering::Relaxed);
    let expected = sent.saturating_sub(refused) * receivers as u64;
    let unique = seen.received - seen.duplicated - seen.out_of_order;
    let mut report = Report::new("fanout");
    report
        .add("transport", transport.name(), "")
        .add("clients", o.clients, "")
        .add("senders", o.senders, "")
        .add("rate_per_sender", o.rate, "/s")
        .add("payload_bytes", o.payload, "")
        .add("seconds", o.seconds, "s")
        .add("connect_p99_ms", connect_times.percentile_ms(99.0), "ms")
        .add("connected_in_ms", super::report::ms(connected_in), "ms")
        .add("sent", sent, "")
        .add("refused", refused, "")
        .add("deliveries", seen.received, "")
        .add("expected_deliveries", expected, "")
        .add("lost", expected.saturating_sub(unique), "")
        .add("duplicated", seen.duplicated, "")
        .add("out_of_order", seen.out_of_order, "")
        .add("deliveries_per_s", seen.received as f64 / sending_took.as_secs_f64(), "/s")
        .add("p50_ms", seen.latencies.percentile_ms(50.0), "ms")
        .add("p90_ms", seen.latencies.percentile_ms(90.0), "ms")
        .add("p99_ms", seen.latencies.percentile_ms(99.0), "ms")
        .add("max_ms", seen.latencies.percentile_ms(100.0), "ms");
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_seconds - b.cpu_seconds;
        report
            .add("server_cpu_seconds", cpu, "s")
            .add("server_cpu_cores", cpu / (sending_took.as_secs_f64() + 2.0), "")
            .add(
                "server_cpu_us_per_delivery",
                if seen.received > 0 { cpu * 1e6 / seen.received as f64 } else { 0.0 },
                "µs",
            )
            .add("server_rss_before_kib", b.rss_kib, "KiB")
            .add("server_rss_peak_kib", peak_rss.load(Ordering::Relaxed), "KiB")
            .add("server_rss_after_kib", a.rss_kib, "KiB");
    }
    if o.stuck > 0 {
        report.add("stuck_clients", o.stuck, "");
        if let Some(closed) = *stuck_closed.lock().await {
            report.add("stuck_closed_after_ms", super::report::ms(closed), "ms");
        } else if !o.peer {
            report.add("stuck_closed_after_ms", serde_json::Value::Null, "(not closed during the run)");
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_carry_sender_sequence_and_time() {
        assert_eq!(parse_notes("3:17:123456:xxxx"), Some((3, 17, 123456)));
        assert_eq!(parse_notes("3:17:123456:"), Some((3, 17, 123456)));
        assert_eq!(parse_notes("nope"), None);
    }
}
