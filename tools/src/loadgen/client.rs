//! The load generator's WebSocket client: send JSON, receive JSON, with timeouts.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// One WebSocket connection.
pub struct Client {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Opens a WebSocket with Nagle's algorithm off, as a device sending small frames should: with
/// it on, a frame sent while the previous one waits for a (delayed) ACK is held back for tens
/// of milliseconds, and the latency measured is the kernel's, not the server's.
pub async fn open(url: &str) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, String> {
    let (stream, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async_with_config(url, None, true))
            .await
            .map_err(|_| format!("{url}: no answer in {WAIT:?}"))?
            .map_err(|e| format!("{url}: {e}"))?;
    Ok(stream)
}

impl Client {
    pub async fn connect(url: &str) -> Result<Self, String> {
        Ok(Self { stream: open(url).await? })
    }

    pub async fn send(&mut self, message: &Value) -> Result<(), String> {
        self.stream.send(Message::text(message.to_string())).await.map_err(|e| e.to_string())
    }

    /// The next text frame, parsed.
    pub async fn recv(&mut self) -> Result<Value, String> {
        self.recv_as().await
    }

    /// The next text frame, parsed as a `T` (a type naming only the fields it needs reads a
    /// large frame without building a tree of it).
    pub async fn recv_as<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .map_err(|_| format!("no frame in {WAIT:?}"))?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).map_err(|e| e.to_string());
                }
                Some(Ok(Message::Close(frame))) => return Err(format!("closed by the server: {frame:?}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection ended".to_owned()),
            }
        }
    }

    /// Reads until the frame answering `id`.
    pub async fn reply_to(&mut self, id: &str) -> Result<Value, String> {
        loop {
            let frame = self.recv().await?;
            if frame["reply_to"] == id {
                return Ok(frame);
            }
        }
    }
}
