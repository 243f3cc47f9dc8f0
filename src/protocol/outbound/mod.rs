//! Every message the server sends, as types, and the one place they become frames.
//!
//! [`Kind`] is the list of server message types: each message struct names its kind
//! ([`Message`]), and [`render`] is the only function that turns one into text. A rendered
//! [`Frame`] is shared: the same bytes go to every session that receives it. The message types
//! live by family beside the inbound events they answer: [`devices`] (sessions, devices and
//! elections), [`sync`] (records and sync), [`stations`] (stations, orders and the catalogue).
//!
//! Every frame carries `type` first, then the message's fields, `reply_to` when it is a direct
//! reply, and the server `timestamp`.

pub mod devices;
pub mod stations;
pub mod sync;

use std::sync::{Arc, OnceLock};

use bytestring::ByteString;
use serde::Serialize;

pub use self::devices::*;
pub use self::stations::*;
pub use self::sync::*;
use super::error::{ErrorBody, WireError};
use super::time;

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The type of a server message: its `type` on `/ws`, its event name on Socket.IO.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        impl Kind {
            /// Every message type the server sends.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// Where the kind is in `ALL` (a dense index, for tables by kind).
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The name on the wire.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)*
                }
            }

            /// The kind with this wire name.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name {
                    $($name => Some(Kind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// A request failed (section 2).
    Error => "error",
    /// A message with an `id` that has no reply of its own is durable.
    Ack => "ack",
    /// The reply to `ping`.
    Pong => "pong",
    /// The reply to `connect`.
    Connected => "connected",
    /// Sent after `connected`.
    ConnectionStatus => "connection_status",
    /// A resuming client must do a full sync.
    ResyncRequired => "resync_required",
    /// The reply to `device_online`.
    DeviceOnlineAck => "device_online_ack",
    /// The reply to the legacy `register_device`.
    Registered => "registered",
    /// The reply to `device_offline`.
    DeviceOfflineAck => "device_offline_ack",
    /// The reply to `device_shutdown`.
    DeviceShutdownAck => "device_shutdown_ack",
    /// The reply to `heartbeat`.
    HeartbeatAck => "heartbeat_ack",
    /// An election has started.
    MasterElection => "master_election",
    /// A device's role is changing.
    RoleChange => "role_change",
    /// An election is decided.
    MasterElected => "master_elected",
    /// A record changed.
    DataUpdate => "data_update",
    /// The writer's reply to its `data_update`.
    DataUpdateAck => "data_update_ack",
    /// A write lost to the stored copy.
    SyncConflict => "sync_conflict",
    /// How a conflict was resolved.
    SyncConflictResolved => "sync_conflict_resolved",
    /// A legacy critical event.
    CriticalEvent => "critical_event",
    /// The reply to `acknowledge` and `critical_event`.
    Acknowledged => "acknowledged",
    /// The reply to `sync_error`.
    SyncErrorAck => "sync_error_ack",
    /// The reply to `queue_status_request`.
    QueueStatusResponse => "queue_status_response",
    /// The reply to `sync_complete`, and the notice to every other session.
    SyncCompleteAck => "sync_complete_ack",
    /// The reply to `data_request`.
    DataResponse => "data_response",
    /// The reply to `sync_request`.
    SyncResponse => "sync_response",
    /// A station was created.
    DeviceCreated => "device_created",
    /// A station changed.
    DeviceUpdated => "device_updated",
    /// Orders were added to a station.
    OrderAdded => "order_added",
    /// An order changed.
    OrderModified => "order_modified",
    /// An order was removed.
    OrderRemoved => "order_removed",
    /// A station's orders moved to another.
    DeviceTransferred => "device_transferred",
    /// A station was removed.
    DeviceRemoved => "device_removed",
    /// A station was cleared.
    DeviceCleared => "device_cleared",
    /// The categories document was replaced.
    CategoriesUpdated => "categories_updated",
    /// The prices document was replaced.
    PricesUpdated => "prices_updated",
}

/// A server message: a body whose type is known.
pub trait Message: Serialize {
    fn kind(&self) -> Kind;
}

/// Ties message structs to their one kind.
macro_rules! message {
    ($($ty:ident $(<$lt:lifetime>)? => $kind:ident),* $(,)?) => {
        $(impl$(<$lt>)? $crate::protocol::outbound::Message for $ty$(<$lt>)? {
            fn kind(&self) -> $crate::protocol::outbound::Kind {
                $crate::protocol::outbound::Kind::$kind
            }
        })*
    };
}
pub(crate) use message;

/// A rendered server message, cheap to clone: every session that receives it shares its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Arc<Rendered>);

#[derive(Debug)]
struct Rendered {
    /// `None` only for a stored frame whose type this server does not know.
    kind: Option<Kind>,
    /// The JSON object, as `/ws` sends it.
    json: ByteString,
    /// The message id it answers, when it is a direct reply (not known for a stored frame).
    reply_to: Option<Box<str>>,
    /// The Socket.IO event form, made the first time a Socket.IO session sends it.
    socketio: OnceLock<ByteString>,
}

impl PartialEq for Rendered {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.json, &self.reply_to) == (other.kind, &other.json, &other.reply_to)
    }
}

