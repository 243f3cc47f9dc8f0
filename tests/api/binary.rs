//! The real binary: settings file, environment overrides, the `listening on` line with port 0,
//! a fresh database created on start, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::WAIT;

struct Running {
    child: Child,
    port: u16,
    listening_line: String,
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let config = format!(
        "[server]\nport = 0\ndata_dir = \"{}\"\n[database]\nurl = \"sqlite://{}/fresh.db?mode=rwc\"\n[auth]\nadmin_token = \"t\"\n",
        data.display(),
        data.display()
    );
    let path = dir.join("site.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Starts the binary and waits for its `listening on` line.
fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_device-sync"))
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no `listening on` line in time");
            }
        };
        if let Some(at) = line.find("listening on http://") {
            let rest = &line[at + "listening on http://".len()..];
            let address: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
            let port = address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the line");
            return Running { child, port, listening_line: line };
        }
    }
}

fn stop_with_sigterm(mut running: Running) -> std::process::ExitStatus {
    let status =
        Command::new("kill").args(["-TERM", &running.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = running.child.kill();
            let _ = running.child.wait();
            panic!("the server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn the_binary_creates_its_database_names_its_port_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    let running = start(&["--config", config.to_str().expect("path")], &[]);
    assert_ne!(running.port, 0, "the line names the real port");
    assert!(running.listening_line.contains(&format!("listening on http://127.0.0.1:{}", running.port)));
    let health: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{}/system/health", running.port))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["database"]["status"], "ok");
    assert!(dir.path().join("data/fresh.db").exists(), "the database file was created");
    let status = stop_with_sigterm(running);
    assert_eq!(status.code(), Some(0));
}

#[actix_web::test]
async fn config_may_come_before_or_after_serve_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    let config = config.to_str().expect("path");
    let running = start(&["serve", "--config", config], &[("DEVICE_SYNC__LOG__FORMAT", "json")]);
    let line: serde_json::Value = serde_json::from_str(&running.listening_line).expect("a JSON log line");
    assert!(line["message"].as_str().is_some_and(|m| m.starts_with("listening on http://")));
    assert_eq!(stop_with_sigterm(running).code(), Some(0));

    let running = start(&["--config", config, "serve"], &[("DEVICE_SYNC__AUTH__ADMIN_TOKEN", "from-env")]);
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/cashier/devices", running.port))
        .bearer_auth("from-env")
        .json(&serde_json::json!({"deviceId": "pc1"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201, "the environment's admin token is the one in force");
    assert_eq!(stop_with_sigterm(running).code(), Some(0));
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
