//! NATS client benchmark: chatnode's own NATS client (src/link/nats/, on our smol runtime or
//! on the Tokio build's runtime) against async-nats (on the Tokio build's runtime, and inside
//! our smol executor with a Tokio runtime thread beside it, as async-compat does it), on a
//! running nats-server. One run = one client, one test; the script
//! (scripts/bench-nats-client.sh) starts nats-server, alternates the clients and takes medians.
//!
//! ```text
//! nats-client-bench --client ours-smol|ours-tokio|async-nats|async-nats-smol
//!                   --test publish|rtt
//!                   --addr 127.0.0.1:PORT [--messages N] [--payload BYTES] [--threads T]
//!                   [--server-pid PID]
//! ```
//!
//! Prints one line of `key=value` fields: the messages per second, the process's CPU time per
//! message (getrusage, both ends of the exchange are in this process), the server's CPU time
//! per message, the latencies (rtt), the threads of this process (most seen during the run,
//! and at the end of the measured phase) and their names.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod ours;
mod probe;
mod theirs;

use probe::Sampler;

/// Publishes per write, as the link adapter batches (its `BATCH`).
const BATCH: usize = 256;
/// How long any wait may take before the run gives up.
const DEADLINE: Duration = Duration::from_secs(60);
/// A subscriber that hears nothing for this long has all it will get: the rest were lost.
const IDLE: Duration = Duration::from_secs(2);

/// Slow-consumer events async-nats reported (it drops messages for a subscription whose
/// buffer is full, client side).
static SLOW_CONSUMER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Context {
    sampler: Arc<Sampler>,
    server_pid: Option<u32>,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

fn context() -> &'static Context {
    CONTEXT.get().expect("context set in main")
}

/// One measured phase: from after the connections are up to the last message or reply.
pub struct Phase {
    at: Instant,
    cpu_us: u64,
    server_cpu_us: Option<u64>,
    elapsed: Duration,
    sent: usize,
    got: usize,
    threads_now: usize,
    latencies: Vec<Duration>,
}

impl Phase {
    fn start() -> Phase {
        let ctx = context();
        Phase {
            at: Instant::now(),
            cpu_us: probe::process_cpu_us(&ctx.sampler),
            server_cpu_us: probe::server_cpu_us(ctx.server_pid),
            elapsed: Duration::ZERO,
            sent: 0,
            got: 0,
            threads_now: 0,
            latencies: Vec::new(),
        }
    }

    /// Ends the phase now.
    fn end(&mut self, sent: usize, got: usize) {
        self.end_at(sent, got, Instant::now());
    }

    /// Ends the phase; its time is up to `last` (the last message received), its CPU time up to
    /// now (a wait for lost messages is idle time).
    fn end_at(&mut self, sent: usize, got: usize, last: Instant) {
        let ctx = context();
        self.elapsed = last.saturating_duration_since(self.at);
        self.cpu_us = probe::process_cpu_us(&ctx.sampler) - self.cpu_us;
        self.server_cpu_us = match (probe::server_cpu_us(ctx.server_pid), self.server_cpu_us) {
            (Some(now), Some(then)) => Some(now - then),
            _ => None,
        };
        self.sent = sent;
        self.got = got;
        self.threads_now = ctx.sampler.now();
    }
}

struct Args {
    client: String,
    test: String,
    addr: String,
    messages: usize,
    payload: usize,
    threads: usize,
}

fn parse_args() -> Result<(Args, Option<u32>), String> {
    let mut args = Args {
        client: String::new(),
        test: String::new(),
        addr: String::new(),
        messages: 0,
        payload: 100,
        threads: 1,
    };
    let mut server_pid = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--client" => args.client = value.clone(),
            "--test" => args.test = value.clone(),
            "--addr" => args.addr = value.clone(),
            "--messages" => args.messages = number()?,
            "--payload" => args.payload = number()?,
            "--threads" => args.threads = number()?.max(1),
            "--server-pid" => server_pid = Some(number()? as u32),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.addr.is_empty() {
        return Err("--addr HOST:PORT is required".into());
    }
    if args.messages == 0 {
        args.messages = if args.test == "rtt" { 10_000 } else { 100_000 };
    }
    Ok((args, server_pid))
}

