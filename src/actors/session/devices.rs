//! A session's device events (section 4): registration, departures, heartbeats, role-change
//! acks and manual elections, each for the device the session registered as.

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;

use super::{Reply, Session};
use crate::actors::election::{
    Departure, DeviceGone, Request, RequestElection, Requester, RoleChangeAck, Seen,
};
use crate::actors::registry::BindDevice;
use crate::protocol::inbound::{ClientEvent, DeviceOnline, Intent};
use crate::protocol::outbound::{self, Ack, DeviceGoneAck, HeartbeatAck};
use crate::protocol::{ErrorCode, WireError, time};
use crate::store;

impl Session {
    /// `device_online` / `register_device`: resume like `connect`, bind the session to the
    /// device (through the Registry, which asks the Election actor for its role), then answer
    /// once the session is live.
    pub(super) fn on_device_online(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        online: DeviceOnline,
    ) {
        if let Err(error) = self.may_speak_for(Some(&online.device_id)) {
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        if let Some(bound) = self.device_id.as_ref().filter(|bound| **bound != online.device_id) {
            let error = WireError::new(
                ErrorCode::InsufficientPermissions,
                format!("This session speaks for device {bound}, not {}", online.device_id),
            );
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        if online.legacy {
            self.ensure_attached(ctx);
        } else {
            self.resume(ctx, online.last_seq, online.epoch.as_deref());
        }
        let (device_id, legacy) = (online.device_id.clone(), online.legacy);
        // The session speaks for the device from now on: the Election actor may ask it to
        // confirm a role before the registration's answer is back here.
        self.device_id = Some(device_id.clone());
        let bind = self.cx.registry.send(BindDevice { session: self.id, info: online });
        let db = self.cx.db.clone();
        let head = self.cx.published.get();
        let key = device_id.clone();
        let outcome = async move {
            let online = bind.await.unwrap_or_else(|_| {
                Err(WireError::new(ErrorCode::ServerError, "The registry is unavailable"))
            })?;
            // Changes it has not confirmed: when its confirmed position cannot be read, assume so.
            let confirmed = store::sync_states::confirmed_seq(&db, &key).await;
            Ok::<_, WireError>((online, confirmed.map_or(true, |c| head > c)))
        };
        ctx.spawn(outcome.into_actor(self).map(move |result, act, ctx| match result {
            Ok((online, sync_required)) => {
                let reply = Reply::DeviceOnline { reply_to, device_id, online, sync_required, legacy };
                act.reply_when_live(ctx, reply);
            }
            Err(error) => {
                if act.device_id.as_deref() == Some(device_id.as_str()) {
                    act.device_id = None;
                }
                act.send_error(ctx, &error, reply_to.as_deref());
            }
        }));
    }

    /// `device_offline` or `device_shutdown`: the device leaves (its reason and pending
    /// operations go into the audit row), and is answered once the Election actor has it.
    fn depart(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        device_id: String,
        how: Departure,
        note: Option<String>,
    ) {
        let gone =
            self.cx.election.send(DeviceGone { device_id: device_id.clone(), session: self.id, how, note });
        ctx.spawn(gone.into_actor(self).map(move |result, act, ctx| {
            let triggered = result.map(|g| g.election_triggered).unwrap_or(false);
            let message = match (how, triggered) {
                (Departure::Offline, _) => format!("Device {device_id} is offline"),
                (_, true) => format!("Device {device_id} shut down; a new master is being elected"),
                (_, false) => format!("Device {device_id} shut down"),
            };
            let body = DeviceGoneAck {
                shutdown: how != Departure::Offline,
                status: "success",
                device_id: &device_id,
                master_election_triggered: triggered,
                message,
            };
            let frame = outbound::render(&body, reply_to.as_deref());
            act.write(ctx, frame);
        }));
    }

    /// The events of sections 4 and 5 that need a registered device, speaking for itself.
    pub(super) fn on_device_event(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        event: ClientEvent,
    ) {
        let Some(device_id) = self.device_id.clone() else {
            let error = WireError::new(ErrorCode::NotRegistered, "Register first with device_online");
            return self.send_error(ctx, &error, reply_to.as_deref());
        };
        if let Some(named) = event.device_id().filter(|named| **named != device_id) {
            let error = WireError::new(
                ErrorCode::InsufficientPermissions,
                format!("This session speaks for device {device_id}, not {named}"),
            );
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        let election = self.cx.election.clone();
        match event {
            ClientEvent::Heartbeat { .. } => {
                election.do_send(Seen { device_id: device_id.clone(), session: self.id, at: Instant::now() });
                self.reported_life = self.last_seen;
                let body =
                    HeartbeatAck { device_id: &device_id, status: "acknowledged", server_time: time::now() };
                let frame = outbound::render(&body, reply_to.as_deref());
                self.write(ctx, frame);
            }
            ClientEvent::DeviceOffline { reason, .. } => {
                let note = reason.map(|r| format!("reason: {r}"));
                self.depart(ctx, reply_to, device_id, Departure::Offline, note);
            }
            ClientEvent::DeviceShutdown { reason, pending_operations, .. } => {
                let said: Vec<String> = [
                    reason.map(|r| format!("reason: {r}")),
                    pending_operations.map(|n| format!("{n} operations pending")),
                ]
                .into_iter()
                .flatten()
                .collect();
                let note = (!said.is_empty()).then(|| said.join("; "));
                self.depart(ctx, reply_to, device_id, Departure::Shutdown, note);
            }
            ClientEvent::RoleChangeAck { accepted, election_id, .. } => {
                election.do_send(RoleChangeAck { device_id, session: self.id, accepted, election_id });
                if let Some(id) = reply_to.as_deref() {
                    let frame =
                        outbound::render(&Ack { seq: self.position().unwrap_or(self.opened_at) }, Some(id));
                    self.write(ctx, frame);
                }
            }
            ClientEvent::MasterElection { initiated_by, preferred_master, .. } => {
                let request = election.send(RequestElection(Request {
                    requester: Requester::Device { device_id, session: self.id },
                    initiated_by,
                    preferred: preferred_master,
                    require_preferred: false,
                    exclude_master: false,
                }));
                ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
                    let result = result.unwrap_or_else(|_| {
                        Err(WireError::new(ErrorCode::ServerError, "The election service is unavailable"))
                    });
                    match result {
                        Ok(elected) => {
                            let frame = outbound::render(&elected.announcement, reply_to.as_deref());
                            act.write(ctx, frame);
                        }
                        Err(error) => act.send_error(ctx, &error, reply_to.as_deref()),
                    }
                }));
            }
            event @ ClientEvent::Sync(_) => match event.into_intent() {
                Intent::Change(change) => self.submit(ctx, change, reply_to),
                Intent::Other(ClientEvent::Sync(event)) => self.on_sync_event(ctx, reply_to, event),
                // `into_intent` gives a sync event back as itself.
                Intent::Other(_) => {}
            },
            // Handled before: connect, ping, station commands, device_online.
            ClientEvent::Connect(_)
            | ClientEvent::Ping
            | ClientEvent::Refresh { .. }
            | ClientEvent::Station(_)
            | ClientEvent::DeviceOnline(_) => {}
        }
    }
}
