//! Servers started for a benchmark: this binary on a fresh database, and the Node.js peer of
//! document 002's protocol when it is installed. Each gets its own temporary directory and port,
//! and is stopped with SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cpus::Placement;

/// How long a server may take to say it is listening.
const STARTUP: Duration = Duration::from_secs(30);

/// A running server.
pub struct Running {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    /// From spawn to the line announcing the listening socket.
    pub started_in: Duration,
    /// The binary and settings file it was started with, to start it again (`restart`).
    respawn: Option<(PathBuf, PathBuf)>,
    /// The cores it runs on.
    placement: Placement,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited in 10 s.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Stops the server as `stop` does and starts it again on the same port and database;
    /// returns how long it took to be listening again.
    pub fn restart(&mut self) -> Result<Duration, String> {
        let (server, config) = self.respawn.clone().ok_or("this server cannot be restarted")?;
        let stopping = Instant::now();
        self.terminate();
        let mut command = Command::new(server);
        command
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env_remove("RUST_LOG")
            .env("DEVICE_SYNC__SERVER__PORT", self.port.to_string());
        let mut fresh =
            spawn(command, self.dir.clone(), "listening on http://", Some(self.port), self.placement)?;
        // The new process is this server now; the old one, exited, goes with `fresh`.
        std::mem::swap(&mut self.child, &mut fresh.child);
        fresh.respawn = None;
        Ok(stopping.elapsed())
    }

    fn halt(&mut self) {
        self.terminate();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// SIGTERM, then SIGKILL after 10 s; waits for the exit.
    fn terminate(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.halt();
        }
    }
}

/// A fresh directory under the system's temporary directory.
fn fresh_dir(name: &str) -> Result<PathBuf, String> {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("device-sync-bench-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Spawns `command` and waits for a line of its output containing `marker`; without a
/// `known_port`, the port is read from the address after the marker.
fn spawn(
    mut command: Command,
    dir: PathBuf,
    marker: &str,
    known_port: Option<u16>,
    placement: Placement,
) -> Result<Running, String> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    placement.apply_to_server(&mut command);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("{command:?}: {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let streams: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ];
    for stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        // Read on to the end so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let port = loop {
        let left = STARTUP.saturating_sub(started.elapsed());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{command:?} did not say `{marker}` in {STARTUP:?}: {seen:?}"));
        };
        if let Some(at) = line.find(marker) {
            let port = known_port.or_else(|| {
                let digits: String = line[at + marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                digits.rsplit(':').next().and_then(|p| p.parse().ok())
            });
            break port.ok_or_else(|| format!("no port in {line:?}"))?;
        }
        seen.push(line);
    };
    let started_in = started.elapsed();
    Ok(Running { child, port, dir, started_in, respawn: None, placement })
}

/// Starts the `device-sync` binary next to this one on a fresh SQLite database (durability
/// `full`) with `extra` settings, on the cores `placement` gives a server.
pub fn device_sync(admin_token: &str, extra: &str, placement: Placement) -> Result<Running, String> {
    let dir = fresh_dir("device-sync")?;
    let config = format!(
        "[server]\nport = 0\ndata_dir = \"{data}\"\n[database]\nurl = \"sqlite://{data}/device-sync.db?mode=rwc\"\n\
         durability = \"full\"\n[auth]\nadmin_token = \"{admin_token}\"\n\
         [log]\nlevel = \"info,device_sync::actors=warn,device_sync::http=warn\"\n{extra}",
        data = dir.join("data").display(),
    );
    let path = dir.join("settings.toml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let server = exe.with_file_name("device-sync");
    if !server.exists() {
        return Err(format!("{} not found: build the server first (`make build`)", server.display()));
    }
    let mut command = Command::new(&server);
    command.arg("--config").arg(&path).arg("serve").env_remove("RUST_LOG");
    let mut running = spawn(command, dir, "listening on http://", None, placement)?;
    running.respawn = Some((server, path));
    Ok(running)
}

/// Whether the Node.js peer in `peer_dir` is installed (its `node_modules` present, `node` runs).
pub fn peer_installed(peer_dir: &Path) -> bool {
    peer_dir.join("node_modules").is_dir()
        && Command::new("node").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Starts the Node.js peer on a fresh database, on the cores `placement` gives a server.
pub fn node_peer(peer_dir: &Path, placement: Placement) -> Result<Running, String> {
    let dir = fresh_dir("node-peer")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut command = Command::new("node");
    command
        .arg("server.js")
        .current_dir(peer_dir)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("DB_PATH", dir.join("devices.db"));
    spawn(command, dir, "listening on", Some(port), placement)
}
