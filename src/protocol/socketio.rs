//! Socket.IO 5 over Engine.IO 4 (PROTOCOL.md section 10), as text: the packets a client sends
//! parsed into what they mean, and the packets the server sends encoded. No I/O.
//!
//! The rules come from the public specifications (`socketio/engine.io-protocol`, version 4, and
//! `socketio/socket.io-protocol`, version 5): an Engine.IO packet is a type digit and its data
//! (`0` open, `1` close, `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop); a Socket.IO
//! packet travels in an Engine.IO message and is a type digit (`0` CONNECT, `1` DISCONNECT,
//! `2` EVENT, `3` ACK, `4` CONNECT_ERROR, `5` BINARY_EVENT, `6` BINARY_ACK), an optional
//! attachment count ending in `-` (binary packets only), an optional namespace ending in `,`, an
//! optional ack id, and a JSON payload. Over HTTP long-polling several Engine.IO packets share
//! one body, separated by the record separator `\x1e`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::outbound::Frame;

/// The one Engine.IO version spoken.
pub const ENGINE_IO_VERSION: &str = "4";
/// What separates packets in a long-polling body.
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// An Engine.IO packet from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    Close,
    Ping(&'a str),
    Pong(&'a str),
    /// A Socket.IO packet.
    Message(&'a str),
    Upgrade,
    Noop,
}

/// Why a client's packet is not one the server takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("an empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("binary packets are not accepted; send JSON")]
    Binary,
    #[error("the payload is not valid JSON")]
    BadJson,
    #[error("an event must be a JSON array whose first element is the event name")]
    BadEvent,
}

/// Reads one Engine.IO packet.
pub fn parse_engine(text: &str) -> Result<EnginePacket<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(PacketError::Empty)?;
    let data = chars.as_str();
    match kind {
        '1' => Ok(EnginePacket::Close),
        '2' => Ok(EnginePacket::Ping(data)),
        '3' => Ok(EnginePacket::Pong(data)),
        '4' => Ok(EnginePacket::Message(data)),
        '5' => Ok(EnginePacket::Upgrade),
        '6' => Ok(EnginePacket::Noop),
        // A base64 binary message (long-polling).
        'b' => Err(PacketError::Binary),
        other => Err(PacketError::UnknownType(other)),
    }
}

/// A Socket.IO packet from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum SioPacket {
    /// Join `namespace`, with the CONNECT payload (`auth`), if any.
    Connect { namespace: String, auth: Option<Map<String, Value>> },
    /// Leave `namespace`.
    Disconnect { namespace: String },
    /// An event: its name, its first argument (`None` when there is none), whether that
    /// argument is an object, and the ack id the client waits on.
    Event { namespace: String, ack: Option<u64>, name: String, argument: Option<Value> },
    /// An acknowledgement of a server event (the server asks for none; it is ignored).
    Ack { namespace: String, ack: u64 },
    /// A binary event or acknowledgement: refused, and its `attachments` (the binary frames
    /// that follow it) with it.
    Binary { namespace: String, ack: Option<u64>, attachments: usize },
}

/// A Socket.IO packet taken apart, its payload not yet judged.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPacket<'a> {
    /// The type digit.
    pub kind: char,
    /// Binary packets: how many attachments follow.
    pub attachments: Option<usize>,
    pub namespace: String,
    pub ack: Option<u64>,
    /// The JSON payload, as text (maybe empty).
    pub payload: &'a str,
}

/// Takes a Socket.IO packet apart: type, attachments, namespace, ack id, payload.
pub fn parse_raw(text: &str) -> Result<RawPacket<'_>, PacketError> {
    let mut rest = text;
    let kind = rest.chars().next().ok_or(PacketError::Empty)?;
    if !('0'..='6').contains(&kind) {
        return Err(PacketError::UnknownType(kind));
    }
    rest = &rest[kind.len_utf8()..];
    let mut attachments = None;
    if matches!(kind, '5' | '6') {
        // `<count>-`: the number of attachments.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if rest[digits..].starts_with('-') {
            attachments = rest[..digits].parse().ok();
            rest = &rest[digits + 1..];
        }
    }
    let namespace = if rest.starts_with('/') {
        match rest.find(',') {
            Some(end) => {
                let namespace = &rest[..end];
                rest = &rest[end + 1..];
                namespace.to_owned()
            }
            None => std::mem::take(&mut rest).to_owned(),
        }
    } else {
        "/".to_owned()
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = if digits > 0 { rest[..digits].parse::<u64>().ok() } else { None };
    Ok(RawPacket { kind, attachments, namespace, ack, payload: &rest[digits..] })
}

