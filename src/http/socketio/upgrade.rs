//! The upgrade of a polling session to websocket (Engine.IO 4): the client opens a websocket
//! with the session's `sid`, probes it (`2probe` → `3probe`), the pending poll is ended with a
//! noop, and the client's `5` switches the session over. From then on this actor carries the
//! session's packets both ways; the session itself stays where it is (see `polling`).

use std::sync::Arc;

use actix::prelude::*;
use actix_web_actors::ws;

use super::polling::Bridge;
use crate::actors::outbox::Outbox;
use crate::protocol::close;

/// A packet for the client.
#[derive(Message)]
#[rtype(result = "()")]
struct Out(String);

/// The websocket a polling session upgrades to.
pub struct Upgrade {
    bridge: Arc<Bridge>,
    outbox: Outbox,
    /// Frames the client may fall behind before the session is closed (4008).
    limit: usize,
    upgraded: bool,
    /// The client probed this websocket (`2probe`).
    probed: bool,
    /// Another websocket has the session: this one is closed at once.
    refused: bool,
}

impl Upgrade {
    pub fn new(bridge: Arc<Bridge>, outbox: Outbox, limit: usize) -> Self {
        Self { bridge, outbox, limit, upgraded: false, probed: false, refused: false }
    }

    /// A websocket for a session another websocket already has: closed once open.
    pub fn refused(bridge: Arc<Bridge>, outbox: Outbox) -> Self {
        Self { bridge, outbox, limit: 0, upgraded: false, probed: false, refused: true }
    }

    fn text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: String) {
        let size = text.len();
        ctx.text(text);
        self.outbox.note_written(size, true);
    }
}

impl Actor for Upgrade {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.refused {
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Policy,
                description: Some("already upgraded".into()),
            }));
            ctx.stop();
            return;
        }
        // A websocket that does not complete the upgrade within the session's silence limit
        // holds nothing longer.
        ctx.run_later(self.bridge.silence_limit(), |act, ctx| {
            if !act.upgraded {
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Policy,
                    description: Some("upgrade not completed".into()),
                }));
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.upgraded {
            // The transport is gone: for the session, the client dropped.
            self.bridge.send("1");
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Upgrade {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) if !self.upgraded && text == "2probe" => {
                self.text(ctx, "3probe".to_owned());
                // The poll waiting ends once; a probe sent again is only answered.
                if !std::mem::replace(&mut self.probed, true) {
                    self.bridge.noop();
                }
            }
            Ok(ws::Message::Text(text)) if !self.upgraded && text == "5" => {
                self.upgraded = true;
                let (socket, packets) = tokio::sync::mpsc::channel(64);
                self.bridge.upgrade(socket);
                ctx.add_stream(futures_util::stream::unfold(packets, |mut packets| async move {
                    packets.recv().await.map(|packet| (Out(packet), packets))
                }));
            }
            Ok(ws::Message::Text(text)) if self.upgraded => {
                if !self.bridge.send(&text) {
                    ctx.stop();
                }
            }
            Ok(ws::Message::Ping(data)) => ctx.pong(&data),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                self.outbox.end_reading();
                ctx.stop();
            }
            // Before the upgrade, or not text: nothing the session takes.
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}

impl StreamHandler<Out> for Upgrade {
    fn handle(&mut self, Out(packet): Out, ctx: &mut Self::Context) {
        if self.outbox.pending() >= self.limit {
            tracing::warn!(
                frames = self.outbox.pending(),
                "slow consumer on an upgraded Socket.IO session: closing"
            );
            ctx.close(Some(ws::CloseReason {
                code: close::SLOW_CONSUMER.into(),
                description: Some("slow consumer".into()),
            }));
            return ctx.stop();
        }
        self.text(ctx, packet);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The session ended: so does its transport.
        ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Away, description: None }));
        ctx.stop();
    }
}
