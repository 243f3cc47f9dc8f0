//! The live view behind `/admin/events`: what the page shows, as server-sent events. The fleet
//! is sent at once, then whenever the Election actor reports a change (a device came or went,
//! a role or the master changed) or the once-a-second look finds it changed (a sync lag, a last
//! sign of life, an audit entry); the figures are sent every second. The feed ends when the
//! client goes away or the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_util::Stream;
use futures_util::stream;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use super::super::devices::{AuditLogView, ElectionLogView};
use super::super::system::health_of;
use crate::actors::election::{Fleet, WatchFleet};
use crate::actors::registry::{DeviceSessions, Stats};
use crate::domain::election::Role;
use crate::http::state::AppState;
use crate::protocol::time;
use crate::store;
use crate::store::audit::AuditFilter;

/// How often the figures are sent and the fleet is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// How many of the latest elections and audit entries the page shows.
const LATEST: u64 = 12;

pub struct Feed {
    app: Arc<AppState>,
    fleet_changes: Option<watch::Receiver<u64>>,
    stopping: watch::Receiver<bool>,
    tick: Interval,
    /// Nothing was looked at yet.
    first: bool,
    /// The fleet as last sent.
    sent_fleet: Option<String>,
    /// The message totals at the last figures, and when they were read.
    totals: (u64, u64),
    totals_at: Instant,
}

impl Feed {
    /// The event stream for one page.
    pub async fn start(app: Arc<AppState>) -> impl Stream<Item = Result<Bytes, Infallible>> {
        let fleet_changes = app.election.send(WatchFleet).await.ok();
        let stopping = app.stopping.subscribe();
        // The first figures a second from now: a rate needs a second to be one.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let totals = app.metrics.message_totals();
        let feed = Feed {
            app,
            fleet_changes,
            stopping,
            tick,
            first: true,
            sent_fleet: None,
            totals,
            totals_at: Instant::now(),
        };
        stream::unfold(feed, |mut feed| async move {
            let events = feed.next_events().await?;
            Some((Ok(Bytes::from(events)), feed))
        })
    }

    /// The next events to send, `None` once the server is stopping.
    async fn next_events(&mut self) -> Option<String> {
        loop {
            // The fleet goes at once; then on a change or a tick.
            let first = std::mem::take(&mut self.first);
            let ticked = !first
                && tokio::select! {
                    _ = self.tick.tick() => true,
                    () = fleet_changed(&mut self.fleet_changes) => false,
                    _ = self.stopping.wait_for(|stopping| *stopping) => return None,
                };
            let mut events = String::new();
            match self.fleet().await {
                Ok(fleet) if self.sent_fleet.as_ref() != Some(&fleet) => {
                    push_event(&mut events, "fleet", &fleet);
                    self.sent_fleet = Some(fleet);
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "admin page: the fleet could not be read"),
            }
            if ticked {
                match self.figures().await {
                    Ok(figures) => push_event(&mut events, "stats", &figures),
                    Err(err) => tracing::warn!(%err, "admin page: the figures could not be read"),
                }
            }
            if !events.is_empty() {
                return Some(events);
            }
        }
    }

