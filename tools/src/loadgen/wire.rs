//! The two ways a load client can speak to device-sync: `/ws` (one JSON object a frame) and
//! Socket.IO over Engine.IO's websocket transport (`42["T",{…}]`), so that one load runs on
//! either and the figures compare.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Which protocol the load's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// `/ws`.
    Ws,
    /// `/socket.io/` on the websocket transport.
    Socketio,
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Socketio => "socketio",
        }
    }

    /// Opens a session on `server` (`http://host:port`) and says a first word: a `ping` on
    /// `/ws`, the namespace CONNECT on Socket.IO (answered before this returns).
    pub async fn open(self, server: &str) -> Result<Socket, String> {
        let base = server.replacen("http", "ws", 1);
        match self {
            Self::Ws => {
                let mut ws = super::client::open(&format!("{base}/ws")).await?;
                ws.send(Message::text(r#"{"type":"ping"}"#)).await.map_err(|e| e.to_string())?;
                Ok(ws)
            }
            Self::Socketio => {
                let mut ws =
                    super::client::open(&format!("{base}/socket.io/?EIO=4&transport=websocket")).await?;
                ws.send(Message::text("40")).await.map_err(|e| e.to_string())?;
                loop {
                    let frame = tokio::time::timeout(super::client::WAIT, ws.next())
                        .await
                        .map_err(|_| "no Socket.IO CONNECT answer in time".to_owned())?;
                    match frame {
                        Some(Ok(Message::Text(text))) if text.starts_with("40") => return Ok(ws),
                        Some(Ok(Message::Text(text))) if text.starts_with("44") => {
                            return Err(format!("Socket.IO CONNECT refused: {text}"));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("closed before the Socket.IO CONNECT answer".to_owned()),
                    }
                }
            }
        }
    }

    /// A `/ws` message of type `kind` (its JSON text) as this transport sends it.
    pub fn encode(self, kind: &str, json: &str) -> String {
        match self {
            Self::Ws => json.to_owned(),
            Self::Socketio => format!("42[\"{kind}\",{json}]"),
        }
    }

    /// The JSON object a received text frame carries, if it carries a server message.
    pub fn decode(self, text: &str) -> Option<&str> {
        match self {
            Self::Ws => Some(text),
            Self::Socketio => {
                let args = text.strip_prefix("42[\"").or_else(|| text.strip_prefix("43"))?;
                let start = args.find('{')?;
                args[start..].strip_suffix(']')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_io_events_carry_the_ws_object() {
        let sio = Transport::Socketio;
        assert_eq!(sio.encode("ping", r#"{"type":"ping"}"#), r#"42["ping",{"type":"ping"}]"#);
        assert_eq!(
            sio.decode(r#"42["device_updated",{"type":"device_updated","seq":3}]"#),
            Some(r#"{"type":"device_updated","seq":3}"#)
        );
        assert_eq!(sio.decode(r#"437[{"type":"ack","seq":3}]"#), Some(r#"{"type":"ack","seq":3}"#));
        assert_eq!(sio.decode("2"), None);
        assert_eq!(Transport::Ws.decode("{}"), Some("{}"));
    }
}