/// Reads one Socket.IO packet (the data of an Engine.IO message).
pub fn parse_sio(text: &str) -> Result<SioPacket, PacketError> {
    let RawPacket { kind, attachments, namespace, ack, payload } = parse_raw(text)?;
    match kind {
        '0' => {
            let auth = match payload.trim() {
                "" => None,
                payload => match serde_json::from_str::<Value>(payload) {
                    Ok(Value::Object(map)) => Some(map),
                    Ok(Value::Null) => None,
                    _ => return Err(PacketError::BadJson),
                },
            };
            Ok(SioPacket::Connect { namespace, auth })
        }
        '1' => Ok(SioPacket::Disconnect { namespace }),
        '2' => {
            let mut args = event_args(payload)?;
            let Value::String(name) = args.remove(0) else {
                return Err(PacketError::BadEvent);
            };
            let argument = (!args.is_empty()).then(|| args.swap_remove(0));
            Ok(SioPacket::Event { namespace, ack, name, argument })
        }
        '3' => ack.map(|ack| SioPacket::Ack { namespace, ack }).ok_or(PacketError::BadEvent),
        '5' | '6' => Ok(SioPacket::Binary { namespace, ack, attachments: attachments.unwrap_or(0) }),
        // CONNECT_ERROR is the server's to send.
        other => Err(PacketError::UnknownType(other)),
    }
}

/// An event's payload: a JSON array whose first element is a string (the name).
pub fn event_args(payload: &str) -> Result<Vec<Value>, PacketError> {
    match serde_json::from_str::<Value>(payload) {
        Ok(Value::Array(args)) if args.first().is_some_and(Value::is_string) => Ok(args),
        _ => Err(PacketError::BadEvent),
    }
}

/// The `/ws` message an event stands for: its argument with `type` set to the event name, and
/// the ack id as its `id` when it has none of its own. `Err` when the argument is not an
/// object (no argument is an empty object).
pub fn event_message(name: &str, argument: Option<Value>, ack: Option<u64>) -> Result<Value, Option<u64>> {
    let mut map = match argument {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ack),
    };
    map.insert("type".to_owned(), Value::String(name.to_owned()));
    if let Some(ack) = ack
        && !map.contains_key("id")
    {
        map.insert("id".to_owned(), Value::String(ack.to_string()));
    }
    Ok(Value::Object(map))
}

/// The Engine.IO open packet's data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake<'a> {
    pub sid: &'a str,
    pub upgrades: &'a [&'a str],
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub max_payload: usize,
}

/// `0{…}`: the Engine.IO open packet.
pub fn open(handshake: &Handshake<'_>) -> String {
    format!("0{}", serde_json::to_string(handshake).unwrap_or_default())
}

/// `2`: the server's ping.
pub const PING: &str = "2";
/// `6`: the answer to a poll the upgrade ends.
pub const NOOP: &str = "6";

/// `40{"sid":…}`: the default namespace is joined.
pub fn connected(sid: &str) -> String {
    format!("40{}", serde_json::json!({ "sid": sid }))
}

/// `44{"message":…}` (with `code` when given): the namespace refused the client.
pub fn connect_error(namespace: &str, message: &str, code: Option<&str>) -> String {
    let mut body = serde_json::json!({ "message": message });
    if let (Some(code), Value::Object(map)) = (code, &mut body) {
        map.insert("code".to_owned(), Value::String(code.to_owned()));
    }
    let prefix = if namespace == "/" { String::new() } else { format!("{namespace},") };
    format!("44{prefix}{body}")
}

/// `42["T",{…}]`: a server message as an event.
pub fn event(frame: &Frame) -> String {
    let name = frame.kind().map_or("message", |k| k.name());
    format!("42[\"{name}\",{}]", frame.json())
}

