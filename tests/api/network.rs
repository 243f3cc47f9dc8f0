//! Clients that vanish without a TCP close. A proxy between the client and the server can
//! black-hole the connection (nothing more is relayed either way, nothing is closed), as when a
//! tablet's Wi-Fi dies. The server must notice by itself, and a session whose socket no longer
//! drains must keep running its timers (it is not "paralysed" by the blocked writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{TestApp, TestDevice, WsClient, spawn_app_with};

/// A TCP proxy to the server that can black-hole every connection through it.
struct Proxy {
    port: u16,
    blackhole: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let blackhole = Arc::new(AtomicBool::new(false));
        let hole = Arc::clone(&blackhole);
        actix_web::rt::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                actix_web::rt::spawn(relay(client_read, server_write, Arc::clone(&hole)));
                actix_web::rt::spawn(relay(server_read, client_write, Arc::clone(&hole)));
            }
        });
        Self { port, blackhole }
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// From now on nothing passes, and nothing is closed.
    fn cut(&self) {
        self.blackhole.store(true, Ordering::SeqCst);
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hole: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if hole.load(Ordering::SeqCst) {
            // Hold both sockets open, read nothing, write nothing.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        let read = tokio::time::timeout(Duration::from_millis(50), from.read(&mut buf)).await;
        let n = match read {
            Err(_) => continue,
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        if hole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[actix_web::test]
async fn a_device_that_vanishes_is_detected_by_heartbeat_and_replaced_as_master() {
    let app = spawn_app_with(|s| {
        s.heartbeat.interval_s = 0.2;
        s.heartbeat.timeout_s = 1.0;
        s.limits.idle_timeout_s = 30.0;
    })
    .await;
    let proxy = Proxy::start(app.port).await;
    let mut gone = TestDevice::from_ws(WsClient::open(&proxy.ws_url()).await, "office");
    gone.send(json!({"type": "device_online", "device_id": "office", "priority": 100})).await;
    let (ack, _) = gone.recv_until("device_online_ack").await;
    assert_eq!(ack["role"], "master");
    let (mut till, _) = app.device("till-1", 20).await;
    app.wait_for_sessions(2).await;

    let cut = Instant::now();
    proxy.cut();
    let elected = till.elected().await;
    assert_eq!(elected["election_reason"], "timeout");
    assert_eq!(elected["new_master_id"], "till-1");
    eprintln!("vanished master replaced after {:?}", cut.elapsed());
    app.wait_for_sessions(1).await;
    assert_eq!(app.get_json("/device/roles/office").await["is_active"], false);
}

#[actix_web::test]
async fn a_session_whose_socket_stopped_draining_still_runs_its_timers() {
    // A large queue, so that only the session's own idle timer can close it here, and a kernel
    // timeout far away, so that the kernel does not close it first.
    let app = spawn_app_with(|s| {
        s.heartbeat.interval_s = 0.2;
        s.heartbeat.timeout_s = 60.0;
        s.limits.idle_timeout_s = 3.0;
        s.limits.session_queue = 1_000_000;
        s.limits.session_queue_bytes = usize::MAX / 2;
        s.limits.messages_per_second = 100_000;
    })
    .await;
    let proxy = Proxy::start(app.port).await;
    let mut stuck = WsClient::open(&proxy.ws_url()).await;
    stuck.send(json!({"type": "connect", "clientId": "stuck"})).await;
    stuck.expect("connected").await;
    let mut reader = app.connect("reader").await;
    app.wait_for_sessions(2).await;
    proxy.cut();

    // Flood with 1 MB broadcasts: the stuck session's socket buffers (a few MB each way on
    // loopback) fill up long before its idle timeout, and its writes block.
    let flooding = Instant::now();
    let chunk = "n".repeat(65_000);
    let document = serde_json::Value::Array(vec![json!(chunk); 15]).to_string();
    let mut sent = 0;
    while app.health().await["sessions"] != 1 {
        assert!(
            flooding.elapsed() < Duration::from_secs(20),
            "the blocked session never noticed its client was gone"
        );
        flood(&app, &document).await;
        sent += 1;
        let frame = reader.expect("categories_updated").await;
        assert_eq!(frame["data"][0].as_str().map(str::len), Some(65_000), "the others still get everything");
    }
    eprintln!(
        "a session with a blocked socket closed itself after {:?} ({sent} broadcasts of 1 MB)",
        flooding.elapsed()
    );
}

async fn flood(app: &TestApp, document: &str) {
    let response = app
        .admin(reqwest::Method::PUT, "/cashier/categories")
        .header("content-type", "application/json")
        .body(document.to_owned())
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
}
