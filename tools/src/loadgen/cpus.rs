//! Which cores the bench's processes run on.
//!
//! A pinned run gives the server under test one core and the load generator the other, the
//! same for both servers (what `taskset -c` does, through `sched_setaffinity(2)`), so that a
//! figure measures the server and not its competition with the load generator for a core.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Where a run's processes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the kernel puts them.
    Free,
    /// The server on core 0, the load generator on core 1.
    Pinned,
}

/// The server's core in a pinned run.
const SERVER_CPU: usize = 0;
/// The load generator's core in a pinned run.
const LOADGEN_CPU: usize = 1;

impl Placement {
    /// Whether this machine can pin: it needs the two cores.
    pub fn available() -> bool {
        online() >= 2
    }

    /// Makes `command` start on the server's core (from `fork` on, before it runs anything).
    pub fn apply_to_server(self, command: &mut Command) {
        if self == Self::Pinned {
            // SAFETY: between fork and exec the closure only calls sched_setaffinity, which is
            // async-signal-safe, on the child itself.
            unsafe {
                command.pre_exec(|| set_affinity(0, &[SERVER_CPU]));
            }
        }
    }

    /// Moves every thread of this process (the load generator) to its cores: core 1 when
    /// pinned, every core when free.
    pub fn apply_to_self(self) -> Result<(), String> {
        let cores: Vec<usize> = match self {
            Self::Pinned => vec![LOADGEN_CPU],
            Self::Free => (0..online()).collect(),
        };
        let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| format!("/proc/self/task: {e}"))?;
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<libc::pid_t>().ok()) else {
                continue;
            };
            // A thread that ended since the listing is no error.
            match set_affinity(tid, &cores) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(format!("pinning thread {tid}: {e}")),
            }
        }
        Ok(())
    }
}

/// The cores this machine has online.
pub fn online() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1)
}

fn set_affinity(tid: libc::pid_t, cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes within it for cores below
    // CPU_SETSIZE, and sched_setaffinity reads exactly its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &core in cores {
            libc::CPU_SET(core, &mut set);
        }
        if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