/// `43<id>[{…}]`: a server message as the acknowledgement of the client's event `id`.
pub fn ack(id: u64, frame: &Frame) -> String {
    format!("43{id}[{}]", frame.json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::outbound::{self, Ack};

    #[test]
    fn engine_packets_are_a_type_digit_and_their_data() {
        assert_eq!(parse_engine("2probe"), Ok(EnginePacket::Ping("probe")));
        assert_eq!(parse_engine("3"), Ok(EnginePacket::Pong("")));
        assert_eq!(parse_engine("42[\"x\"]"), Ok(EnginePacket::Message("2[\"x\"]")));
        assert_eq!(parse_engine("5"), Ok(EnginePacket::Upgrade));
        assert_eq!(parse_engine("6"), Ok(EnginePacket::Noop));
        assert_eq!(parse_engine("1"), Ok(EnginePacket::Close));
        assert_eq!(parse_engine(""), Err(PacketError::Empty));
        assert_eq!(parse_engine("bAAEC"), Err(PacketError::Binary));
        assert_eq!(parse_engine("9"), Err(PacketError::UnknownType('9')));
    }

    #[test]
    fn a_connect_carries_its_namespace_and_auth() {
        assert_eq!(parse_sio("0"), Ok(SioPacket::Connect { namespace: "/".into(), auth: None }));
        let Ok(SioPacket::Connect { namespace, auth }) = parse_sio("0/admin,{\"token\":\"t\"}") else {
            panic!("a connect");
        };
        assert_eq!(namespace, "/admin");
        assert_eq!(auth.and_then(|a| a.get("token").cloned()), Some(Value::String("t".into())));
        assert_eq!(parse_sio("0\"text\""), Err(PacketError::BadJson));
    }

    #[test]
    fn an_event_has_its_name_first_argument_and_ack_id() {
        let packet = parse_sio("212[\"heartbeat\",{\"device_id\":\"t1\"},\"ignored\"]").expect("event");
        let SioPacket::Event { namespace, ack, name, argument } = packet else { panic!("an event") };
        assert_eq!((namespace.as_str(), ack, name.as_str()), ("/", Some(12), "heartbeat"));
        assert_eq!(argument, Some(serde_json::json!({"device_id": "t1"})));
        let SioPacket::Event { argument, ack, .. } = parse_sio("2[\"ping\"]").expect("event") else {
            panic!("an event")
        };
        assert_eq!((argument, ack), (None, None));
        assert_eq!(parse_sio("2{\"a\":1}"), Err(PacketError::BadEvent));
        assert_eq!(parse_sio("2[1]"), Err(PacketError::BadEvent));
        assert_eq!(parse_sio("2[]"), Err(PacketError::BadEvent));
    }

    #[test]
    fn binary_packets_are_recognised_to_be_refused() {
        assert_eq!(
            parse_sio("51-[\"x\",{\"_placeholder\":true,\"num\":0}]"),
            Ok(SioPacket::Binary { namespace: "/".into(), ack: None, attachments: 1 })
        );
        assert_eq!(
            parse_sio("61-/x,7[]"),
            Ok(SioPacket::Binary { namespace: "/x".into(), ack: Some(7), attachments: 1 })
        );
    }

    #[test]
    fn an_event_becomes_the_ws_message_of_that_type_and_its_ack_id_its_id() {
        let m =
            event_message("heartbeat", Some(serde_json::json!({"device_id": "t1"})), Some(3)).expect("ok");
        assert_eq!(m, serde_json::json!({"type": "heartbeat", "device_id": "t1", "id": "3"}));
        let own = event_message("ping", Some(serde_json::json!({"id": "mine"})), Some(3)).expect("ok");
        assert_eq!(own["id"], "mine");
        assert_eq!(event_message("ping", None, None), Ok(serde_json::json!({"type": "ping"})));
        assert_eq!(event_message("ping", Some(serde_json::json!([1])), Some(4)), Err(Some(4)));
    }

    #[test]
    fn server_messages_go_out_as_events_or_acks_with_the_same_object() {
        let frame = outbound::render(&Ack { seq: 9 }, Some("5"));
        let as_event = event(&frame);
        assert!(as_event.starts_with("42[\"ack\",{\"type\":\"ack\""), "{as_event}");
        let parsed: Value = serde_json::from_str(&as_event[2..]).expect("json");
        assert_eq!(parsed[1]["seq"], 9);
        let as_ack = ack(5, &frame);
        let parsed: Value = serde_json::from_str(&as_ack[3..]).expect("json");
        assert_eq!(parsed[0]["seq"], 9);
        assert!(as_ack.starts_with("435["));
    }

    #[test]
    fn the_open_packet_and_connect_answers_follow_the_spec() {
        let open = open(&Handshake {
            sid: "abc",
            upgrades: &["websocket"],
            ping_interval: 25_000,
            ping_timeout: 20_000,
            max_payload: 1_000_000,
        });
        let data: Value = serde_json::from_str(&open[1..]).expect("json");
        assert!(open.starts_with('0'));
        assert_eq!(data["sid"], "abc");
        assert_eq!(data["upgrades"][0], "websocket");
        assert_eq!(
            (data["pingInterval"].as_u64(), data["pingTimeout"].as_u64()),
            (Some(25_000), Some(20_000))
        );
        assert_eq!(data["maxPayload"], 1_000_000);
        assert_eq!(connected("s1"), "40{\"sid\":\"s1\"}");
        assert_eq!(
            connect_error("/x", "Invalid namespace", None),
            "44/x,{\"message\":\"Invalid namespace\"}"
        );
        let refused: Value =
            serde_json::from_str(&connect_error("/", "bad token", Some("UNAUTHORIZED"))[2..]).expect("json");
        assert_eq!(refused["code"], "UNAUTHORIZED");
    }
}
