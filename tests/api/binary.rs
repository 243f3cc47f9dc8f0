//! The real binary: settings file, environment overrides, the `listening on` line with port 0,
//! a fresh database created on start, and a clean exit on SIGTERM.

use std::process::{Command, Stdio};

use crate::process::{Launch, Server};

#[actix_web::test]
async fn the_binary_creates_its_database_names_its_port_and_exits_0_on_sigterm() {
    let mut server = Server::start(Launch::default());
    assert_ne!(server.port, 0, "the line names the real port");
    let line = server.logs().into_iter().find(|l| l.contains("listening on")).expect("the line");
    assert!(line.contains(&format!("listening on http://127.0.0.1:{}", server.port)), "{line}");
    let health: serde_json::Value =
        reqwest::get(server.url("/system/health")).await.expect("health").json().await.expect("json");
    assert_eq!(health["database"]["status"], "ok");
    if crate::helpers::postgres_server().is_none() {
        // On Postgres the database is the test's own; the healthy answer shows it was migrated.
        assert!(server.dir.path().join("device-sync.db").exists(), "the database file was created");
    }
    assert_eq!(server.terminate().code(), Some(0));
}

#[actix_web::test]
async fn config_may_come_before_or_after_serve_and_the_environment_overrides_it() {
    let launch = Launch {
        args: vec!["serve".into()],
        env: vec![("DEVICE_SYNC__LOG__FORMAT".into(), "json".into())],
        ..Launch::default()
    };
    let mut server = Server::start(launch);
    let line = server.logs().into_iter().find(|l| l.contains("listening on")).expect("the line");
    let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert!(line["message"].as_str().is_some_and(|m| m.starts_with("listening on http://")));
    assert_eq!(server.terminate().code(), Some(0));

    let launch = Launch {
        env: vec![("DEVICE_SYNC__AUTH__ADMIN_TOKEN".into(), "from-env".into())],
        ..Launch::default()
    };
    let mut server = Server::start(launch);
    let response = reqwest::Client::new()
        .post(server.url("/cashier/devices"))
        .bearer_auth("from-env")
        .json(&serde_json::json!({"deviceId": "pc1"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201, "the environment's admin token is the one in force");
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn a_missing_settings_file_is_refused() {
    let status = Command::new(env!("CARGO_BIN_EXE_device-sync"))
        .args(["--config", "/nonexistent/site.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(2));
}

#[actix_web::test]
async fn sigterm_right_after_the_listening_line_still_stops_cleanly() {
    // The signal is watched before the line is written: a supervisor that stops the server as
    // soon as it is up gets a clean exit, not a kill.
    for _ in 0..10 {
        let mut server = Server::start(Launch::default());
        assert_eq!(server.terminate().code(), Some(0));
    }
}
