//! The check every test server passes when its test is done with it, whatever the test tested:
//! the server is idle (its CPU time over a quiet second stays under `BUSY_SHARE`) and each of
//! several fresh connections in a row is answered (so every worker is alive). A task left
//! spinning on a worker, or a worker that no longer takes connections, fails the test.
//!
//! In-process servers (`spawn_app`) are measured by the threads of their HTTP workers (other
//! tests' servers share the process); real binaries (`process::Server`) by the whole process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The most CPU a server with no clients may use over the quiet second: 5 % of one core.
const BUSY_SHARE: f64 = 0.05;
/// The quiet second, tried this many times: a server still finishing what its test's clients
/// left (a queue to drain, sessions to close) gets a few seconds to fall quiet; a task that
/// spins never does.
const TRIES: usize = 3;
/// Fresh connections, one after another: twice the workers (actix starts one per CPU), so each
/// worker answers at least one.
fn connections() -> usize {
    2 * std::thread::available_parallelism().map_or(2, usize::from) + 1
}
/// How long one of them may take to be answered.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What CPU time a server has used, in clock ticks.
pub enum Cpu {
    /// The threads of an in-process server's workers.
    Threads(device_sync::app::WorkerThreads),
    /// A server process.
    Process(i32),
}

impl Cpu {
    fn ticks(&self) -> u64 {
        match self {
            Self::Threads(workers) => {
                // The workers note themselves as they start, just after the server does.
                let deadline = std::time::Instant::now() + ANSWER_WAIT;
                while workers.ids().is_empty() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let ids = workers.ids();
                assert!(!ids.is_empty(), "the server's worker threads are not known: nothing to measure");
                ids.iter().map(|id| ticks_in(&format!("/proc/self/task/{id}/stat"))).sum()
            }
            Self::Process(pid) => ticks_in(&format!("/proc/{pid}/stat")),
        }
    }
}

/// User and system time from a `stat` file of `/proc` (0 if it cannot be read: a thread that
/// has ended is not busy).
fn ticks_in(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else { return 0 };
    // The command name may hold spaces: the fields that follow it start after its `)`.
    let Some((_, fields)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100)
}

/// Asserts that the server on `port` is idle and answers fresh connections. Blocks: call it
/// from `Drop` or through `spawn_blocking`.
pub fn assert_idle(port: u16, cpu: &Cpu) {
    let allowed = (ticks_per_second() as f64 * BUSY_SHARE).ceil() as u64;
    let mut used = Vec::new();
    for _ in 0..TRIES {
        let before = cpu.ticks();
        std::thread::sleep(Duration::from_secs(1));
        used.push(cpu.ticks().saturating_sub(before));
        if used.last().is_some_and(|&u| u <= allowed) {
            break;
        }
    }
    assert!(
        used.iter().any(|&u| u <= allowed),
        "the server stayed busy with no clients: {used:?} clock ticks in each of {TRIES} quiet \
         seconds (at most {allowed} allowed): a task is spinning"
    );
    let connections = connections();
    for n in 1..=connections {
        if let Err(err) = answered(port) {
            panic!("fresh connection {n} of {connections} was not answered ({err}): a worker is stuck");
        }
    }
}

/// One request on a fresh connection, answered by the worker alone (a path no route has).
fn answered(port: u16) -> std::io::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, ANSWER_WAIT)?;
    stream.set_read_timeout(Some(ANSWER_WAIT))?;
    stream.write_all(b"GET /idle-check HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut head = Vec::with_capacity(12);
    (&mut stream).take(12).read_to_end(&mut head)?;
    // A server on TLS answers the plain request with a TLS alert record (content type 21): its
    // worker read it and answered.
    if head.starts_with(b"HTTP/1.1 ") || head.first() == Some(&0x15) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("not an HTTP answer: {:?}", String::from_utf8_lossy(&head))))
    }
}
