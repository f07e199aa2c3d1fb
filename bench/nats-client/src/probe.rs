//! What the benchmark measures besides time: the process's CPU time (getrusage), the threads
//! it runs (/proc/self/task) and the NATS server's CPU time (/proc/PID/stat).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// CPU time (user + system) in microseconds, of the whole process or of the calling thread.
fn rusage_us(who: libc::c_int) -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the pointer it is given, which points to
    // a zeroed (valid) value of exactly that type; RUSAGE_SELF and RUSAGE_THREAD are valid
    // `who` values on Linux, so the call cannot fail, and we read the value only after it.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// The process's CPU time so far, in microseconds, less the sampler thread's own.
pub fn process_cpu_us(sampler: &Sampler) -> u64 {
    rusage_us(libc::RUSAGE_SELF).saturating_sub(sampler.own_cpu_us.load(Ordering::Relaxed))
}

/// The NATS server's CPU time so far, in microseconds (clock ticks of /proc/PID/stat: 10 ms
/// steps, so only long phases give a usable figure). `None` without a pid or when unreadable.
pub fn server_cpu_us(pid: Option<u32>) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * 1_000_000 / hz)
}

/// The threads of this process: their number and names.
pub fn threads() -> (usize, Vec<String>) {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            names.push(comm.trim().to_string());
        }
    }
    names.sort();
    (names.len(), names)
}

/// A thread that counts this process's threads every few milliseconds and keeps the largest
/// count seen (itself excluded) with the names at that moment. Its own CPU time is kept so
/// that [`process_cpu_us`] can leave it out.
pub struct Sampler {
    stop: AtomicBool,
    max: AtomicUsize,
    names: Mutex<Vec<String>>,
    own_cpu_us: AtomicU64,
}

/// The sampler's name, so its own entry is left out of the counts.
const SAMPLER: &str = "thread-sampler";

impl Sampler {
    /// Starts sampling every 2 ms until [`Sampler::finish`].
    pub fn start() -> (Arc<Sampler>, std::thread::JoinHandle<()>) {
        let sampler = Arc::new(Sampler {
            stop: AtomicBool::new(false),
            max: AtomicUsize::new(0),
            names: Mutex::new(Vec::new()),
            own_cpu_us: AtomicU64::new(0),
        });
        let s = sampler.clone();
        let handle = std::thread::Builder::new()
            .name(SAMPLER.into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    s.sample();
                    s.own_cpu_us
                        .store(rusage_us(libc::RUSAGE_THREAD), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
            .expect("spawn the thread sampler");
        (sampler, handle)
    }

    fn sample(&self) {
        let (_, mut names) = threads();
        if let Some(i) = names.iter().position(|n| n == SAMPLER) {
            names.remove(i);
        }
        if names.len() > self.max.load(Ordering::Relaxed) {
            self.max.store(names.len(), Ordering::Relaxed);
            *self.names.lock().unwrap() = names;
        }
    }

    /// The threads now, the sampler excluded.
    pub fn now(&self) -> usize {
        threads().0 - 1
    }

    /// Stops sampling: the largest count seen (sampler excluded) and the names then.
    pub fn finish(&self, handle: std::thread::JoinHandle<()>) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
        (
            self.max.load(Ordering::Relaxed),
            self.names.lock().unwrap().clone(),
        )
    }
}
