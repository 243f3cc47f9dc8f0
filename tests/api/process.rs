//! The real binary as a child process: started on a settings file in a temporary directory,
//! its log lines collected, stopped with SIGTERM or killed with SIGKILL, restarted on the same
//! database. Optionally with a file-size limit, so its database can fill up like a full disk.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::helpers::{ADMIN_TOKEN, WAIT};

/// A running `device-sync` process.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: Arc<TempDir>,
    lines: Arc<Mutex<Vec<String>>>,
}

/// How to start it.
#[derive(Default, Clone)]
pub struct Launch {
    /// Settings appended to the test settings file (TOML).
    pub settings: String,
    pub env: Vec<(String, String)>,
    /// A file-size limit (`RLIMIT_FSIZE`, soft) in bytes; writes past it fail as on a full disk.
    pub file_size_limit: Option<u64>,
    /// Extra arguments before `--config`.
    pub args: Vec<String>,
    /// The database, when not the directory's own (nodes sharing one Postgres database).
    pub database_url: Option<String>,
}

impl Server {
    /// Starts the binary in a new temporary directory.
    pub fn start(launch: Launch) -> Self {
        Self::start_in(Arc::new(tempfile::tempdir().expect("temp dir")), launch)
    }

    /// Starts the binary on the database in `dir`, and waits for its `listening on` line.
    pub fn start_in(dir: Arc<TempDir>, launch: Launch) -> Self {
        let data = dir.path().join("data");
        let config = format!(
            "[server]\nport = 0\ndata_dir = \"{}\"\n[database]\nurl = \"{}\"\n\
             [auth]\nadmin_token = \"{ADMIN_TOKEN}\"\n{}",
            data.display(),
            launch.database_url.clone().unwrap_or_else(|| crate::helpers::database_url(&dir)),
            launch.settings,
        );
        // On Postgres a run killed holds the election lease this long (unless the test says).
        let config = match launch.settings.contains("[cluster]") {
            true => config,
            false => format!("{config}\n[cluster]\nlease_ttl_s = 2\n"),
        };
        let path = dir.path().join("site.toml");
        std::fs::write(&path, config).expect("write settings");
        let mut command = Command::new(env!("CARGO_BIN_EXE_device-sync"));
        command
            .args(&launch.args)
            .arg("--config")
            .arg(&path)
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(limit) = launch.file_size_limit {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let rl = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let (lines, tx) = (Arc::clone(&lines), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("lines").push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + WAIT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no `listening on` line in time: {:?}", lines.lock().expect("lines"));
            };
            let after = ["listening on http://", "listening on https://"]
                .iter()
                .find_map(|said| line.find(said).map(|at| at + said.len()));
            if let Some(at) = after {
                let address: String =
                    line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                break address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
            }
        };
        Self { child, port, dir, lines }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// Every line the process has written so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Kills it with SIGKILL: no shutdown, as in a crash.
    pub fn kill(&mut self) {
        // SAFETY: a plain syscall on our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// Sends it a signal (SIGSTOP to pause it, SIGCONT to let it go on).
    pub fn signal(&self, signal: i32) {
        // SAFETY: a plain syscall on our own child.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Sends SIGTERM and waits for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: a plain syscall on our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        // It commits every write it accepted before it exits: a deep queue of pipelined writes
        // takes seconds to drain on Postgres from a debug build.
        let deadline = Instant::now() + 3 * WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "it did not stop on SIGTERM: {:?}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is stopped by a signal (state `T` in `/proc`).
    fn paused(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
    }

    /// Raises its file-size limit (the disk has room again).
    pub fn lift_file_size_limit(&self) {
        let rl = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: prlimit on our own child, with a valid limit.
        let done = unsafe { libc::prlimit(self.pid(), libc::RLIMIT_FSIZE, &rl, std::ptr::null_mut()) };
        assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Every server its test leaves running must be idle and answer (`idle`); one the
            // test paused (SIGSTOP) is not judged.
            if !std::thread::panicking() && !self.paused() {
                crate::idle::assert_idle(self.port, &crate::idle::Cpu::Process(self.pid()));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
