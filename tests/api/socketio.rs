//! Socket.IO over the Engine.IO websocket transport (PROTOCOL.md section 10), spoken frame by
//! frame as the Engine.IO 4 and Socket.IO 5 specifications describe it: the open packet,
//! handshake errors, pings, namespaces, auth, events and acknowledgements, and one fleet with
//! `/ws` clients.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(5);

/// A Socket.IO client over the websocket transport, frame by frame.
pub(crate) struct Sio {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// The open packet's data.
    open: Value,
}

impl Sio {
    async fn open(app: &TestApp, query: &str) -> Self {
        let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket{query}", app.port);
        let (stream, _) =
            tokio::time::timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("upgrade");
        let mut sio = Self { stream, open: Value::Null };
        let open = sio.packet().await;
        assert!(open.starts_with('0'), "the first packet is the open packet: {open}");
        sio.open = serde_json::from_str(&open[1..]).expect("the open packet's JSON");
        sio
    }

    /// Opens and joins the default namespace with `auth`; returns the CONNECT answer.
    pub(crate) async fn join(app: &TestApp, auth: Value) -> (Self, String) {
        let mut sio = Self::open(app, "").await;
        sio.send(&format!("40{auth}")).await;
        let answer = sio.packet().await;
        (sio, answer)
    }

    pub(crate) async fn send(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.stream.send(Message::text(text)))
            .await
            .expect("in time")
            .expect("send");
    }

    /// The next text frame (an Engine.IO packet), answering server pings on the way.
    async fn packet(&mut self) -> String {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next()).await.expect("a packet in time") {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => panic!("expected a packet, got {other:?}"),
            }
        }
    }

    /// The next event: its name and its object.
    async fn event(&mut self) -> (String, Value) {
        let packet = self.packet().await;
        let body = packet.strip_prefix("42").unwrap_or_else(|| panic!("an event, got {packet}"));
        let args: Value = serde_json::from_str(body).expect("event JSON");
        (args[0].as_str().expect("event name").to_owned(), args[1].clone())
    }

    /// Reads events until one named `name`.
    pub(crate) async fn event_named(&mut self, name: &str) -> Value {
        loop {
            let (got, body) = self.event().await;
            if got == name {
                assert_eq!(body["type"], name, "the object keeps its type");
                return body;
            }
        }
    }

    /// Reads until the server closes the socket; returns the packets before and the close code.
    pub(crate) async fn closed(&mut self) -> (Vec<String>, Option<u16>) {
        let mut before = Vec::new();
        let reading = async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    None | Some(Err(_)) => return None,
                    Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                        let _ = self.stream.send(Message::text("3")).await;
                    }
                    Some(Ok(Message::Text(text))) => before.push(text.to_string()),
                    Some(Ok(_)) => {}
                }
            }
        };
        let code = tokio::time::timeout(WAIT, reading).await.expect("closed in time");
        (before, code)
    }

    /// Reads packets until the acknowledgement `id`, returning its object.
    pub(crate) async fn ack(&mut self, id: u64) -> Value {
        let prefix = format!("43{id}[");
        loop {
            let packet = self.packet().await;
            if let Some(rest) = packet.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(&format!("[{rest}")).expect("ack JSON");
                return args[0].clone();
            }
        }
    }
}

fn quick_pings(s: &mut device_sync::settings::Settings) {
    s.socketio.ping_interval_s = 0.2;
    s.socketio.ping_timeout_s = 0.3;
    s.socketio.connect_timeout_s = 1.0;
}

#[actix_web::test]
async fn the_open_packet_gives_the_session_id_and_the_configured_timings() {
    let app = spawn_app_with(quick_pings).await;
    let sio = Sio::open(&app, "").await;
    assert!(sio.open["sid"].as_str().is_some_and(|s| !s.is_empty()), "{}", sio.open);
    assert_eq!(sio.open["upgrades"], json!([]), "already on websocket: nothing to upgrade to");
    assert_eq!(sio.open["pingInterval"], 200);
    assert_eq!(sio.open["pingTimeout"], 300);
    assert_eq!(sio.open["maxPayload"], 1_048_576);
}

