//! `device-sync client`: a minimal terminal WebSocket client for trying the server by hand.
//! Each line typed is sent as one text frame; each frame received is printed on its own line.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Connects to `url` (with `token` as a bearer token, if given) and relays stdin and stdout
/// until either side closes.
pub async fn run(url: &str, token: Option<&str>) -> Result<(), String> {
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
