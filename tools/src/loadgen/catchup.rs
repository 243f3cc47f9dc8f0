//! `loadgen catchup`: a device pulls N changes it missed through `sync_request` paging.
//!
//! Notes the log's head, seeds the server with N record writes through `POST /sync/push` (1,000
//! per request, from a seeding device) while the catching-up device is away, then the device
//! registers and pages through them with incremental `sync_request`s of `--page` changes, from
//! the noted head, until `has_more` is false. It checks that every change came once and in
//! order, and reports the time from the first request to the last page.

use std::time::Instant;

use serde::Deserialize;
use serde_json::json;

use super::client::Client;
use super::report::{Report, ms};

/// What to run.
pub struct Options {
    /// The server, `http://host:port`.
    pub server: String,
    pub changes: u64,
    pub page: u64,
    /// The device token, when the server needs one.
    pub token: Option<String>,
}

/// What the device reads of a frame while it pages: its reply's `seq`s and position, nothing
/// else (so that the time measured is the server's more than the parser's).
#[derive(Deserialize)]
struct PageReply {
    reply_to: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    changes: Option<Vec<Numbered>>,
    last_seq: Option<u64>,
    has_more: Option<bool>,
}

#[derive(Deserialize)]
struct Numbered {
    seq: u64,
}

pub async fn run(o: Options) -> Result<Report, String> {
    let http = reqwest::Client::new();
    let ws_url = format!("{}/ws", o.server.replacen("http", "ws", 1));
    let token_query = o.token.as_deref().map(|t| format!("?token={t}")).unwrap_or_default();
    let authorized = |r: reqwest::RequestBuilder| match &o.token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };

    let health: serde_json::Value = http
        .get(format!("{}/system/health", o.server))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let start = health["head_seq"].as_u64().ok_or_else(|| format!("no head_seq in {health}"))?;

    let seeding = Instant::now();
    let mut written = 0;
    let batch = 1000;
    while written < o.changes {
        let n = batch.min(o.changes - written);
        let events: Vec<_> = (written..written + n)
            .map(|i| {
                json!({"id": format!("seed-{start}-{i}"), "type": "data_update", "device_id": "loadgen-seed",
                    "table_name": "catchup", "record_id": i % 5000, "new_data": {"n": i, "note": "loadgen catch-up"}})
            })
            .collect();
        let response = authorized(http.post(format!("{}/sync/push", o.server)))
            .json(&json!({"device_id": "loadgen-seed", "events": events}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if body["accepted"].as_u64() != Some(n) {
            return Err(format!("seeding: {body}"));
        }
        written += n;
    }
    let seeded_in = seeding.elapsed();

    // The device comes back after the changes were made.
    let mut device = Client::connect(&format!("{ws_url}{token_query}")).await?;
    let device_id = format!("catchup-{}", std::process::id());
    device.send(&json!({"type": "device_online", "id": "online", "device_id": device_id})).await?;
    device.reply_to("online").await?;

    let pulling = Instant::now();
    let (mut after, mut pages, mut received, mut expected) = (start, 0u64, 0u64, start + 1);
    loop {
        let id = format!("page-{pages}");
        device
            .send(
                &json!({"type": "sync_request", "id": id, "device_id": device_id, "sync_type": "incremental",
                "last_seq": after, "limit": o.page}),
            )
            .await?;
        let response = loop {
            let frame: PageReply = device.recv_as().await?;
            if frame.reply_to.as_deref() == Some(id.as_str()) {
                break frame;
            }
        };
        let changes = response.changes.ok_or_else(|| format!("a {} where a page was due", response.kind))?;
        for change in &changes {
            if change.seq != expected {
                return Err(format!("change {} came where {expected} was due", change.seq));
            }
            expected += 1;
        }
        received += changes.len() as u64;
        pages += 1;
        after = response.last_seq.unwrap_or(after);
        if response.has_more != Some(true) {
            break;
        }
    }
    let pulled_in = pulling.elapsed();
    if received != o.changes {
        return Err(format!("pulled {received} changes, expected {}", o.changes));
    }
    let mut report = Report::new("catchup");
    report
        .add("changes", o.changes, "")
        .add("page_size", o.page, "")
        .add("pages", pages, "")
        .add("catch_up_ms", ms(pulled_in), "ms")
        .add("changes_per_s", o.changes as f64 / pulled_in.as_secs_f64(), "/s")
        .add("seeding_ms", ms(seeded_in), "ms (POST /sync/push, 1,000 a request)")
        .add("in_order_once", true, "");
    Ok(report)
}