fn run(args: &Args) -> io::Result<Phase> {
    use chatnode::rt::smol::SmolRuntime;
    use chatnode::rt::tokio::TokioRuntime;
    let (addr, n, t) = (args.addr.clone(), args.messages, args.threads);
    let payload: Vec<u8> = (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect();
    let rtt = match args.test.as_str() {
        "publish" => false,
        "rtt" => true,
        other => return Err(io::Error::other(format!("unknown test {other}"))),
    };
    match args.client.as_str() {
        "ours-smol" => {
            let rt = SmolRuntime::new();
            let r = rt.clone();
            rt.block_on(t, async move {
                match rtt {
                    true => ours::round_trips(r, addr, n, payload).await,
                    false => ours::publish(r, addr, n, payload).await,
                }
            })
        }
        "ours-tokio" => {
            let (runtime, rt) = TokioRuntime::start(t, None)?;
            runtime.block_on(async move {
                match rtt {
                    true => ours::round_trips(rt, addr, n, payload).await,
                    false => ours::publish(rt, addr, n, payload).await,
                }
            })
        }
        "async-nats" => {
            let runtime = TokioRuntime::build(t, None)?;
            runtime.block_on(async move {
                match rtt {
                    true => theirs::round_trips(addr, n, payload).await,
                    false => theirs::publish(addr, n, payload).await,
                }
            })
        }
        "async-nats-smol" => {
            // Design option 1 of issue 13: async-nats inside the smol build, the way
            // async-compat runs it: a Tokio runtime on a thread of its own (its reactor and
            // timers, and the tasks async-nats spawns), entered from our executor's thread so
            // that the client's futures find it. The benchmark's own loop runs on our executor.
            let tokio = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let _entered = tokio.enter();
            let rt = SmolRuntime::new();
            rt.block_on(1, async move {
                match rtt {
                    true => theirs::round_trips(addr, n, payload).await,
                    false => theirs::publish(addr, n, payload).await,
                }
            })
        }
        other => Err(io::Error::other(format!("unknown client {other}"))),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let (args, server_pid) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nats-client-bench: {e}");
            std::process::exit(2);
        }
    };
    let (sampler, handle) = Sampler::start();
    let _ = CONTEXT.set(Context {
        sampler: sampler.clone(),
        server_pid,
    });
    let result = run(&args);
    let (threads_max, names) = sampler.finish(handle);
    let mut phase = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nats-client-bench: {} {}: {e}", args.client, args.test);
            std::process::exit(1);
        }
    };
    let secs = phase.elapsed.as_secs_f64();
    let mut line = format!(
        "client={} test={} threads_arg={} messages={} payload={} got={} lost={} secs={:.3} \
         msgs_per_s={:.0} cpu_us_per_msg={:.3} ",
        args.client,
        args.test,
        args.threads,
        phase.sent,
        args.payload,
        phase.got,
        phase.sent - phase.got,
        secs,
        phase.got as f64 / secs,
        phase.cpu_us as f64 / phase.got.max(1) as f64,
    );
    if let Some(server) = phase.server_cpu_us {
        line += &format!(
            "server_cpu_us_per_msg={:.3} ",
            server as f64 / phase.got.max(1) as f64
        );
    }
    if !phase.latencies.is_empty() {
        phase.latencies.sort();
        line += &format!(
            "p50_us={:.1} p99_us={:.1} ",
            percentile(&phase.latencies, 0.50),
            percentile(&phase.latencies, 0.99)
        );
    }
    line += &format!(
        "slow_consumer_events={} ",
        SLOW_CONSUMER.load(std::sync::atomic::Ordering::Relaxed)
    );
    line += &format!(
        "threads_max={threads_max} threads_end={} thread_names={}",
        phase.threads_now,
        names.join(",").replace(' ', "_")
    );
    println!("{line}");
}