#[actix_web::test]
async fn a_wrong_version_or_transport_is_refused_with_engine_io_errors() {
    let app = spawn_app().await;
    let status_and_body = |query: &'static str| {
        let url = app.url(&format!("/socket.io/{query}"));
        async move {
            let response = reqwest::get(url).await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, body) = status_and_body("?EIO=3&transport=websocket").await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(5)));
    assert!(body["message"].as_str().is_some_and(|m| m.contains("EIO=4")), "{body}");
    let (status, body) = status_and_body("?EIO=4&transport=carrier-pigeon").await;
    assert_eq!(
        (status, body["code"].as_u64(), body["message"].as_str()),
        (400, Some(0), Some("Transport unknown"))
    );
    let (status, body) = status_and_body("?EIO=4&transport=websocket&sid=nope").await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(1)));
}

#[actix_web::test]
async fn the_server_pings_and_a_client_that_stops_answering_is_dropped() {
    let app = spawn_app_with(quick_pings).await;
    let mut sio = Sio::open(&app, "").await;
    // A ping arrives within the interval; answered, the session lives on.
    let ping = tokio::time::timeout(WAIT, sio.stream.next()).await.expect("a ping in time");
    assert!(matches!(ping, Some(Ok(Message::Text(ref t))) if t.as_str() == "2"), "{ping:?}");
    sio.send("3").await;
    // Then silence: gone after pingInterval + pingTimeout.
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match sio.stream.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a silent client is closed");
}

#[actix_web::test]
async fn only_the_default_namespace_exists() {
    let app = spawn_app().await;
    let mut sio = Sio::open(&app, "").await;
    sio.send("40/admin,").await;
    assert_eq!(sio.packet().await, "44/admin,{\"message\":\"Invalid namespace\"}");
    sio.send("40").await;
    let joined = sio.packet().await;
    assert!(joined.starts_with("40{\"sid\":"), "{joined}");
}

#[actix_web::test]
async fn the_token_is_checked_at_connect_from_the_payload_or_the_handshake() {
    let app = spawn_app_with(|s| s.auth.device_token = "dev-secret".into()).await;
    let (_, refused) = Sio::join(&app, json!({})).await;
    let body: Value = serde_json::from_str(refused.strip_prefix("44").expect("CONNECT_ERROR")).expect("json");
    assert_eq!(body["code"], "UNAUTHORIZED");
    let (_, wrong) = Sio::join(&app, json!({"token": "guess"})).await;
    assert!(wrong.starts_with("44"), "{wrong}");
    let (_, joined) = Sio::join(&app, json!({"token": "dev-secret"})).await;
    assert!(joined.starts_with("40{\"sid\""), "{joined}");
    let mut by_query = Sio::open(&app, "&token=dev-secret").await;
    by_query.send("40").await;
    assert!(by_query.packet().await.starts_with("40{"));
}

#[actix_web::test]
async fn connect_is_answered_like_ws_connect_and_replies_are_acks_or_events() {
    let app = spawn_app().await;
    let (mut sio, joined) = Sio::join(&app, json!({"clientId": "flutter-1"})).await;
    assert!(joined.starts_with("40{"), "{joined}");
    let connected = sio.event_named("connected").await;
    assert_eq!(connected["success"], true);
    sio.event_named("connection_status").await;

    // With an ack id, the direct reply is the acknowledgement.
    sio.send("427[\"device_online\",{\"device_id\":\"till-9\",\"priority\":50}]").await;
    let ack = sio.ack(7).await;
    assert_eq!(ack["type"], "device_online_ack");
    assert_eq!(ack["device_id"], "till-9");
    assert_eq!(ack["reply_to"], "7", "an ack id counts as the message's id");

    // Without one, it is an event.
    sio.send("42[\"heartbeat\",{\"device_id\":\"till-9\"}]").await;
    let beat = sio.event_named("heartbeat_ack").await;
    assert_eq!(beat["device_id"], "till-9");

    // Errors follow the same rule.
    sio.send("428[\"heartbeat\",{\"device_id\":\"someone-else\"}]").await;
    let error = sio.ack(8).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("INSUFFICIENT_PERMISSIONS"))
    );
}

