//! The conformance mode of a Socket.IO session (`socketio.conformance`): in place of the fleet's
//! events, the handlers the public Socket.IO protocol test suite (`socketio/socket.io-protocol`,
//! `test-suite/`) expects of the server it checks. The namespaces `/` and `/custom`; on CONNECT
//! the event `auth` with the CONNECT payload; `message` echoed as `message-back`;
//! `message-with-ack` acknowledged with its arguments; binary attachments echoed; a packet that
//! breaks the format closes the connection. `device-sync conformance` serves it.

use std::collections::HashSet;
use std::time::Duration;

use actix::AsyncContext;
use actix_web::web::Bytes;
use actix_web_actors::ws;
use serde_json::Value;

use super::Session;
use super::socketio::Wire;
use crate::protocol::close;
use crate::protocol::socketio::{self, RawPacket};

/// How long after the CONNECT answer the `auth` event follows.
const AUTH_DELAY: Duration = Duration::from_millis(20);
/// How long a client may take to send its first CONNECT: the suite's heartbeat tests run about
/// a second without one, and its connect-timeout test waits at most two.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// The namespaces the suite connects to.
const NAMESPACES: [&str; 2] = ["/", "/custom"];

/// What a conformance session keeps.
#[derive(Default)]
pub struct Conformance {
    joined: HashSet<String>,
    /// A binary packet waiting for its attachments.
    binary: Option<Binary>,
}

struct Binary {
    /// The packet to send back, and how many attachments it awaits.
    reply: String,
    expected: usize,
    attachments: Vec<Bytes>,
}

fn prefix(namespace: &str) -> String {
    if namespace == "/" { String::new() } else { format!("{namespace},") }
}

fn list(values: &[Value]) -> String {
    Value::Array(values.to_vec()).to_string()
}

impl Session {
    fn conformance(&mut self) -> Option<&mut Conformance> {
        match &mut self.wire {
            Wire::SocketIo(sio) => sio.conformance.as_mut(),
            Wire::Plain => None,
        }
    }

    /// One Socket.IO packet, in conformance mode.
    pub(super) fn on_conformance_packet(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let Ok(packet) = socketio::parse_raw(text) else { return self.break_format(ctx) };
        let RawPacket { kind, attachments, namespace, ack, payload } = packet;
        let ns = prefix(&namespace);
        let joined = self.conformance().is_some_and(|c| c.joined.contains(&namespace));
        match kind {
            '0' if !NAMESPACES.contains(&namespace.as_str()) => {
                let refusal = socketio::connect_error(&namespace, "Invalid namespace", None);
                self.send_packet(ctx, refusal);
            }
            '0' => {
                let auth = match payload.trim() {
                    "" => Value::Object(Default::default()),
                    text => match serde_json::from_str::<Value>(text) {
                        Ok(auth @ Value::Object(_)) => auth,
                        _ => return self.break_format(ctx),
                    },
                };
                let sid = self.id_text.clone();
                if let Some(c) = self.conformance() {
                    c.joined.insert(namespace);
                }
                if let Wire::SocketIo(sio) = &mut self.wire {
                    sio.mark_joined();
                }
                self.send_packet(ctx, format!("40{ns}{}", serde_json::json!({ "sid": sid })));
                // The suite reads the CONNECT answer and the `auth` event one message event at a
                // time: sent in one write, the second would arrive before it listens again.
                let auth = format!("42{ns}[\"auth\",{auth}]");
                ctx.run_later(AUTH_DELAY, move |act, ctx| act.send_packet(ctx, auth));
            }
            '1' => {
                if let Some(c) = self.conformance() {
                    c.joined.remove(&namespace);
                }
            }
            '2' | '5' => {
                let Ok(args) = socketio::event_args(payload) else { return self.break_format(ctx) };
                if !joined {
                    return;
                }
                let rest = &args[1..];
                // A binary packet's answer is binary too, with as many attachments.
                let binary =
                    if kind == '5' { format!("{}-", attachments.unwrap_or(0)) } else { String::new() };
                let (event, ack_kind) = if kind == '5' { ('5', '6') } else { ('2', '3') };
                let reply = match (args[0].as_str(), ack) {
                    (Some("message"), _) => {
                        let mut back = vec![Value::String("message-back".into())];
                        back.extend_from_slice(rest);
                        Some(format!("4{event}{binary}{ns}{}", list(&back)))
                    }
                    (Some("message-with-ack"), Some(id)) => {
                        Some(format!("4{ack_kind}{binary}{ns}{id}{}", list(rest)))
                    }
                    _ => None,
                };
                match (kind, reply) {
                    ('5', Some(reply)) => {
                        let expected = attachments.unwrap_or(0);
                        if let Some(c) = self.conformance() {
                            c.binary = Some(Binary { reply, expected, attachments: Vec::new() });
                        }
                        self.flush_binary(ctx);
                    }
                    (_, Some(reply)) => self.send_packet(ctx, reply),
                    (_, None) => {}
                }
            }
            '3' | '6' => {}
            _ => self.break_format(ctx),
        }
    }

    /// A binary frame: the next attachment of the binary packet waiting.
    pub(super) fn on_conformance_binary(&mut self, ctx: &mut ws::WebsocketContext<Self>, data: Bytes) {
        let Some(binary) = self.conformance().and_then(|c| c.binary.as_mut()) else {
            return self.break_format(ctx);
        };
        binary.attachments.push(data);
        self.flush_binary(ctx);
    }

    fn flush_binary(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(c) = self.conformance() else { return };
        let complete = c.binary.as_ref().is_some_and(|b| b.attachments.len() >= b.expected);
        if !complete {
            return;
        }
        let Some(binary) = c.binary.take() else { return };
        self.send_packet(ctx, binary.reply);
        for attachment in binary.attachments {
            let size = attachment.len();
            ctx.binary(attachment);
            self.outbox.note_written(size, false);
        }
    }

    fn break_format(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        tracing::debug!(session = %self.id, "conformance: a packet breaks the format; closing");
        self.close(ctx, close::PROTOCOL_ERROR, "invalid packet");
    }
}
