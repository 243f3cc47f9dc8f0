//! `device-sync client`: a minimal terminal client for trying the server by hand. Each line
//! typed is sent; each message received is printed on its own line. As a device (`--device ID`),
//! it registers on connect and confirms every role change that makes it master, as a real
//! device does.
//!
//! On `/ws` a line is one text frame. With `--transport socketio` it speaks Socket.IO over
//! Engine.IO's websocket transport, as the shop's app does: it joins the default namespace at
//! once (with `--auth`'s payload), answers Engine.IO's pings, sends each typed JSON object as
//! the event of its `type` (any other line goes as typed, a raw Engine.IO packet), and prints
//! each event or acknowledgement as the object it carries, so what is typed and seen is the
//! same as on `/ws`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::loadgen::wire::Transport;

/// Who the client is.
pub struct Identity {
    /// Register as this device and confirm role changes.
    pub device: Option<String>,
    pub priority: Option<u8>,
}

/// How the client speaks.
pub struct Speaking {
    pub transport: Transport,
    /// Socket.IO: the namespace CONNECT's payload.
    pub auth: Option<Value>,
}

/// The endpoint of a server on this machine's default port, for `transport`.
pub fn default_url(transport: Transport) -> &'static str {
    match transport {
        Transport::Ws => "ws://127.0.0.1:8080/ws",
        Transport::Socketio => "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket",
    }
}

/// What one received text frame means to the person at the terminal.
#[derive(Debug, PartialEq)]
enum Heard<'a> {
    /// A server message (a `/ws` frame, a Socket.IO event or acknowledgement): printed.
    Message(&'a str),
    /// Engine.IO's ping: answered, not printed.
    Ping,
    /// The Socket.IO session is joined (or refused, or ended): said on stderr.
    Note(String),
    /// The server ended the Socket.IO session.
    Ended(String),
}

fn heard(transport: Transport, text: &str) -> Heard<'_> {
    if transport == Transport::Ws {
        return Heard::Message(text);
    }
    match text.as_bytes().first() {
        Some(b'2') => Heard::Ping,
        Some(b'0') => Heard::Note(format!("Engine.IO session open: {}", &text[1..])),
        Some(b'1') => Heard::Ended("the server closed the Engine.IO session".into()),
        _ if text.starts_with("40") => Heard::Note(format!("joined the default namespace: {}", &text[2..])),
        _ if text.starts_with("41") => Heard::Ended("disconnected by the server".into()),
        _ if text.starts_with("44") => Heard::Ended(format!("refused: {}", &text[2..])),
        _ => match transport.decode(text) {
            Some(object) => Heard::Message(object),
            None => Heard::Note(format!("packet: {text}")),
        },
    }
}

/// What is sent for a typed line: on Socket.IO a JSON object with a `type` is its event, and
/// anything else goes as typed.
fn outgoing_text(transport: Transport, line: &str) -> String {
    if transport == Transport::Socketio
        && let Ok(value) = serde_json::from_str::<Value>(line)
        && let Some(kind) = value.get("type").and_then(Value::as_str)
    {
        return transport.encode(kind, &value.to_string());
    }
    line.to_owned()
}

/// The namespace CONNECT: the auth payload, with the token in it when one is given.
fn connect_packet(auth: Option<&Value>, token: Option<&str>) -> String {
    let mut auth = auth.cloned().unwrap_or_else(|| json!({}));
    if let (Some(token), Some(map)) = (token, auth.as_object_mut()) {
        map.entry("token").or_insert_with(|| token.into());
    }
    format!("40{auth}")
}