#[actix_web::test]
async fn bad_events_get_invalid_payload_and_the_session_stays() {
    let app = spawn_app().await;
    let (mut sio, _) = Sio::join(&app, json!({})).await;
    sio.event_named("connection_status").await;
    sio.send("423[\"ping\",[1,2]]").await;
    assert_eq!(sio.ack(3).await["code"], "INVALID_PAYLOAD");
    // A binary event and its attachment: one refusal, for the event (its attachment is part of it).
    sio.send("451-[\"ping\",{\"_placeholder\":true,\"num\":0}]").await;
    tokio::time::timeout(WAIT, sio.stream.send(Message::binary(vec![1u8, 2, 3])))
        .await
        .expect("in time")
        .expect("send the attachment");
    let (name, body) = sio.event().await;
    assert_eq!((name.as_str(), body["code"].as_str()), ("error", Some("INVALID_PAYLOAD")));
    sio.send("429[\"ping\"]").await;
    let next = sio.packet().await;
    assert!(next.starts_with("439["), "the attachment is not refused again: {next}");
    sio.send("42[\"no_such_event\",{}]").await;
    assert_eq!(sio.event_named("error").await["code"], "UNKNOWN_EVENT");
    sio.send("424[\"ping\"]").await;
    assert_eq!(sio.ack(4).await["type"], "pong", "no argument is an empty object");
}

#[actix_web::test]
async fn socket_io_and_ws_clients_are_one_fleet() {
    let app = spawn_app().await;
    let station = app.create_station("pc1").await;
    assert!(station > 0);
    let mut plain = app.connect("ws-cashier").await;
    let (mut sio, _) = Sio::join(&app, json!({"clientId": "flutter-cashier"})).await;
    sio.event_named("connection_status").await;

    // A `/ws` write reaches the Socket.IO client as an event.
    plain
        .send(json!({"type": "device_update", "deviceId": "pc1", "data": {"notes": "from ws"}, "id": "w1"}))
        .await;
    plain.expect("ack").await;
    let update = sio.event_named("device_updated").await;
    assert_eq!(update["data"]["notes"], "from ws");

    // A Socket.IO write reaches the `/ws` client; the writer gets its ack, not the broadcast.
    sio.send("425[\"device_update\",{\"deviceId\":\"pc1\",\"data\":{\"notes\":\"from sio\"}}]").await;
    let ack = sio.ack(5).await;
    assert_eq!(ack["type"], "ack");
    let seq = ack["seq"].as_u64().expect("seq");
    let (seen, _) = plain.recv_until("device_updated").await;
    assert_eq!((seen["data"]["notes"].as_str(), seen["seq"].as_u64()), (Some("from sio"), Some(seq)));

    let health = app.health().await;
    assert_eq!(health["sessions_by_transport"], json!({"ws": 1, "socketio": 1}), "{health}");
}

#[actix_web::test]
async fn a_socket_io_client_resumes_from_last_seq_in_its_connect_payload() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let mut plain = app.connect("writer").await;
    for n in 0..3 {
        plain.send(json!({"type": "device_update", "deviceId": "pc1", "data": {"customerCount": n}, "id": format!("u{n}")})).await;
        plain.expect("ack").await;
    }
    // Change 1 made the station; the client saw it and resumes after it.
    let (mut sio, _) = Sio::join(&app, json!({"last_seq": 1})).await;
    let mut seqs = Vec::new();
    loop {
        let (name, body) = sio.event().await;
        if name == "connected" {
            break;
        }
        if name == "device_updated" {
            seqs.push(body["seq"].as_u64().expect("seq"));
        }
    }
    assert_eq!(seqs, vec![2, 3, 4], "every change after last_seq, once, in order, before connected");
}

