//! Our executor: async-task's task cells on N named OS threads, scheduled by our own
//! [`super::sched`] (a queue per thread, stealing, one woken helper at a time), our own reactor
//! for sockets and timers (on the `polling` crate's epoll, see [`super::reactor`]), `blocking`
//! for blocking work.
//!
//! With `threads = 1` every task runs on the calling thread, and that thread also waits for I/O
//! and timers: the whole node is one thread plus the log and watchdog threads. With N > 1,
//! N - 1 worker threads (`chatnode-worker-K`) run the same executor beside the calling thread.
//! There is no reactor thread: a thread that runs out of tasks waits in `epoll_wait` itself if no
//! other thread does, and parks otherwise ([`Scheduler::drive`]). The `blocking` pool starts threads on
//! demand (at most `BLOCKING_MAX_THREADS`, default 500). In blocking 1.7 an idle pool thread
//! lingers rather than exiting (it exits only when the pool is over its limit), so a node that
//! once ran N blocking jobs at a time keeps N threads: see docs/blocking.md.
//!
//! Cooperative scheduling, the first contrast with Tokio: our scheduler, like async-executor,
//! has no budget. A task
//! that keeps returning `Ready` (say, a loop over a channel that always has items) keeps its
//! worker thread until it awaits something that is `Pending`. Our long loops yield on their own.
//! [`Scheduler::drive`] looks at the reactor (without blocking) every 61 tasks or every 10 ms of work, so
//! sockets and timers are served even while every thread is busy.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::net::{self, Listener, Reader, Writer};
use super::reactor::Reactor;
use super::sched::Scheduler;
use super::signal::{Signal, Signals};
use super::timer::Sleep;
use super::{task, Accepted, Runtime, TaskName};

/// Our runtime: a shared async-executor, our reactor, and the blocking pool.
///
/// ```
/// use chatnode::rt::{smol::SmolRuntime, Runtime};
/// let rt = SmolRuntime::new();
/// let answer = rt.block_on(2, {
///     let rt = rt.clone();
///     async move { rt.spawn("adder".into(), async { 40 + 2 }).await }
/// });
/// assert_eq!(answer, Some(42));
/// ```
#[derive(Clone)]
pub struct SmolRuntime {
    sched: Arc<Scheduler>,
    reactor: Arc<Reactor>,
    /// Worker threads started by `block_on` (besides the calling thread), for `describe`.
    workers: Arc<AtomicUsize>,
}

impl Default for SmolRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl SmolRuntime {
    /// A runtime with no threads yet; [`SmolRuntime::block_on`] supplies them.
    ///
    /// Panics if the kernel refuses an epoll instance or an eventfd (out of descriptors).
    pub fn new() -> Self {
        SmolRuntime {
            sched: Scheduler::new(),
            reactor: Arc::new(Reactor::new().expect("create the reactor (epoll, eventfd)")),
            workers: Arc::default(),
        }
    }

