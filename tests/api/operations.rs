//! Running the server as a service: `check-config`, the server refusing a bad file with the
//! same message, `--version`, SIGHUP reloading the log level, and JSON logs one object a line.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{WAIT, WsClient};
use crate::process::{Launch, Server};

fn device_sync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_device-sync"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run device-sync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_prints_the_effective_settings_with_the_tokens_redacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("site.toml");
    std::fs::write(&file, "[server]\nport = 9123\n[auth]\nadmin_token = \"the-secret-token\"\n")
        .expect("write");
    let out = device_sync(&["check-config", "--config", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let settings: toml::Value = toml::from_str(&shown).expect("the settings as TOML");
    assert_eq!(settings["server"]["port"].as_integer(), Some(9123), "the file's value");
    assert_eq!(settings["limits"]["session_queue"].as_integer(), Some(1024), "a default");
    assert_eq!(settings["auth"]["admin_token"].as_str(), Some("<redacted>"));
    assert!(!shown.contains("the-secret-token"), "{shown}");
}

#[test]
fn a_bad_file_is_refused_by_check_config_and_by_the_server_with_the_same_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (contents, problem) in [
        ("[limits]\nsession_queue = 0\n", "limits.session_queue must be at least 1"),
        ("[server]\nprt = 8080\n", "unknown field `prt`"),
        ("[log]\nlevel = \"loud\"\n", "log.level must be"),
        ("[database]\nurl = \"mysql://shop\"\n", "database.url must be"),
        ("[server\n", "TOML parse error"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, contents).expect("write");
        let path = file.to_str().expect("path");
        let checked = device_sync(&["check-config", "--config", path]);
        assert_eq!(checked.status.code(), Some(2), "{contents}");
        let said = text(&checked.stderr);
        assert!(said.contains(problem), "check-config on {contents:?} says {said:?}");
        // The server says the same and does not start.
        let served = device_sync(&["serve", "--config", path]);
        assert_eq!(served.status.code(), Some(2), "{contents}");
        let logged = text(&served.stdout) + &text(&served.stderr);
        assert!(logged.contains(problem), "the server on {contents:?} logs {logged:?}");
        assert!(!logged.contains("listening on"), "{logged}");
    }
}

#[test]
fn the_version_is_the_packages() {
    let out = device_sync(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).trim(), format!("device-sync {}", env!("CARGO_PKG_VERSION")));
}

/// Waits until some line the server wrote satisfies `found`.
fn wait_for_line(server: &Server, what: &str, found: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(line) = server.logs().into_iter().find(|l| found(l)) {
            return line;
        }
        assert!(Instant::now() < deadline, "no {what} in time: {:#?}", server.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn sighup_reloads_the_log_level_and_json_logs_are_one_object_a_line_with_ids_as_fields() {
    let launch =
        Launch { settings: "[log]\nlevel = \"info\"\nformat = \"json\"\n".into(), ..Launch::default() };
    let mut server = Server::start(launch);
    let mut early = WsClient::open(&server.ws_url()).await;
    early.roundtrip("p0").await;

    // The same file at debug, and SIGHUP.
    let file = server.dir.path().join("site.toml");
    let settings = std::fs::read_to_string(&file).expect("read settings");
    std::fs::write(&file, settings.replace("level = \"info\"", "level = \"debug\"")).expect("write settings");
    // SAFETY: a plain syscall on our own child.
    unsafe {
        libc::kill(server.pid(), libc::SIGHUP);
    }
    wait_for_line(&server, "the reload", |l| l.contains("log level reloaded"));
    let mut till = WsClient::open(&server.ws_url()).await;
    till.send(json!({"type": "device_online", "device_id": "till-1", "priority": 50})).await;
    till.recv_until("device_online_ack").await;
    let registered = wait_for_line(&server, "a debug line", |l| l.contains("session registered"));
    assert_eq!(server.terminate().code(), Some(0), "SIGHUP did not stop it; SIGTERM did");

    let lines: Vec<Value> = server
        .logs()
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
        })
        .collect();
    assert!(lines.iter().all(Value::is_object));
    let debug_at = lines.iter().position(|l| l["level"] == "DEBUG").expect("a debug line");
    let reload_at =
        lines.iter().position(|l| l["message"] == "SIGHUP: log level reloaded").expect("the reload");
    assert!(reload_at < debug_at, "nothing at debug before the reload");
    // Lines about a session or a device carry the ids as fields.
    let registered: Value = serde_json::from_str(&registered).expect("JSON");
    assert!(registered["session"].as_str().is_some_and(|s| s.len() == 36), "{registered}");
    let about_till: Vec<&Value> = lines.iter().filter(|l| l.to_string().contains("till-1")).collect();
    assert!(!about_till.is_empty());
    for line in about_till {
        let message = line["message"].as_str().unwrap_or_default();
        assert!(!message.contains("till-1"), "the device id is a field, not in the message: {line}");
    }
}

