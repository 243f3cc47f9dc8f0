//! RFC 6455 framing violations fail the connection with close code 1002 (§5.2, §5.4, §5.5,
//! §7.4.1). The frames are written byte by byte over a raw TCP socket after a hand-made upgrade,
//! since a WebSocket library will not send them.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, WAIT, spawn_app};

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const PING: u8 = 0x9;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A raw WebSocket connection, past the upgrade.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(app: &TestApp) -> Self {
        Self::open_at(app, "/ws").await
    }

    async fn open_at(app: &TestApp, path: &str) -> Self {
        let mut tcp = TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            app.port
        );
        tcp.write_all(request.as_bytes()).await.expect("write the upgrade");
        let mut raw = Self { tcp, buf: Vec::new() };
        let end = loop {
            if let Some(at) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            raw.read_more().await.expect("the upgrade answer");
        };
        let head = String::from_utf8_lossy(&raw.buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "upgraded: {head}");
        raw.buf.drain(..end);
        raw
    }

    /// Reads more bytes; `None` when the connection ended.
    async fn read_more(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk)).await.expect("bytes in time").ok()?;
        if n == 0 {
            return None;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Some(())
    }

    /// Writes a frame with this first byte (FIN, RSV and opcode), masked unless `masked` is false.
    async fn frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mut frame = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => frame.push(mask_bit | n as u8),
            n => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        if masked {
            frame.extend_from_slice(&MASK);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        self.tcp.write_all(&frame).await.expect("write a frame");
    }

    /// The next server frame (opcode, payload), or `None` when the connection ended.
    async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let (opcode, short) = (self.buf[0] & 0x0f, usize::from(self.buf[1] & 0x7f));
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                let (header, len) = match short {
                    126 if self.buf.len() >= 4 => {
                        (4, usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])))
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut n = [0u8; 8];
                        n.copy_from_slice(&self.buf[2..10]);
                        (10, usize::try_from(u64::from_be_bytes(n)).expect("a length"))
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (2, n),
                };
                if header != usize::MAX && self.buf.len() >= header + len {
                    let payload = self.buf[header..header + len].to_vec();
                    self.buf.drain(..header + len);
                    return Some((opcode, payload));
                }
            }
            self.read_more().await?;
        }
    }

    /// Reads until the server's close frame; returns its code.
    async fn close_code(&mut self) -> u16 {
        loop {
            match self.next_frame().await {
                Some((CLOSE, payload)) => {
                    assert!(payload.len() >= 2, "the close frame carries a code");
                    return u16::from_be_bytes([payload[0], payload[1]]);
                }
                Some(_) => continue,
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Sends a `ping` event and reads up to its `pong`: the session is usable.
    async fn usable(&mut self) {
        self.frame(FIN | TEXT, br#"{"type":"ping","id":"p"}"#, true).await;
        loop {
            match self.next_frame().await {
                Some((TEXT, payload)) if String::from_utf8_lossy(&payload).contains("\"pong\"") => return,
                Some((CLOSE, _)) | None => panic!("closed instead of a pong"),
                Some(_) => continue,
            }
        }
    }
}

async fn closes_with_1002(what: &str, send: impl AsyncFnOnce(&mut Raw)) {
    let app = spawn_app().await;
    let mut raw = Raw::open(&app).await;
    raw.usable().await;
    send(&mut raw).await;
    assert_eq!(raw.close_code().await, 1002, "{what} fails the connection with 1002");
    // Failing the connection needs no close handshake: the server ends it, unanswered.
    assert!(raw.next_frame().await.is_none(), "after {what}, nothing follows the close");
    app.wait_for_sessions(0).await;
}

#[actix_web::test]
async fn a_well_formed_masked_frame_is_accepted() {
    let app = spawn_app().await;
    let mut raw = Raw::open(&app).await;
    raw.usable().await;
    // A fragmented text message with a ping between its fragments is legal (§5.4).
    raw.frame(TEXT, br#"{"type":"ping","#, true).await;
    raw.frame(FIN | PING, b"x", true).await;
    raw.frame(FIN | CONTINUATION, br#""id":"f"}"#, true).await;
    loop {
        match raw.next_frame().await {
            Some((TEXT, payload)) if String::from_utf8_lossy(&payload).contains("\"reply_to\":\"f\"") => {
                break;
            }
            Some((CLOSE, payload)) => panic!("closed: {payload:?}"),
            None => panic!("connection ended"),
            Some(_) => continue,
        }
    }
}

#[actix_web::test]
async fn a_frame_with_a_reserved_bit_set_fails_the_connection() {
    for (bit, name) in [(0x40, "RSV1"), (0x20, "RSV2"), (0x10, "RSV3")] {
        closes_with_1002(name, async |raw: &mut Raw| {
            raw.frame(FIN | bit | TEXT, br#"{"type":"ping"}"#, true).await;
        })
        .await;
    }
}

#[actix_web::test]
async fn reserved_opcodes_fail_the_connection() {
    for opcode in [0x3, 0x7, 0xb, 0xf] {
        closes_with_1002(&format!("opcode {opcode:#x}"), async |raw: &mut Raw| {
            raw.frame(FIN | opcode, b"x", true).await;
        })
        .await;
    }
}

#[actix_web::test]
async fn a_fragmented_or_oversized_control_frame_fails_the_connection() {
    closes_with_1002("a ping without FIN", async |raw: &mut Raw| raw.frame(PING, b"x", true).await).await;
    closes_with_1002("a ping of 126 bytes", async |raw: &mut Raw| {
        raw.frame(FIN | PING, &[b'x'; 126], true).await;
    })
    .await;
}

#[actix_web::test]
async fn an_unmasked_client_frame_fails_the_connection() {
    closes_with_1002("an unmasked frame", async |raw: &mut Raw| {
        raw.frame(FIN | TEXT, br#"{"type":"ping"}"#, false).await;
    })
    .await;
}

#[actix_web::test]
async fn bad_continuations_fail_the_connection() {
    closes_with_1002("a continuation with nothing to continue", async |raw: &mut Raw| {
        raw.frame(FIN | CONTINUATION, b"x", true).await;
    })
    .await;
    closes_with_1002("a new message inside a fragmented one", async |raw: &mut Raw| {
        raw.frame(TEXT, b"{\"type\":", true).await;
        raw.frame(FIN | TEXT, br#"{"type":"ping"}"#, true).await;
    })
    .await;
}

/// A client's close is answered, and the server then ends the connection itself (RFC 6455
/// §5.5.1, §7.1.1), for a bare connection, a cashier, a registered device and a Socket.IO
/// session. The server's HTTP layer would otherwise wait `server.linger_s` for the client to
/// hang up first, while the client waits for the server: set here beyond the test's wait.
#[actix_web::test]
async fn a_clients_close_is_answered_and_the_server_ends_the_connection() {
    let app = crate::helpers::spawn_app_with(|s| s.server.linger_s = 600.0).await;
    let greetings: [(&str, &str, &[u8]); 4] = [
        ("a bare connection", "/ws", b""),
        ("a cashier", "/ws", br#"{"type":"connect","clientId":"till-1"}"#),
        ("a device", "/ws", br#"{"type":"device_online","device_id":"tab-1","priority":10}"#),
        ("a Socket.IO session", "/socket.io/?EIO=4&transport=websocket", b"40"),
    ];
    for (who, path, greeting) in greetings {
        let mut raw = Raw::open_at(&app, path).await;
        if !greeting.is_empty() {
            raw.frame(FIN | TEXT, greeting, true).await;
            // Its answer arrives before anything else is done.
            while !matches!(raw.next_frame().await, Some((TEXT, _))) {}
        }
        raw.frame(FIN | CLOSE, &1000u16.to_be_bytes(), true).await;
        assert_eq!(raw.close_code().await, 1000, "{who}: the close is answered with the client's code");
        assert!(raw.next_frame().await.is_none(), "{who}: the server ends the connection after the close");
    }
    app.wait_for_sessions(0).await;
}