    /// Runs `main` to completion on the calling thread plus `threads - 1` worker threads, all
    /// running this executor's tasks and sharing its reactor. Returns when `main` does; the
    /// workers are stopped and joined first. Tasks still alive are not dropped here: their owners
    /// drop them.
    ///
    /// Sockets and timers of this runtime make progress only while some thread is inside
    /// `block_on`.
    pub fn block_on<T>(&self, threads: usize, main: impl Future<Output = T>) -> T {
        let (stop, stopped) = async_channel::bounded::<()>(1);
        self.workers.store(threads.max(1) - 1, Ordering::Relaxed);
        let workers: Vec<_> = (1..threads.max(1))
            .map(|i| {
                let (sched, reactor) = (self.sched.clone(), self.reactor.clone());
                let stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("chatnode-worker-{i}"))
                    .spawn(move || sched.drive(&reactor, stopped.recv()))
                    .expect("spawn worker thread")
            })
            .collect();
        let out = self.sched.drive(&self.reactor, main);
        stop.close();
        for w in workers {
            let _ = w.join();
        }
        out
    }

    /// Catches `signals` (say `[Signal::TERM, Signal::INT]`) until the returned value is dropped.
    pub fn signals(&self, signals: &[Signal]) -> io::Result<Signals> {
        Signals::new(self.reactor.clone(), signals)
    }

    /// Lets the threads of [`SmolRuntime::block_on`] follow the machine's load (off by
    /// default; the binary's `--adaptive-threads` turns it on): while the threads running tasks
    /// wait for a CPU more than a tenth of the time they run, one fewer may run tasks; while a
    /// core is idle, one more may (module [`super::cores`]). A thread held by one long poll still
    /// hands its queue over to an idle one.
    ///
    /// ```
    /// use chatnode::rt::smol::SmolRuntime;
    /// let rt = SmolRuntime::new();
    /// rt.set_adaptive_threads(true);
    /// assert_eq!(rt.block_on(2, async { 1 + 1 }), 2);
    /// ```
    pub fn set_adaptive_threads(&self, on: bool) {
        self.sched.set_adaptive(on);
    }

    /// Lets at most `limit` (at least 1) of the threads of [`SmolRuntime::block_on`] run tasks
    /// at once, until [`SmolRuntime::set_adaptive_threads`] moves it: a thread that runs out of
    /// work while `limit` others run parks, and no idle thread is woken for a lasting backlog.
    /// A poll that holds its thread past the watchdog's hand-over time still brings an idle
    /// thread for the tasks queued behind it.
    ///
    /// ```
    /// use chatnode::rt::smol::SmolRuntime;
    /// use chatnode::rt::Runtime;
    /// let rt = SmolRuntime::new();
    /// rt.set_active_limit(1);
    /// // Two threads, one of them running tasks at a time: the same results.
    /// let sum = rt.block_on(2, {
    ///     let rt = rt.clone();
    ///     async move {
    ///         let tasks: Vec<_> = (0..10u64).map(|i| rt.spawn("add".into(), async move { i })).collect();
    ///         let mut sum = 0;
    ///         for t in tasks {
    ///             sum += t.await.unwrap();
    ///         }
    ///         sum
    ///     }
    /// });
    /// assert_eq!(sum, 45);
    /// ```
    pub fn set_active_limit(&self, limit: usize) {
        self.sched.set_active_limit(limit);
    }

    /// The reactor: for its counts ([`Reactor::registered`]) and `STATS e`.
    pub fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// Connects to `addr` on this runtime's reactor without blocking a thread (see
    /// [`net::connect`]): for clients that know the address, such as the load generator.
    pub fn connect_to(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<(Reader, Writer)>> + Send + 'static {
        net::connect(self.reactor.clone(), addr)
    }

    /// [`SmolRuntime::connect_to`] that gives up after `limit` with `TimedOut` (the half-made
    /// socket is closed and deregistered): a peer that drops SYNs (a full listen backlog, a
    /// firewall) would otherwise hold the connect for the kernel's SYN retries, minutes.
    ///
    /// ```
    /// use chatnode::rt::smol::SmolRuntime;
    /// use std::time::Duration;
    /// let rt = SmolRuntime::new();
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let connected = rt.block_on(1, rt.connect_within(addr, Duration::from_secs(5)));
    /// assert!(connected.is_ok());
    /// ```
    pub fn connect_within(
        &self,
        addr: SocketAddr,
        limit: Duration,
    ) -> impl Future<Output = io::Result<(Reader, Writer)>> + Send + 'static {
        let connect = self.connect_to(addr);
        let timer = self.sleep_until(Instant::now() + limit);
        futures_lite::future::or(connect, async move {
            timer.await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr}: no answer within {limit:?}"),
            ))
        })
    }

    /// A timer that completes at `deadline`. Dropping it cancels it.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::at(self.reactor.clone(), deadline)
    }
}

impl Runtime for SmolRuntime {
    type Listener = Listener;
    type Reader = Reader;
    type Writer = Writer;
    // Contrast (cancellation): smol's Task cancels its future when dropped. Nothing to add.
    type Task<T: Send + 'static> = async_task::Task<Option<T>>;

