//! CPU time from `/proc`: of this process, of the workers, of the private server.

use std::fmt;
use std::fs;
use std::time::Duration;

/// CPU time (user and system) a run used, from the first event until the workers exited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu {
    /// The producer (this process), until the store settled.
    pub(crate) producer: Option<Duration>,
    /// The worker processes, from ready until they reported.
    pub(crate) workers: Duration,
    /// A private server, with its child processes (PostgreSQL's backends); unknown for a server
    /// given by URL.
    pub(crate) server: Option<Duration>,
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = |cpu: Option<Duration>| {
            cpu.map_or_else(|| "-".to_owned(), |cpu| cpu.as_millis().to_string())
        };
        write!(
            f,
            "cpu_ms=producer:{},workers:{},server:{}",
            millis(self.producer),
            self.workers.as_millis(),
            millis(self.server)
        )
    }
}

/// From `/proc/<pid>/stat`: the parent's pid, the CPU time of the process, and that of its
/// children it waited for. Times are in clock ticks, taken as 10 ms (Linux's `USER_HZ` on every
/// common platform).
pub(crate) fn proc_stat(pid: &str) -> Option<(u32, Duration, Duration)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let tick = |index: usize| -> Option<u64> { fields.get(index)?.parse().ok() };
    let ticks = |ticks: u64| Duration::from_millis(ticks * 10);
    Some((
        u32::try_from(tick(1)?).ok()?,
        ticks(tick(11)? + tick(12)?),
        ticks(tick(13)? + tick(14)?),
    ))
}

pub(crate) fn own_cpu() -> Option<Duration> {
    proc_stat("self").map(|(_, own, _)| own)
}

/// A server's CPU time: its own, its children's that exited (PostgreSQL's postmaster waits for
/// its backends), and its live children's.
pub(crate) fn server_cpu(pid: u32) -> Option<Duration> {
    let (_, own, exited) = proc_stat(&pid.to_string())?;
    let live: Duration = fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.bytes()
                .all(|byte| byte.is_ascii_digit())
                .then_some(name)
        })
        .filter_map(|child| proc_stat(&child))
        .filter(|(parent, _, _)| *parent == pid)
        .map(|(_, own, exited)| own + exited)
        .sum();
    Some(own + exited + live)
}
