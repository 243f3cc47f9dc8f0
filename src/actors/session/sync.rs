//! A session's data and sync events (section 5): record writes and conflicts, record requests,
//! sync requests, the device's sync state, and the legacy critical events.

use std::sync::Arc;

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::Utc;

use super::Session;
use crate::actors::broadcast::Notify;
use crate::actors::election::MasterId;
use crate::actors::persistence::{Origin, Persist, persist};
use crate::domain::fleet::{FleetWrite, SyncStateWrite, SyncStatus};
use crate::domain::records::{RetryPlan, retry_plan};
use crate::domain::resume::{self, Resume};
use crate::protocol::inbound::{DataRequest, RequestKind, SyncEvent, SyncRequest, SyncType};
use crate::protocol::outbound::{
    self, Acknowledged, DataResponse, Found, QueueStatusResponse, RecordView, ResyncRequired,
    SyncCompleteAck, SyncErrorAck, SyncResponse,
};
use crate::protocol::{ErrorCode, WireError, time};
use crate::store;
use crate::sync;

impl Session {
    pub(super) fn on_sync_event(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        event: SyncEvent,
    ) {
        match event {
            // Changes became commands (`ClientEvent::into_intent`) before they came here.
            SyncEvent::DataUpdate(_) | SyncEvent::SyncConflict(_) | SyncEvent::CriticalEvent { .. } => {}
            SyncEvent::DataRequest(request) => self.data_request(ctx, reply_to, request),
            SyncEvent::SyncRequest(request) => self.sync_request(ctx, reply_to, request),
            SyncEvent::SyncComplete { device_id, sync_id, last_seq, changes_count } => {
                self.sync_complete(ctx, reply_to, device_id, sync_id, last_seq, changes_count);
            }
            SyncEvent::SyncError { device_id, error_type, error_message, sync_type, retry_count } => {
                let plan = retry_plan(retry_count, self.cx.sync.max_retries);
                let (status, retry_after) = match plan {
                    RetryPlan::RetryAfter(wait) => {
                        let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                        ("retry_scheduled", Some(time::format(at)))
                    }
                    RetryPlan::ManualIntervention => ("manual_intervention", None),
                };
                let state = SyncStateWrite {
                    device_id: device_id.clone(),
                    status: Some(SyncStatus::Error),
                    error: Some(error_message.clone()),
                    error_type: Some(error_type.clone()),
                    count_error: true,
                    ..Default::default()
                };
                let message = match plan {
                    RetryPlan::RetryAfter(_) => format!("Retry {} scheduled", retry_count + 1),
                    RetryPlan::ManualIntervention => {
                        format!("{retry_count} retries failed; manual intervention is needed")
                    }
                };
                let body = SyncErrorAck {
                    device_id: &device_id,
                    status,
                    retry_after,
                    error_message: &error_message,
                    error_code: &error_type,
                    sync_type: sync_type.map(SyncType::as_str),
                    retry_count,
                    message,
                };
                let reply = outbound::render(&body, reply_to.as_deref());
                self.write_state_then_reply(ctx, reply_to, state, reply);
            }
            SyncEvent::QueueStatus { device_id, queue_type } => {
                let db = self.cx.db.clone();
                let read = async move { sync::device_state(&db, &device_id).await };
                ctx.spawn(read.into_actor(self).map(move |result, act, ctx| match result {
                    Ok(state) => {
                        // Of the changes after its confirmed seq, those this session has
                        // already sent it: delivered, not yet confirmed.
                        let sent = act.position().unwrap_or(act.opened_at);
                        let processing =
                            sent.saturating_sub(state.confirmed_seq).min(state.pending_changes_count);
                        let body = QueueStatusResponse {
                            device_id: &state.device_id,
                            queue_type: queue_type.as_deref().unwrap_or("sync"),
                            pending_count: state.pending_changes_count,
                            processing_count: processing,
                            confirmed_seq: state.confirmed_seq,
                            error_count: state.error_count,
                            last_processed: state.last_sync_timestamp.as_deref(),
                            status: state.queue_status(),
                        };
                        let frame = outbound::render(&body, reply_to.as_deref());
                        act.write(ctx, frame);
                    }
                    Err(err) => act.read_failed(ctx, err, reply_to.as_deref()),
                }));
            }
            SyncEvent::Acknowledge { device_id, seq } => {
                if let Err(error) = self.check_position("seq", seq) {
                    return self.send_error(ctx, &error, reply_to.as_deref());
                }
                let state = SyncStateWrite { device_id, confirmed_seq: Some(seq), ..Default::default() };
                let body = Acknowledged { message: format!("Everything up to {seq} acknowledged"), seq };
                let reply = outbound::render(&body, reply_to.as_deref());
                self.write_state_then_reply(ctx, reply_to, state, reply);
            }
        }
    }

    /// A position a device confirms must be one the log has reached.
    fn check_position(&self, field: &str, seq: u64) -> Result<(), WireError> {
        sync::check_position(field, seq, self.cx.published.get())
    }