    fn spawn<T, F>(&self, name: TaskName, fut: F) -> Self::Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.sched.spawn(task::instrument(name, fut))
    }

    fn sleep(&self, dur: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.sleep_until(Instant::now() + dur)
    }

    fn unblock<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // Contrast (blocking work): `blocking::unblock` sends `f` to a process-wide thread pool
        // sized by BLOCKING_MAX_THREADS; the executor's threads never run it.
        blocking::unblock(f)
    }

    fn offload(&self, job: Box<dyn FnOnce() + Send>) {
        blocking::unblock(job).detach();
    }

    fn describe(&self) -> String {
        let pool = std::env::var("BLOCKING_MAX_THREADS").unwrap_or_else(|_| "500".into());
        format!(
            "runtime: our smol executor (async-task, a queue per thread), {} worker thread(s) \
             besides the main thread, no reactor thread (an idle executor thread waits in \
             epoll_wait), blocking pool of at most {pool} threads (BLOCKING_MAX_THREADS); {}; {}",
            self.workers.load(Ordering::Relaxed),
            self.sched.describe(),
            self.reactor.describe()
        )
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        Listener::new(self.reactor.clone(), listener)
    }

    fn connect(
        &self,
        addr: String,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send + 'static {
        let rt = self.clone();
        async move {
            // A literal address needs no thread at all; a name is resolved on the blocking pool
            // (getaddrinfo may block), as Tokio does. The connect itself is on our reactor.
            let addrs: Vec<SocketAddr> = match addr.parse::<SocketAddr>() {
                Ok(a) => vec![a],
                Err(_) => {
                    let name = addr.clone();
                    blocking::unblock(move || {
                        use std::net::ToSocketAddrs;
                        name.to_socket_addrs().map(Iterator::collect)
                    })
                    .await?
                }
            };
            let mut last = None;
            for a in addrs {
                match rt.connect_within(a, CONNECT_TIMEOUT).await {
                    Ok(halves) => return Ok(halves),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"))
            }))
        }
    }

    async fn accept(
        &self,
        listener: &Self::Listener,
    ) -> io::Result<Accepted<Self::Reader, Self::Writer>> {
        let (stream, peer) = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
        // Lines are batched by the writer already; no need for Nagle to delay them further.
        stream.set_nodelay(true)?;
        // One registered socket, shared by the two halves.
        let (reader, writer) = net::split(self.reactor.clone(), stream)?;
        Ok(Accepted {
            reader,
            writer,
            peer,
        })
    }
}

/// How long a dial-out ([`Runtime::connect`]) waits for each address to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::stats;

    /// A panic in one task ends that task only: its handle yields `None`, the panic is counted
    /// for its kind, and the other tasks on the same (single) thread run on.
    #[test]
    fn a_panicking_task_ends_alone() {
        let rt = SmolRuntime::new();
        let (crashed, survivor) = rt.block_on(1, {
            let rt = rt.clone();
            async move {
                let (tx, rx) = async_channel::bounded::<u32>(1);
                let survivor = rt.spawn("survivor-test".into(), async move {
                    rx.recv().await.unwrap_or(0) + 1
                });
                let crashed = rt
                    .spawn("crasher-test#1".into(), async {
                        futures_lite::future::yield_now().await;
                        if true {
                            panic!("deliberate test panic");
                        }
                    })
                    .await;
                tx.send(41).await.unwrap();
                (crashed, survivor.await)
            }
        });
        assert_eq!(crashed, None);
        assert_eq!(survivor, Some(42));
        let kind = stats::snapshot()
            .into_iter()
            .find(|k| k.kind == "crasher-test")
            .expect("the crasher's kind is counted");
        assert_eq!((kind.panics, kind.alive), (1, 0));
    }

    /// A poll's start is the previous poll's end only inside a batch: the time a thread waits
    /// between batches (here, 3 × 30 ms in epoll_wait for a timer) is nobody's busy time.
    #[test]
    fn time_between_batches_is_not_counted_as_busy() {
        let rt = SmolRuntime::new();
        rt.block_on(1, {
            let rt = rt.clone();
            async move {
                rt.spawn("napper-test".into(), {
                    let rt = rt.clone();
                    async move {
                        for _ in 0..3 {
                            rt.sleep(Duration::from_millis(30)).await;
                        }
                    }
                })
                .await
            }
        });
        let kind = stats::snapshot()
            .into_iter()
            .find(|k| k.kind == "napper-test")
            .expect("the napper's kind is counted");
        assert!(kind.polls >= 4, "{} polls", kind.polls);
        assert!(
            kind.busy < Duration::from_millis(30),
            "4 polls that only set timers counted {:?} busy",
            kind.busy
        );
    }
}