/// A long-polling client: GETs and POSTs with the session's `sid`.
struct Polling {
    http: reqwest::Client,
    base: String,
    sid: String,
    /// Packets received and not yet looked at.
    unread: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Polling {
    async fn handshake(app: &TestApp) -> (Self, Value) {
        let base = app.url("/socket.io/?EIO=4&transport=polling");
        let http = reqwest::Client::builder().timeout(WAIT).build().expect("client");
        let body = http.get(&base).send().await.expect("handshake").text().await.expect("body");
        assert!(body.starts_with('0') && !body.contains('\u{1e}'), "the open packet alone: {body:?}");
        let open: Value = serde_json::from_str(&body[1..]).expect("open JSON");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        (Self { http, base, sid, unread: Default::default() }, open)
    }

    fn url(&self) -> String {
        format!("{}&sid={}", self.base, self.sid)
    }

    async fn post(&self, packets: &[&str]) {
        let body = packets.join("\u{1e}");
        let response = self.http.post(self.url()).body(body).send().await.expect("post");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "ok");
    }

    async fn get(&self) -> Vec<String> {
        let body = self.http.get(self.url()).send().await.expect("poll").text().await.expect("body");
        body.split('\u{1e}').map(str::to_owned).collect()
    }

    /// Polls until a packet starting with `prefix`, answering pings; later packets of the same
    /// body are kept for the next call.
    async fn until(&self, prefix: &str) -> String {
        for _ in 0..20 {
            loop {
                let next = self.unread.lock().expect("unread").pop_front();
                let Some(packet) = next else { break };
                if packet == "2" {
                    self.post(&["3"]).await;
                } else if packet.starts_with(prefix) {
                    return packet;
                }
            }
            let packets = self.get().await;
            self.unread.lock().expect("unread").extend(packets);
        }
        panic!("no packet starting with {prefix}");
    }
}

#[actix_web::test]
async fn a_binary_event_over_long_polling_is_refused_once_with_its_attachment() {
    let app = spawn_app().await;
    let (poll, _) = Polling::handshake(&app).await;
    poll.post(&["40"]).await;
    poll.until("40").await;
    poll.until("42[\"connection_status\"").await;
    // The attachment travels base64-encoded, as a `b` packet of its own.
    poll.post(&["451-[\"ping\",{\"_placeholder\":true,\"num\":0}]", "bAQID", "429[\"ping\"]"]).await;
    let mut heard = Vec::new();
    while !heard.iter().any(|p: &String| p.starts_with("439[")) {
        assert!(heard.len() < 100, "no answer to the ping: {heard:?}");
        let unread: Vec<String> = poll.unread.lock().expect("unread").drain(..).collect();
        heard.extend(unread);
        heard.extend(poll.get().await);
    }
    let errors: Vec<&String> = heard.iter().filter(|p| p.starts_with("42[\"error\"")).collect();
    assert_eq!(errors.len(), 1, "one refusal for the event and its attachment: {heard:?}");
    assert!(errors[0].contains("INVALID_PAYLOAD"), "{heard:?}");
}

#[actix_web::test]
async fn long_polling_carries_a_session_and_several_packets_share_a_body() {
    let app = spawn_app().await;
    let (poll, open) = Polling::handshake(&app).await;
    assert_eq!(open["upgrades"], json!(["websocket"]), "a polling session may upgrade");
    poll.post(&["40{\"clientId\":\"web-1\"}"]).await;
    let joined = poll.until("40").await;
    assert!(joined.starts_with("40{\"sid\""), "{joined}");
    poll.until("42[\"connected\"").await;
    // Two events in one body, answered in order.
    poll.post(&["421[\"ping\",{}]", "422[\"ping\",{}]"]).await;
    let first = poll.until("431[").await;
    assert!(first.contains("\"type\":\"pong\""), "{first}");
    poll.until("432[").await;
}