    fn read_failed(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        err: sea_orm::DbErr,
        reply_to: Option<&str>,
    ) {
        tracing::error!(session = %self.id, %err, "sync read failed");
        let error = WireError::new(ErrorCode::DatabaseUnavailable, "The database could not be read");
        self.send_error(ctx, &error, reply_to);
    }

    /// Writes the device's sync state, then answers with `reply`.
    fn write_state_then_reply(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        state: SyncStateWrite,
        reply: outbound::Frame,
    ) {
        let write = persist(&self.cx.persistence, vec![FleetWrite::SyncState(state)], Origin::Rest);
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok(_) => act.write(ctx, reply),
            Err(err) => act.send_error(ctx, &err.to_wire(), reply_to.as_deref()),
        }));
    }

    fn sync_complete(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        device_id: String,
        sync_id: Option<String>,
        last_seq: Option<u64>,
        changes_count: Option<u64>,
    ) {
        // Without `last_seq`, the device is where this session's feed has taken it.
        let confirmed = last_seq.unwrap_or_else(|| self.position().unwrap_or(self.opened_at));
        if let Err(error) = self.check_position("last_seq", confirmed) {
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        let now = Utc::now();
        let state = SyncStateWrite {
            device_id: device_id.clone(),
            status: Some(SyncStatus::Synced),
            confirmed_seq: Some(confirmed),
            synced_at: Some(now),
            clear_error: true,
            ..Default::default()
        };
        let next = now + chrono::Duration::from_std(self.cx.sync.interval()).unwrap_or_default();
        let body = SyncCompleteAck {
            device_id: &device_id,
            status: "success",
            sync_id: sync_id.as_deref(),
            sync_timestamp: time::format(now),
            last_seq: confirmed,
            changes_count: changes_count.unwrap_or(0),
            next_sync_scheduled: time::format(next),
            message: format!("Device {device_id} is synced up to {confirmed}"),
        };
        // The sender is answered directly, every other session is told.
        let (reply, notice) = (outbound::render(&body, reply_to.as_deref()), outbound::render(&body, None));
        let write = persist(&self.cx.persistence, vec![FleetWrite::SyncState(state)], Origin::Rest);
        let (broadcast, me) = (self.cx.broadcast.clone(), self.id);
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok(_) => {
                act.write(ctx, reply);
                broadcast.do_send(Notify { frame: notice, except: vec![me] });
            }
            Err(err) => act.send_error(ctx, &err.to_wire(), reply_to.as_deref()),
        }));
    }

    fn data_request(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        request: DataRequest,
    ) {
        let (db, answer_to) = (self.cx.db.clone(), reply_to.clone());
        let read = async move {
            let DataRequest { device_id, table, kind } = request;
            let found = match kind {
                RequestKind::Single(id) => {
                    let found = store::records::get(&db, &table, &id).await?.filter(|r| !r.deleted);
                    let record_id = crate::domain::records::id_to_json(&id);
                    match found.map(|r| (r.version, sync::record_view(r))) {
                        Some((version, view)) => Found::Single {
                            record_id,
                            data: view.data,
                            version: Some(version),
                            updated_at: Some(view.updated_at),
                        },
                        None => Found::Single { record_id, data: None, version: None, updated_at: None },
                    }
                }
                RequestKind::Batch(ids) => {
                    let found = store::records::batch(&db, &table, &ids).await?;
                    let not_found = ids
                        .iter()
                        .filter(|id| !found.iter().any(|r| &r.record_id == *id))
                        .map(|id| crate::domain::records::id_to_json(id))
                        .collect();
                    let records: Vec<RecordView> = found.into_iter().map(sync::record_view).collect();
                    Found::Batch { request_type: "batch", records, not_found }
                }
                RequestKind::Latest(limit) => {
                    let records = store::records::latest(&db, &table, limit).await?;
                    let records = records.into_iter().map(sync::record_view).collect();
                    Found::Latest { request_type: "latest", records, limit }
                }
            };
            let status = match &found {
                Found::Single { version: None, .. } => "not_found",
                Found::Batch { records, not_found, .. } if records.is_empty() && !not_found.is_empty() => {
                    "not_found"
                }
                _ => "success",
            };
            let body =
                DataResponse { device_id: &device_id, table_name: &table, table: &table, status, found };
            Ok::<_, sea_orm::DbErr>(outbound::render(&body, answer_to.as_deref()))
        };
        ctx.spawn(read.into_actor(self).map(move |result, act, ctx| match result {
            Ok(frame) => act.write(ctx, frame),
            Err(err) => act.read_failed(ctx, err, reply_to.as_deref()),
        }));
    }

    /// A `sync_request`: one at a time per session, read once the client has read what it was
    /// sent, and with at most a few such reads under way server-wide (they hold a connection of
    /// the read pool each).
    fn sync_request(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        request: SyncRequest,
    ) {
        if self.sync.reading || self.sync.waiting.is_some() {
            let error = WireError::new(
                ErrorCode::RateLimited,
                "One sync_request at a time: the one before is still being answered",
            );
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        self.sync.waiting = Some((reply_to, request));
        self.start_sync(ctx);
    }

    /// Answers the waiting `sync_request`, once the client has read enough.
    pub(super) fn start_sync(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.sync.waiting.is_none() || !self.drained(ctx) {
            return;
        }
        let Some((reply_to, request)) = self.sync.waiting.take() else { return };
        self.answer_sync(ctx, reply_to, request);
    }

    fn answer_sync(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        request: SyncRequest,
    ) {
        let head = self.cx.published.get();
        if let Some(last_seq) = request.last_seq {
            let floor = self.cx.floor.get();
            let decision = resume::decide(request.epoch.as_deref(), last_seq, &self.cx.epoch, floor, head);
            if let Resume::Resync { reason } = decision {
                let body = ResyncRequired { epoch: &self.cx.epoch, head_seq: head, reason };
                let frame = outbound::render(&body, reply_to.as_deref());
                return self.write(ctx, frame);
            }
        } else if request.epoch.as_deref().is_some_and(|e| e != self.cx.epoch) {
            let body = ResyncRequired { epoch: &self.cx.epoch, head_seq: head, reason: "epoch_mismatch" };
            let frame = outbound::render(&body, reply_to.as_deref());
            return self.write(ctx, frame);
        }
        let syncing = SyncStateWrite {
            device_id: request.device_id.clone(),
            status: Some(SyncStatus::Syncing),
            ..Default::default()
        };
        let syncing = vec![FleetWrite::SyncState(syncing)];
        self.cx.persistence.do_send(Persist::new(syncing, Origin::Rest, None));
        let (db, election, epoch) = (self.cx.db.clone(), self.cx.election.clone(), self.cx.epoch.clone());
        let reads = Arc::clone(&self.cx.sync_reads);
        let max_bytes = self.cx.limits.session_queue_bytes / 4;
        self.sync.reading = true;
        #[cfg(feature = "fault-injection")]
        let delay = self.cx.faults.sync_read_delay();
        let read = async move {
            #[cfg(feature = "fault-injection")]
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            // Closed only at shutdown: then the read goes ahead as it would have.
            let _permit = reads.acquire_owned().await.ok();
            let master = election.send(MasterId).await.ok().flatten();
            let tables = request.requested_tables.as_deref();
            let sync_id = uuid::Uuid::new_v4().to_string();
            let conflicts = sync::lost_conflicts(&db, &request.device_id).await?;
            let response = match request.sync_type {
                SyncType::Full => {
                    let snapshot = sync::snapshot(&db, tables).await?;
                    SyncResponse {
                        device_id: request.device_id,
                        sync_type: "full",
                        status: "success",
                        sync_id,
                        master_device_id: master,
                        changes: Vec::new(),
                        data: Some(snapshot.data),
                        conflicts,
                        last_seq: snapshot.last_seq,
                        head_seq: snapshot.head_seq,
                        has_more: false,
                        epoch,
                    }
                }
                kind => {
                    let since = sync::start_of(
                        &db,
                        &request.device_id,
                        request.last_seq,
                        request.last_sync_timestamp,
                    )
                    .await?;
                    let critical = kind == SyncType::Critical;
                    // A page holds at most a quarter of the session's byte bound.
                    let page = sync::changes(&db, since, tables, critical, request.limit, max_bytes).await?;
                    if page.trimmed {
                        return Ok(Err(page.head_seq));
                    }
                    SyncResponse {
                        device_id: request.device_id,
                        sync_type: kind.as_str(),
                        status: if page.has_more { "partial" } else { "success" },
                        sync_id,
                        master_device_id: master,
                        changes: page.changes,
                        data: None,
                        conflicts,
                        last_seq: page.last_seq,
                        head_seq: page.head_seq,
                        has_more: page.has_more,
                        epoch,
                    }
                }
            };
            Ok::<_, sea_orm::DbErr>(Ok(response))
        };
        ctx.spawn(read.into_actor(self).map(move |result, act, ctx| match result {
            Ok(Ok(response)) => {
                act.sync.reading = false;
                let frame = outbound::render(&response, reply_to.as_deref());
                act.write_paced(ctx, frame);
            }
            Ok(Err(head_seq)) => {
                act.sync.reading = false;
                // What it asks for from is no longer kept: a full sync is needed.
                let body = ResyncRequired { epoch: &act.cx.epoch, head_seq, reason: "history_trimmed" };
                let frame = outbound::render(&body, reply_to.as_deref());
                act.write(ctx, frame);
            }
            Err(err) => {
                act.sync.reading = false;
                act.read_failed(ctx, err, reply_to.as_deref());
            }
        }));
    }
}

/// A session's `sync_request` answers: one at a time.
#[derive(Default)]
pub(super) struct SyncAnswers {
    /// Waiting for the client to read what it was sent.
    waiting: Option<(Option<String>, SyncRequest)>,
    /// Read now.
    reading: bool,
}
