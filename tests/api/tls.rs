//! TLS (docs/SECURITY.md, "TLS"): with `server.tls_cert` and `server.tls_key` the port serves
//! `https://` and `wss://` only, to a `/ws` client, python-socketio and Node's socket.io-client
//! that trust a certificate authority made in the test; SIGHUP reads the certificate again,
//! new connections get the new one, and a session already open goes on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};

use crate::helpers::WAIT;
use crate::process::{Launch, Server};
use crate::socketio_clients::{Client, Kind};

/// A certificate authority, and a certificate it issued for 127.0.0.1, as PEM files in `dir`
/// (`<name>-ca.pem`, `<name>-cert.pem`, `<name>-key.pem`).
struct Authority {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Authority {
    fn make(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("device-sync test CA {name}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA");
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("params")
            .signed_by(&leaf_key, &ca)
            .expect("certificate");
        let paths = Self {
            ca: dir.join(format!("{name}-ca.pem")),
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&paths.ca, ca.pem()).expect("write CA");
        std::fs::write(&paths.cert, leaf.pem()).expect("write certificate");
        std::fs::write(&paths.key, leaf_key.serialize_pem()).expect("write key");
        paths
    }

    /// A rustls client trusting this authority only.
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&self.ca).expect("read CA");
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

use rustls::pki_types::pem::PemObject;

type Wss = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A `wss://` session on `port` trusting `authority`, or the handshake's error.
async fn wss(port: u16, authority: &Authority) -> Result<Wss, tokio_tungstenite::tungstenite::Error> {
    let url = format!("wss://127.0.0.1:{port}/ws");
    let connector = Connector::Rustls(authority.client());
    let connected =
        tokio::time::timeout(WAIT, connect_async_tls_with_config(url, None, false, Some(connector)));
    connected.await.expect("in time").map(|(ws, _)| ws)
}

/// Sends `ping` with `id` and reads up to its `pong`.
async fn roundtrip(ws: &mut Wss, id: &str) {
    let ping = json!({"type": "ping", "id": id}).to_string();
    ws.send(Message::text(ping)).await.expect("send");
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("an answer in time") {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).expect("JSON");
                if value["type"] == "pong" && value["reply_to"] == id {
                    return;
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("the session ended: {other:?}"),
        }
    }
}

fn tls_launch(authority: &Authority) -> Launch {
    let env = [("TLS_CERT", &authority.cert), ("TLS_KEY", &authority.key)]
        .map(|(key, path)| (format!("DEVICE_SYNC__SERVER__{key}"), path.display().to_string()));
    Launch { env: env.to_vec(), ..Launch::default() }
}

#[actix_web::test]
async fn the_three_clients_speak_over_tls_and_plain_http_is_not_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = Authority::make(dir.path(), "first");
    let server = Server::start(tls_launch(&authority));
    let mut ws = wss(server.port, &authority).await.expect("a wss:// session");
    roundtrip(&mut ws, "over-tls").await;
    // The same port does not answer plain HTTP or ws://.
    let plain = tokio_tungstenite::connect_async(server.ws_url()).await;
    assert!(plain.is_err(), "ws:// on a TLS port");

    let url = format!("https://127.0.0.1:{}", server.port);
    for kind in [Kind::Python, Kind::Node] {
        for transport in ["websocket", "polling"] {
            let device = format!("tls-{transport}");
            let mut client = Client::start_at(kind, &url, transport, &device, Some(&authority.ca));
            client.connect(json!({"clientId": device})).await;
            let ack = client.call("device_online", json!({"device_id": device, "priority": 10})).await;
            assert_eq!(ack["type"], "device_online_ack", "{ack}");
            client.finish();
        }
    }
    ws.close(None).await.expect("close");
}

#[actix_web::test]
async fn sighup_reloads_the_certificate_and_keeps_the_sessions_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Authority::make(dir.path(), "first");
    let server = Server::start(tls_launch(&first));
    let mut open = wss(server.port, &first).await.expect("a session on the first certificate");
    roundtrip(&mut open, "before").await;

    // New files in place of the old, from another authority; then SIGHUP.
    let second = Authority::make(dir.path(), "second");
    std::fs::copy(&second.cert, &first.cert).expect("replace the certificate");
    std::fs::copy(&second.key, &first.key).expect("replace the key");
    // SAFETY: a plain syscall on our own child.
    unsafe {
        libc::kill(server.pid(), libc::SIGHUP);
    }
    let deadline = std::time::Instant::now() + WAIT;
    while !server.logs().iter().any(|l| l.contains("TLS certificate reloaded")) {
        assert!(std::time::Instant::now() < deadline, "no reload line: {:?}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    roundtrip(&mut open, "after").await;
    assert!(wss(server.port, &first).await.is_err(), "the old authority no longer matches");
    let mut fresh = wss(server.port, &second).await.expect("a session on the new certificate");
    roundtrip(&mut fresh, "fresh").await;
}
