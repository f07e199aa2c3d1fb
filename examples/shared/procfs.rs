//! What the benchmark examples read from /proc: a process's RSS, threads, CPU time and context
//! switches, the clock tick, and the open-files limit. Shared by `loadgen` and `compare`
//! (`#[path = "shared/procfs.rs"] mod procfs;`); not an example of its own.

/// One reading of a process's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSnap {
    /// VmRSS.
    pub rss_kib: u64,
    /// OS threads.
    pub threads: u64,
    /// utime + stime of the whole process, in clock ticks ([`clock_ticks`] per second).
    pub cpu_ticks: u64,
    /// Voluntary plus involuntary context switches summed over its live threads (a thread that
    /// exited takes its count with it); 0 unless asked for.
    pub ctx_switches: u64,
}

/// Reads `/proc/PID/{status,stat}`; `pid` is a number or "self". Context switches cost one more
/// file per thread, so they are read only when `with_ctx_switches` is set.
pub fn snap(pid: &str, with_ctx_switches: bool) -> Option<ProcSnap> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    // There, field 0 is the state (field 3 of proc(5)), so utime (14) and stime (15) are 11, 12.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut f = after.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(ProcSnap {
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
        cpu_ticks: utime + stime,
        ctx_switches: if with_ctx_switches {
            ctx_switches(pid)
        } else {
            0
        },
    })
}

/// Context switches of every thread of `pid`: how often its threads went to sleep (voluntary:
/// waiting in epoll_wait or on a lock) or were preempted (involuntary).
pub fn ctx_switches(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Clock ticks per second for /proc/PID/stat. Asking `getconf` avoids a libc dependency; every
/// Linux we know answers 100, which is the fallback.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// This process's soft open-files limit.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