/// Connects to `url` (with `token` as a bearer token, if given) and relays stdin and stdout
/// until either side closes.
pub async fn run(
    url: &str,
    speaking: Speaking,
    token: Option<&str>,
    identity: Identity,
) -> Result<(), String> {
    let transport = speaking.transport;
    let mut request = url.into_client_request().map_err(|e| format!("{url}: {e}"))?;
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().map_err(|_| "the token is not a valid header value")?;
        request.headers_mut().insert("authorization", value);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| format!("{url}: {e}"))?;
    let (mut outgoing, mut incoming) = socket.split();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let _ =
        stderr.write_all(format!("connected to {url}; type one JSON message per line\n").as_bytes()).await;
    if transport == Transport::Socketio {
        let join = connect_packet(speaking.auth.as_ref(), token);
        outgoing.send(Message::text(join)).await.map_err(|e| e.to_string())?;
    }
    if let Some(device) = &identity.device {
        let mut online = json!({"type": "device_online", "device_id": device});
        if let Some(priority) = identity.priority {
            online["priority"] = priority.into();
        }
        let text = outgoing_text(transport, &online.to_string());
        outgoing.send(Message::text(text)).await.map_err(|e| e.to_string())?;
    }
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => {
                    let text = outgoing_text(transport, line.trim());
                    outgoing.send(Message::text(text)).await.map_err(|e| e.to_string())?;
                }
                Ok(None) | Err(_) => {
                    let _ = outgoing.send(Message::Close(None)).await;
                    return Ok(());
                }
            },
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => match heard(transport, &text) {
                    Heard::Message(object) => {
                        if let Some(ack) = confirmation(object, identity.device.as_deref()) {
                            let text = outgoing_text(transport, &ack);
                            outgoing.send(Message::text(text)).await.map_err(|e| e.to_string())?;
                        }
                        stdout.write_all(object.as_bytes()).await.map_err(|e| e.to_string())?;
                        stdout.write_all(b"\n").await.map_err(|e| e.to_string())?;
                        stdout.flush().await.map_err(|e| e.to_string())?;
                    }
                    Heard::Ping => outgoing.send(Message::text("3")).await.map_err(|e| e.to_string())?,
                    Heard::Note(note) => {
                        let _ = stderr.write_all(format!("{note}\n").as_bytes()).await;
                    }
                    Heard::Ended(why) => {
                        let _ = stderr.write_all(format!("{why}\n").as_bytes()).await;
                        return Ok(());
                    }
                },
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                    let _ = stderr.write_all(format!("closed by the server {why}\n").as_bytes()).await;
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
        }
    }
}

/// The `role_change_ack` a device sends when asked to become master.
fn confirmation(frame: &str, device: Option<&str>) -> Option<String> {
    let device = device?;
    let value: Value = serde_json::from_str(frame).ok()?;
    let asked =
        value["type"] == "role_change" && value["device_id"] == device && value["new_role"] == "master";
    asked.then(|| {
        json!({"type": "role_change_ack", "device_id": device, "new_role": "master",
            "status": "success", "election_id": value["election_id"]})
        .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_confirms_only_its_own_promotion() {
        let promote = r#"{"type":"role_change","device_id":"till-1","new_role":"master","election_id":"e1"}"#;
        let ack = confirmation(promote, Some("till-1")).expect("an ack");
        assert!(ack.contains(r#""election_id":"e1""#) && ack.contains("role_change_ack"));
        assert_eq!(confirmation(promote, Some("till-2")), None);
        assert_eq!(confirmation(promote, None), None);
        let demote = r#"{"type":"role_change","device_id":"till-1","new_role":"client"}"#;
        assert_eq!(confirmation(demote, Some("till-1")), None);
    }

    #[test]
    fn on_socket_io_typed_objects_are_events_and_events_print_as_their_objects() {
        let sio = Transport::Socketio;
        assert_eq!(
            outgoing_text(sio, r#"{"type":"device_online","device_id":"till-1"}"#),
            r#"42["device_online",{"device_id":"till-1","type":"device_online"}]"#
        );
        assert_eq!(outgoing_text(sio, "41"), "41", "anything else goes as typed");
        assert_eq!(outgoing_text(Transport::Ws, r#"{"type":"ping"}"#), r#"{"type":"ping"}"#);
        assert_eq!(heard(sio, r#"42["pong",{"type":"pong"}]"#), Heard::Message(r#"{"type":"pong"}"#));
        assert_eq!(heard(sio, r#"431[{"type":"ack","seq":3}]"#), Heard::Message(r#"{"type":"ack","seq":3}"#));
        assert_eq!(heard(sio, "2"), Heard::Ping);
        assert!(matches!(heard(sio, r#"40{"sid":"x"}"#), Heard::Note(_)));
        assert!(matches!(heard(sio, r#"44{"message":"no"}"#), Heard::Ended(_)));
        assert_eq!(heard(Transport::Ws, "2"), Heard::Message("2"), "/ws frames are all messages");
    }

    #[test]
    fn the_connect_packet_carries_the_auth_payload_and_the_token() {
        assert_eq!(connect_packet(None, None), "40{}");
        let auth = json!({"clientId": "till-1"});
        assert_eq!(connect_packet(Some(&auth), Some("t")), r#"40{"clientId":"till-1","token":"t"}"#);
    }
}
