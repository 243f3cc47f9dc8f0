//! One simulated client's connection, on `/ws` or Socket.IO: opened with the resume fields
//! (`clientId`, `last_seq`, `epoch`), messages sent by type, server messages read as objects.
//! Engine.IO's pings are answered here.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::loadgen::client;
use crate::loadgen::wire::{Socket, Transport};

/// Where to resume from.
pub struct Resume {
    pub client_id: String,
    pub last_seq: Option<u64>,
    pub epoch: Option<String>,
}

pub struct Session {
    transport: Transport,
    socket: Socket,
}

impl Session {
    /// Opens a session and identifies the client (`connect` on `/ws`, the namespace CONNECT's
    /// payload on Socket.IO); the server answers with the catch-up, then `connected`.
    pub async fn open(
        transport: Transport,
        server: &str,
        token: Option<&str>,
        resume: &Resume,
    ) -> Result<Session, String> {
        let base = server.replacen("http", "ws", 1);
        let mut fields = json!({"clientId": resume.client_id});
        if let Some(seq) = resume.last_seq {
            fields["last_seq"] = json!(seq);
        }
        if let Some(epoch) = &resume.epoch {
            fields["epoch"] = json!(epoch);
        }
        match transport {
            Transport::Ws => {
                let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
                let mut socket = client::open(&format!("{base}/ws{query}")).await?;
                fields["type"] = json!("connect");
                socket.send(Message::text(fields.to_string())).await.map_err(|e| e.to_string())?;
                Ok(Session { transport, socket })
            }
            Transport::Socketio => {
                let mut socket =
                    client::open(&format!("{base}/socket.io/?EIO=4&transport=websocket")).await?;
                if let Some(token) = token {
                    fields["token"] = json!(token);
                }
                socket.send(Message::text(format!("40{fields}"))).await.map_err(|e| e.to_string())?;
                Ok(Session { transport, socket })
            }
        }
    }

    /// Sends the message `{"type": kind, …fields}`.
    pub async fn send(&mut self, kind: &str, mut message: Value) -> Result<(), String> {
        message["type"] = json!(kind);
        let text = self.transport.encode(kind, &message.to_string());
        self.socket.send(Message::text(text)).await.map_err(|e| e.to_string())
    }

    /// The next server message; `Err` when the connection ended.
    pub async fn recv(&mut self) -> Result<Value, String> {
        loop {
            let frame = match self.socket.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the connection ended".to_owned()),
            };
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(frame) => return Err(format!("closed by the server: {frame:?}")),
                _ => continue,
            };
            if self.transport == Transport::Socketio {
                match text.as_str() {
                    // Engine.IO ping: answer at once.
                    "2" => {
                        self.socket.send(Message::text("3")).await.map_err(|e| e.to_string())?;
                        continue;
                    }
                    t if t.starts_with("44") => return Err(format!("Socket.IO CONNECT refused: {t}")),
                    t if t.starts_with("41") => return Err("disconnected by the server".to_owned()),
                    _ => {}
                }
            }
            let Some(json) = self.transport.decode(&text) else { continue };
            if let Ok(value) = serde_json::from_str::<Value>(json) {
                return Ok(value);
            }
        }
    }
}