impl Eq for Rendered {}

impl Frame {
    /// The message's type.
    pub fn kind(&self) -> Option<Kind> {
        self.0.kind
    }

    /// The JSON object, as a `/ws` text frame carries it.
    pub fn json(&self) -> &ByteString {
        &self.0.json
    }

    /// The message id it answers, when it was rendered as a direct reply.
    pub fn reply_to(&self) -> Option<&str> {
        self.0.reply_to.as_deref()
    }

    /// The Socket.IO event form (`42["T",{…}]`), made once and shared by every Socket.IO
    /// session that sends this frame.
    pub fn socketio_event(&self) -> ByteString {
        self.0.socketio.get_or_init(|| ByteString::from(super::socketio::event(self))).clone()
    }

    fn new(kind: Option<Kind>, json: String, reply_to: Option<&str>) -> Frame {
        Frame(Arc::new(Rendered {
            kind,
            json: ByteString::from(json),
            reply_to: reply_to.map(Into::into),
            socketio: OnceLock::new(),
        }))
    }

    /// A frame the change log kept, as [`render`] made it.
    pub fn stored(json: String) -> Frame {
        Self::stored_reply(json, None)
    }

    /// A direct reply that was kept, as [`render`] made it, answering the message its
    /// `reply_to` names.
    pub fn stored_answer(json: String) -> Frame {
        #[derive(serde::Deserialize)]
        struct Answering {
            reply_to: Option<String>,
        }
        let reply_to = serde_json::from_str::<Answering>(&json).ok().and_then(|a| a.reply_to);
        Self::stored_reply(json, reply_to.as_deref())
    }

    /// A direct reply to message `reply_to` that was kept, as [`render`] made it.
    pub fn stored_reply(json: String, reply_to: Option<&str>) -> Frame {
        let kind = stored_kind(&json);
        if kind.is_none() {
            tracing::warn!(frame = %json.chars().take(64).collect::<String>(), "a stored frame of unknown type");
        }
        Frame::new(kind, json, reply_to)
    }
}

/// The type of a rendered frame: `render` writes `{"type":"…"` first, so it is read from the
/// front without parsing the rest.
fn stored_kind(json: &str) -> Option<Kind> {
    const HEAD: &str = "{\"type\":\"";
    let rest = json.strip_prefix(HEAD)?;
    Kind::from_name(&rest[..rest.find('"')?])
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    timestamp: String,
}

/// Renders a message: `{"type", …fields, "reply_to"?, "timestamp"}`.
pub fn render<M: Message>(message: &M, reply_to: Option<&str>) -> Frame {
    let kind = message.kind();
    let envelope = Envelope { kind: kind.name(), body: message, reply_to, timestamp: time::now() };
    match serde_json::to_string(&envelope) {
        Ok(json) => Frame::new(Some(kind), json, reply_to),
        Err(err) => {
            // Only a bug in a server type can get here (every body is a plain struct).
            tracing::error!(kind = kind.name(), %err, "a server message could not be rendered");
            let fallback = WireError::new(super::ErrorCode::ServerError, "a reply could not be rendered");
            error(&fallback, reply_to)
        }
    }
}

/// The `error` message.
pub struct ErrorMessage<'a>(ErrorBody<'a>);

impl Serialize for ErrorMessage<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