    /// The fleet, as the page shows it, in JSON.
    async fn fleet(&self) -> Result<String, String> {
        let app = &self.app;
        let fleet = app.election.send(Fleet).await.map_err(|e| e.to_string())?;
        let sessions = app.registry.send(DeviceSessions).await.map_err(|e| e.to_string())?;
        let health = health_of(app, &fleet).await.map_err(|e| e.to_string())?;
        // What the database cannot give is left out; the rest is still shown.
        let head = app.published.get();
        let lags = store::sync_states::confirmed_all(&app.db).await.unwrap_or_default();
        let elections = store::devices::election_logs(&app.db, LATEST, 0).await.map(|(rows, _)| rows);
        let audit =
            store::audit::page(&app.db, AuditFilter::default(), LATEST, 0).await.map(|(rows, _)| rows);
        let devices = fleet
            .devices
            .iter()
            .map(|d| {
                let session = sessions.iter().find(|s| s.device_id == d.device_id);
                DeviceRow {
                    device_id: &d.device_id,
                    name: d.name.as_deref(),
                    device_type: d.device_type.as_deref(),
                    role: d.role,
                    priority: d.priority,
                    is_active: d.is_active,
                    connected: d.connected,
                    last_seen: d.last_seen.map(time::format),
                    sync_lag: lags
                        .iter()
                        .find(|(id, _)| *id == d.device_id)
                        .map(|(_, seq)| head.saturating_sub(*seq)),
                    transport: session.map(|s| s.transport.as_str()),
                    rtt_ms: session.and_then(|s| s.rtt_ms),
                }
            })
            .collect();
        let view = FleetView {
            master: fleet.master.as_deref(),
            term: fleet.term,
            election_failed: fleet.election_failed,
            devices,
            health: HealthView {
                status: health.status,
                database: health.database.status,
                database_error: health.database.error.as_deref(),
                head_seq: health.head_seq,
                oldest_seq: health.oldest_seq,
                epoch: &health.epoch,
            },
            elections: elections.ok().map(|rows| rows.into_iter().map(ElectionLogView::of).collect()),
            audit: audit.ok().map(|rows| rows.into_iter().map(AuditLogView::of).collect()),
        };
        serde_json::to_string(&view).map_err(|e| e.to_string())
    }

    /// The figures since the last ones, in JSON.
    async fn figures(&mut self) -> Result<String, String> {
        let stats = self.app.registry.send(Stats).await.map_err(|e| e.to_string())?;
        let totals = self.app.metrics.message_totals();
        let seconds = self.totals_at.elapsed().as_secs_f64().max(0.001);
        let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 / seconds * 10.0).round() / 10.0;
        let figures = Figures {
            at: time::now(),
            sessions_ws: stats.sessions.saturating_sub(stats.socketio_sessions),
            sessions_socketio: stats.socketio_sessions,
            received_per_second: rate(totals.0, self.totals.0),
            sent_per_second: rate(totals.1, self.totals.1),
            head_seq: self.app.published.get(),
            uptime_seconds: (chrono::Utc::now() - self.app.started_at).num_seconds(),
        };
        self.totals = totals;
        self.totals_at = Instant::now();
        serde_json::to_string(&figures).map_err(|e| e.to_string())
    }
}

/// Waits for the Election actor's next change; forever once it has stopped.
async fn fleet_changed(changes: &mut Option<watch::Receiver<u64>>) {
    if let Some(receiver) = changes.as_mut()
        && receiver.changed().await.is_ok()
    {
        return;
    }
    *changes = None;
    std::future::pending::<()>().await
}

/// One server-sent event (`data` is one line of JSON).
fn push_event(out: &mut String, name: &str, data: &str) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
}

#[derive(Serialize)]
struct FleetView<'a> {
    master: Option<&'a str>,
    term: u64,
    election_failed: bool,
    devices: Vec<DeviceRow<'a>>,
    health: HealthView<'a>,
    /// The latest elections, newest first (`null` when the database could not be read).
    elections: Option<Vec<ElectionLogView>>,
    /// The latest audit entries, newest first (likewise).
    audit: Option<Vec<AuditLogView>>,
}

#[derive(Serialize)]
struct DeviceRow<'a> {
    device_id: &'a str,
    name: Option<&'a str>,
    device_type: Option<&'a str>,
    role: Role,
    priority: i32,
    is_active: bool,
    connected: bool,
    last_seen: Option<String>,
    /// Changes it has not confirmed (`null`: it has no sync state).
    sync_lag: Option<u64>,
    /// `ws` or `socketio` while it has a session.
    transport: Option<&'static str>,
    rtt_ms: Option<u64>,
}

#[derive(Serialize)]
struct HealthView<'a> {
    status: &'static str,
    database: &'static str,
    database_error: Option<&'a str>,
    head_seq: u64,
    oldest_seq: u64,
    epoch: &'a str,
}

#[derive(Serialize)]
struct Figures {
    at: String,
    sessions_ws: usize,
    sessions_socketio: usize,
    received_per_second: f64,
    sent_per_second: f64,
    head_seq: u64,
    uptime_seconds: i64,
}
