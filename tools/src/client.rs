//! `device-sync client`: a minimal terminal WebSocket client for trying the server by hand.
//! Each line typed is sent as one text frame; each frame received is printed on its own line.
//! As a device (`--device ID`), it registers on connect and confirms every role change that
//! makes it master, as a real device does.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Who the client is.
pub struct Identity {
    /// Register as this device and confirm role changes.
    pub device: Option<String>,
    pub priority: Option<u8>,
}

/// Connects to `url` (with `token` as a bearer token, if given) and relays stdin and stdout
/// until either side closes.
pub async fn run(url: &str, token: Option<&str>, identity: Identity) -> Result<(), String> {
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
    if let Some(device) = &identity.device {
        let mut online = serde_json::json!({"type": "device_online", "device_id": device});
        if let Some(priority) = identity.priority {
            online["priority"] = priority.into();
        }
        outgoing.send(Message::text(online.to_string())).await.map_err(|e| e.to_string())?;
    }
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => outgoing.send(Message::text(line)).await.map_err(|e| e.to_string())?,
                Ok(None) | Err(_) => {
                    let _ = outgoing.send(Message::Close(None)).await;
                    return Ok(());
                }
            },
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(ack) = confirmation(&text, identity.device.as_deref()) {
                        outgoing.send(Message::text(ack)).await.map_err(|e| e.to_string())?;
                    }
                    stdout.write_all(text.as_bytes()).await.map_err(|e| e.to_string())?;
                    stdout.write_all(b"\n").await.map_err(|e| e.to_string())?;
                    stdout.flush().await.map_err(|e| e.to_string())?;
                }
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
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    let asked =
        value["type"] == "role_change" && value["device_id"] == device && value["new_role"] == "master";
    asked.then(|| {
        serde_json::json!({"type": "role_change_ack", "device_id": device, "new_role": "master",
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
}