#[actix_web::test]
async fn under_systemd_the_server_says_ready_once_it_listens_and_stopping_on_sigterm() {
    // What systemd does for `Type=notify`: a datagram socket named by NOTIFY_SOCKET.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("the notify socket");
    socket.set_read_timeout(Some(WAIT)).expect("a timeout");
    let launch = Launch {
        env: vec![("NOTIFY_SOCKET".into(), path.to_str().expect("path").into())],
        ..Launch::default()
    };
    let mut server = Server::start(launch);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notification in time");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "READY=1");
    // Ready means serving.
    let health = reqwest::get(server.url("/system/health")).await.expect("health");
    assert_eq!(health.status(), 200);
    assert_eq!(server.terminate().code(), Some(0));
    let n = socket.recv(&mut buf).expect("a notification in time");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "STOPPING=1");
}

/// docs/SECURITY.md, "Safe defaults": the package's settings listen on the LAN, so without a
/// device token the server refuses them (check-config says why, the server does not start);
/// the package's install step (`packaging/debian/fleet-token`, run by postinst) writes a fleet
/// token, after which they are valid; run again (an upgrade) it changes nothing.
#[test]
fn the_packages_settings_refuse_an_open_lan_listener_until_install_makes_a_fleet_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("settings.toml");
    let packaged = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/settings.toml");
    std::fs::copy(packaged, &file).expect("copy the package's settings");
    let path = file.to_str().expect("path");
    let checked = device_sync(&["check-config", "--config", path]);
    assert_eq!(checked.status.code(), Some(2));
    let said = text(&checked.stderr);
    assert!(said.contains("auth.device_token") && said.contains("allow_open_network"), "{said}");
    let served = device_sync(&["serve", "--config", path]);
    assert_eq!(served.status.code(), Some(2));
    assert!(!text(&served.stdout).contains("listening on"));

    let install = || {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/debian/fleet-token"))
            .arg(&file)
            .output()
            .expect("run fleet-token");
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::read_to_string(&file).expect("read")
    };
    let installed = install();
    let token = installed
        .lines()
        .find_map(|l| l.strip_prefix("device_token = \""))
        .and_then(|rest| rest.split('"').next())
        .expect("a device_token line");
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert_eq!(install(), installed, "an upgrade keeps the token");
    let checked = device_sync(&["check-config", "--config", path]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stderr));
    assert!(!text(&checked.stdout).contains(token), "the token is redacted");
}

/// No secret in any log line or in check-config's output: the admin token, the fleet token, a
/// device's own token and the database's password, through a server's whole life (a session
/// with each token, a bad token, an issued and a revoked token, a stop) and a failed start.
#[actix_web::test]
async fn no_secret_reaches_a_log_line_or_check_config() {
    let fleet = "fleet-secret-0123456789";
    let launch = Launch {
        settings: format!("device_token = \"{fleet}\"\n[log]\nlevel = \"debug\"\n"),
        ..Launch::default()
    };
    let mut server = Server::start(launch);
    let http = reqwest::Client::new();
    let base = server.url("");
    let own = crate::device_tokens::issue(&http, base.trim_end_matches('/'), "till-1").await;
    for token in [fleet, own.as_str(), crate::helpers::ADMIN_TOKEN] {
        let mut ws = WsClient::open(&format!("{}?token={token}", server.ws_url())).await;
        ws.roundtrip("p").await;
        ws.close().await;
    }
    let wrong = tokio_tungstenite::connect_async(format!(
        "{}?token=dst_0011223344556677_{}",
        server.ws_url(),
        "ab".repeat(32)
    ));
    assert!(wrong.await.is_err());
    let revoked =
        http.delete(server.url("/device/till-1/tokens")).bearer_auth(crate::helpers::ADMIN_TOKEN).send();
    assert_eq!(revoked.await.expect("revoke").status(), 200);
    assert_eq!(server.terminate().code(), Some(0));
    let secret = &own[own.len() - 64..];
    let mut logged = server.logs().join("\n");

    let file = server.dir.path().join("site.toml");
    let config = std::fs::read_to_string(&file).expect("read settings");
    let checked = device_sync(&["check-config", "--config", file.to_str().expect("path")]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stderr));
    logged += &text(&checked.stdout);
    // A database that cannot be reached, its password in the URL: the failed start's lines.
    let bad = dir_with(&config, "postgres://shop:hunter2-password@127.0.0.1:9/shop");
    let bad_file = bad.path().join("site.toml");
    let failed = device_sync(&["serve", "--config", bad_file.to_str().expect("path")]);
    assert_ne!(failed.status.code(), Some(0));
    logged += &(text(&failed.stdout) + &text(&failed.stderr));
    let shown = device_sync(&["check-config", "--config", bad_file.to_str().expect("path")]);
    logged += &text(&shown.stdout);
    assert!(text(&shown.stdout).contains("shop:<redacted>@127.0.0.1"), "{}", text(&shown.stdout));
    for secret in [fleet, crate::helpers::ADMIN_TOKEN, secret, "hunter2-password"] {
        assert!(!logged.contains(secret), "a secret in the logs: {secret}");
    }
}

/// A directory with `config`'s settings but the database at `url`.
fn dir_with(config: &str, url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut lines: Vec<String> = Vec::new();
    for line in config.lines() {
        if line.starts_with("url = ") {
            lines.push(format!("url = \"{url}\""));
        } else {
            lines.push(line.to_owned());
        }
    }
    std::fs::write(dir.path().join("site.toml"), lines.join("\n") + "\n").expect("write");
    dir
}