#[actix_web::test]
async fn a_polling_session_upgrades_to_websocket_with_probe_noop_and_upgrade() {
    let app = spawn_app().await;
    let (poll, _) = Polling::handshake(&app).await;
    poll.post(&["40"]).await;
    poll.until("40").await;
    poll.until("42[\"connection_status\"").await;
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket&sid={}", app.port, poll.sid);
    let (stream, _) = connect_async(url).await.expect("upgrade socket");
    let mut ws = Sio { stream, open: Value::Null };
    // A poll waits while the probe goes over the new socket; the probe ends it with a noop.
    let waiting = tokio::spawn({
        let (http, url) = (poll.http.clone(), poll.url());
        async move { http.get(url).send().await.expect("poll").text().await.expect("body") }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.send("2probe").await;
    assert_eq!(ws.packet().await, "3probe");
    let ended = tokio::time::timeout(WAIT, waiting).await.expect("the poll ends").expect("poll task");
    assert!(ended.split('\u{1e}').any(|p| p == "6"), "the pending poll ends with a noop: {ended:?}");
    ws.send("5").await;
    // Now the websocket carries the session.
    ws.send("427[\"ping\",{}]").await;
    assert_eq!(ws.ack(7).await["type"], "pong");
}

#[actix_web::test]
async fn a_poll_that_crosses_the_probes_answer_ends_with_a_noop() {
    let app = spawn_app().await;
    let (poll, _) = Polling::handshake(&app).await;
    poll.post(&["40"]).await;
    poll.until("40").await;
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket&sid={}", app.port, poll.sid);
    let (stream, _) = connect_async(url).await.expect("upgrade socket");
    let mut ws = Sio { stream, open: Value::Null };
    ws.send("2probe").await;
    assert_eq!(ws.packet().await, "3probe");
    // A client's poll sent before it heard `3probe` reaches the server after it: the client
    // is pausing polling, and the poll is answered with a noop, never refused (a refusal is
    // an `xhr poll error` that ends a connection still being made).
    let late = poll.http.get(poll.url()).send().await.expect("poll");
    assert_eq!(late.status(), 200);
    assert_eq!(late.text().await.expect("body"), "6");
    ws.send("5").await;
    // What the session wrote meanwhile is the websocket's.
    ws.send("427[\"ping\",{}]").await;
    assert_eq!(ws.ack(7).await["type"], "pong");
}

#[actix_web::test]
async fn long_polling_bounds_the_body_and_knows_its_sessions() {
    let app = spawn_app_with(|s| s.limits.max_message_bytes = 1024).await;
    let (poll, open) = Polling::handshake(&app).await;
    assert_eq!(open["maxPayload"], 1024);
    let big = format!("42[\"ping\",{{\"pad\":\"{}\"}}]", "x".repeat(2048));
    let response = poll.http.post(poll.url()).body(big).send().await.expect("post");
    assert_eq!(response.status(), 413);
    let unknown = poll.http.get(format!("{}&sid=nope", poll.base)).send().await.expect("poll");
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.json::<Value>().await.expect("json")["code"], 1);
}

/// A POST up to `maxPayload` is taken whole, well past the HTTP layer's default body limit
/// (256 KiB).
#[actix_web::test]
async fn long_polling_takes_a_body_up_to_max_payload() {
    let app = spawn_app().await;
    let (poll, open) = Polling::handshake(&app).await;
    assert_eq!(open["maxPayload"], 1_048_576);
    poll.post(&["40"]).await;
    poll.until("40").await;
    let pad = vec!["x".repeat(8 * 1024); 64];
    let big = format!("42[\"ping\",{}]", json!({"id": "big", "pad": pad}));
    poll.post(&[&big]).await;
    let pong = poll.until("42[\"pong\"").await;
    assert!(pong.contains("\"reply_to\":\"big\""), "{pong}");
}

/// `socketio.cors_origins`, the setting before `server.allowed_origins`, still allows its origins.
#[actix_web::test]
async fn cors_answers_only_the_configured_origins() {
    let app = spawn_app_with(|s| s.socketio.cors_origins = vec!["http://till.local".into()]).await;
    let url = app.url("/socket.io/?EIO=4&transport=polling");
    let http = reqwest::Client::new();
    let allowed = http.get(&url).header("Origin", "http://till.local").send().await.expect("get");
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("http://till.local")
    );
    let other = http.get(&url).header("Origin", "http://elsewhere.example").send().await.expect("get");
    assert_eq!(other.status(), 403);
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn after_an_upgrade_the_old_transport_and_a_second_socket_are_refused() {
    let app = spawn_app().await;
    let (poll, _) = Polling::handshake(&app).await;
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket&sid={}", app.port, poll.sid);
    let (stream, _) = connect_async(url.as_str()).await.expect("upgrade socket");
    let mut ws = Sio { stream, open: Value::Null };
    ws.send("2probe").await;
    assert_eq!(ws.packet().await, "3probe");
    ws.send("5").await;
    // A second websocket for the session opens and is closed at once.
    let (mut second, _) = connect_async(url.as_str()).await.expect("second socket");
    let closed = tokio::time::timeout(WAIT, second.next()).await.expect("closed in time");
    assert!(matches!(closed, Some(Ok(Message::Close(_))) | None), "{closed:?}");
    // The upgrade completes on the server's side shortly after `5`.
    let mut refused = false;
    for _ in 0..50 {
        let response = poll.http.get(poll.url()).send().await.expect("poll");
        if response.status() == 400 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "polling the upgraded session is refused");
}

#[actix_web::test]
async fn other_methods_are_refused_and_a_client_that_never_joins_is_closed() {
    let app = spawn_app_with(quick_pings).await;
    let put =
        reqwest::Client::new().put(app.url("/socket.io/?EIO=4&transport=polling")).send().await.expect("put");
    assert_eq!(put.status(), 400);
    let mut sio = Sio::open(&app, "").await;
    // It answers pings but never sends CONNECT: closed after `socketio.connect_timeout_s`.
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match sio.stream.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => sio.send("3").await,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a client that never joins is closed");
}

/// A Socket.IO master that stops answering Engine.IO's pings fell silent: it is replaced with
/// reason `timeout` (rule 4), as a `/ws` master whose heartbeats stop, and with no grace.
#[actix_web::test]
async fn a_silent_socket_io_master_is_replaced_for_timeout() {
    let app = spawn_app_with(|s| {
        quick_pings(s);
        // The heartbeat timeout comes later than Engine.IO's silence limit (0.5 s here).
        s.heartbeat.timeout_s = 30.0;
    })
    .await;
    let (mut sio, _) = Sio::join(&app, json!({"clientId": "flutter-master"})).await;
    sio.send("421[\"device_online\",{\"device_id\":\"flutter-master\",\"priority\":90}]").await;
    assert_eq!(sio.ack(1).await["role"], "master");
    let (mut till, online) = app.device("till", 10).await;
    assert_eq!(online["role"], "client");
    // Silence: the Socket.IO client stops answering pings (and stops reading).
    let elected = till.elected().await;
    assert_eq!(
        (elected["new_master_id"].as_str(), elected["election_reason"].as_str()),
        (Some("till"), Some("timeout")),
        "{elected}"
    );
    drop(sio);
}

/// `socketio.enabled = false`: `/socket.io/` answers 404 on either transport; `/ws` is served.
#[actix_web::test]
async fn socket_io_can_be_turned_off() {
    let app = spawn_app_with(|s| s.socketio.enabled = false).await;
    for query in ["?EIO=4&transport=polling", "?EIO=4&transport=websocket"] {
        let response = app.get(&format!("/socket.io/{query}")).await;
        assert_eq!(response.status(), 404, "{query}");
    }
    let upgrade = connect_async(format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket", app.port));
    assert!(tokio::time::timeout(WAIT, upgrade).await.expect("an answer in time").is_err(), "no upgrade");
    app.connect("till").await;
}

/// A Socket.IO client's own write answered from the log (the session read it there: its
/// subscription to broadcasts was held up) is answered as an acknowledgement, as it is live.
#[cfg(feature = "fault-injection")]
#[actix_web::test]
async fn an_answer_read_from_the_log_is_still_an_acknowledgement() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    app.state.sessions.faults.delay_subscriptions(Duration::from_millis(700));
    let (mut sio, _) = Sio::join(&app, json!({"clientId": "flutter"})).await;
    sio.send("427[\"device_update\",{\"deviceId\":\"pc1\",\"data\":{\"notes\":\"x\"}}]").await;
    let ack = sio.ack(7).await;
    assert_eq!(ack["type"], "ack", "{ack}");
}