message!(ErrorMessage<'a> => Error);

/// Renders an `error` frame (its `reply_to` is part of the error body).
pub fn error(error: &WireError, reply_to: Option<&str>) -> Frame {
    let body = ErrorMessage(error.body(reply_to));
    let envelope = Envelope { kind: Kind::Error.name(), body: &body, reply_to: None, timestamp: time::now() };
    // The error body holds only strings, numbers and a JSON value: it always serializes.
    let json = serde_json::to_string(&envelope).unwrap_or_default();
    Frame::new(Some(Kind::Error), json, reply_to)
}
/// The fields of each server message kind (`type`, `reply_to` and `timestamp` aside), for the
/// check of `docs/asyncapi.yaml`. A kind added to `Kind` must be added here.
#[cfg(test)]
pub(crate) fn fields_of(kind: Kind) -> super::asyncapi::Described {
    use super::asyncapi::described;
    match kind {
        Kind::Error => described::<ErrorBody<'static>>(),
        Kind::Ack => described::<Ack>(),
        Kind::Pong => described::<Pong>(),
        Kind::Connected => described::<Connected<'static>>(),
        Kind::ConnectionStatus => described::<ConnectionStatus>(),
        Kind::ResyncRequired => described::<ResyncRequired<'static>>(),
        Kind::DeviceOnlineAck => described::<DeviceOnlineAck<'static>>(),
        Kind::Registered => described::<Registered<'static>>(),
        Kind::DeviceOfflineAck | Kind::DeviceShutdownAck => described::<DeviceGoneAck<'static>>(),
        Kind::HeartbeatAck => described::<HeartbeatAck<'static>>(),
        Kind::MasterElection => described::<ElectionStarted<'static>>(),
        Kind::RoleChange => described::<RoleChange<'static>>(),
        Kind::MasterElected => described::<MasterElected>(),
        Kind::DataUpdate => described::<DataUpdate<'static>>(),
        Kind::DataUpdateAck => described::<DataUpdateAck<'static>>(),
        Kind::SyncConflict => described::<SyncConflict<'static>>(),
        Kind::SyncConflictResolved => described::<SyncConflictResolved<'static>>(),
        Kind::CriticalEvent => described::<CriticalEvent<'static>>(),
        Kind::Acknowledged => described::<Acknowledged>(),
        Kind::SyncErrorAck => described::<SyncErrorAck<'static>>(),
        Kind::QueueStatusResponse => described::<QueueStatusResponse<'static>>(),
        Kind::SyncCompleteAck => described::<SyncCompleteAck<'static>>(),
        Kind::DataResponse => described::<DataResponse<'static>>(),
        Kind::SyncResponse => described::<SyncResponse>(),
        Kind::DeviceCreated | Kind::DeviceUpdated => described::<StationState<'static>>(),
        Kind::OrderAdded => described::<OrdersAdded<'static>>(),
        Kind::OrderModified => described::<OrderModified<'static>>(),
        Kind::OrderRemoved => described::<OrderRemoved<'static>>(),
        Kind::DeviceTransferred => described::<Transferred<'static>>(),
        Kind::DeviceRemoved | Kind::DeviceCleared => described::<StationRef<'static>>(),
        Kind::CategoriesUpdated | Kind::PricesUpdated => described::<CatalogueUpdated<'static>>(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use serde_json::value::RawValue;

    use super::*;
    use crate::domain::catalogue::CatalogueKind;
    use crate::domain::station::Station;

    #[test]
    fn a_frame_has_type_fields_reply_to_and_a_timestamp() {
        let f = render(&Ack { seq: 7 }, Some("c-1"));
        assert_eq!(f.kind(), Some(Kind::Ack));
        let v: Value = serde_json::from_str(f.json()).expect("json");
        assert_eq!(v["type"], "ack");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["reply_to"], "c-1");
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(time::parse(ts).is_some() && ts.ends_with('Z'));
    }

    #[test]
    fn an_error_frame_is_typed_error() {
        let err = WireError::new(super::super::ErrorCode::RateLimited, "slow down");
        let f = error(&err, None);
        assert_eq!(f.kind(), Some(Kind::Error));
        let v: Value = serde_json::from_str(f.json()).expect("json");
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "RATE_LIMITED");
        assert!(v.get("reply_to").is_none());
    }

    #[test]
    fn arabic_text_is_written_as_is() {
        let mut s = Station::new("pc1", Some("الزاوية".into()));
        s.notes = "بارد جداً".into();
        let f = render(
            &StationState { created: false, device_id: &s.id, data: StationData::of(&s), seq: 1 },
            None,
        );
        let text = f.json().to_string();
        assert!(text.contains("\"notes\":\"بارد جداً\""), "{text}");
        assert!(text.contains("الزاوية"));
    }

    #[test]
    fn every_kind_has_one_name_and_is_found_by_it() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(*kind));
            assert_eq!(Kind::ALL[kind.index()], *kind, "the index is the place in ALL");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len(), "two kinds share a name");
        assert_eq!(Kind::from_name("no_such_message"), None);
    }

    #[test]
    fn a_stored_frame_knows_its_kind_from_its_first_field() {
        let rendered = render(&StationRef { cleared: true, device_id: "pc1", seq: 4 }, None);
        let stored = Frame::stored(rendered.json().to_string());
        assert_eq!(stored.kind(), Some(Kind::DeviceCleared));
        assert_eq!(stored.json(), rendered.json());
        assert_eq!(Frame::stored("{\"seq\":1}".into()).kind(), None);
        assert_eq!(Frame::stored("{\"type\":\"unheard_of\"}".into()).kind(), None);
        assert_eq!(Frame::stored("{\"type\":\"ack".into()).kind(), None);
    }

    #[test]
    fn a_message_shared_by_two_kinds_names_the_one_it_is() {
        let gone = |shutdown| DeviceGoneAck {
            shutdown,
            status: "success",
            device_id: "t1",
            master_election_triggered: false,
            message: String::new(),
        };
        assert_eq!(gone(true).kind(), Kind::DeviceShutdownAck);
        assert_eq!(gone(false).kind(), Kind::DeviceOfflineAck);
        let raw = RawValue::from_string("{}".into()).expect("raw");
        let doc = |catalogue| CatalogueUpdated { catalogue, data: &raw, seq: 1 };
        assert_eq!(doc(CatalogueKind::Prices).kind(), Kind::PricesUpdated);
        assert_eq!(doc(CatalogueKind::Categories).kind(), Kind::CategoriesUpdated);
    }
}
