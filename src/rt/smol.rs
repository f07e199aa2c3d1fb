//! Our executor: async-executor on N named OS threads, async-io for sockets and timers,
//! `blocking` for blocking work.
//!
//! With `threads = 1` every task runs on the calling thread: the lightest setup for a one-core
//! board. With N > 1, N - 1 worker threads (`chatnode-worker-K`) run the same executor beside the
//! calling thread. In both cases async-io starts one helper thread of its own (`async-io`) that
//! drives the reactor while every executor thread is busy, and the `blocking` pool starts threads
//! on demand (at most `BLOCKING_MAX_THREADS`, default 500). In blocking 1.7 an idle pool thread
//! lingers rather than exiting (it exits only when the pool is over its limit), so a node that
//! once ran N blocking jobs at a time keeps N threads: see docs/blocking.md.
//!
//! Cooperative scheduling, the first contrast with Tokio: async-executor has no budget. A task
//! that keeps returning `Ready` (say, a loop over a channel that always has items) keeps its
//! worker thread until it awaits something that is `Pending`. Our long loops yield on their own.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_executor::Executor;
use async_io::Async;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::ready;

use super::{task, Accepted, Runtime, TaskName};

/// Our runtime: a shared async-executor plus async-io and the blocking pool.
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
    ex: Arc<Executor<'static>>,
    /// Worker threads started by `block_on` (besides the calling thread), for `describe`.
    workers: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for SmolRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl SmolRuntime {
    /// A runtime with no threads yet; [`SmolRuntime::block_on`] supplies them.
    pub fn new() -> Self {
        SmolRuntime {
            ex: Arc::new(Executor::new()),
            workers: Arc::default(),
        }
    }

    /// Runs `main` to completion on the calling thread plus `threads - 1` worker threads, all
    /// running this executor's tasks. Returns when `main` does; the workers are stopped and
    /// joined first. Tasks still alive are not dropped here: their owners drop them.
    pub fn block_on<T>(&self, threads: usize, main: impl Future<Output = T>) -> T {
        let (stop, stopped) = async_channel::bounded::<()>(1);
        self.workers
            .store(threads.max(1) - 1, std::sync::atomic::Ordering::Relaxed);
        let workers: Vec<_> = (1..threads.max(1))
            .map(|i| {
                let ex = self.ex.clone();
                let stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("chatnode-worker-{i}"))
                    .spawn(move || async_io::block_on(ex.run(stopped.recv())))
                    .expect("spawn worker thread")
            })
            .collect();
        let out = async_io::block_on(self.ex.run(main));
        stop.close();
        for w in workers {
            let _ = w.join();
        }
        out
    }
}

/// The read half of a connection on async-io, with Tokio's readiness trick.
///
/// async-io's own `poll_read` always tries the `read` syscall first and only registers for
/// readiness after it fails with EAGAIN, so every read that empties the socket costs a second,
/// failing read. A read that returns less than it asked for has almost surely emptied the socket,
/// so this reader then asks the reactor first ([`Async::poll_readable`], no syscall once
/// registered) and reads only after the socket has signalled data. A connection task that is
/// woken for its writer then costs no read at all.
pub struct SmolReader {
    io: Arc<Async<TcpStream>>,
    /// The last read returned less than asked: wait for readiness before reading again.
    drained: bool,
}

/// The write half of a connection on async-io.
pub struct SmolWriter {
    io: Arc<Async<TcpStream>>,
}

impl AsyncRead for SmolReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.drained {
            ready!(this.io.poll_readable(cx))?;
            this.drained = false;
        }
        let n = ready!(Pin::new(&mut &*this.io).poll_read(cx, buf))?;
        this.drained = n > 0 && n < buf.len();
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for SmolWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut &*self.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Shuts down our sending side; the peer sees EOF after the last line.
        Pin::new(&mut &*self.io).poll_close(cx)
    }
}

impl Runtime for SmolRuntime {
    type Listener = Async<TcpListener>;
    type Reader = SmolReader;
    type Writer = SmolWriter;
    // Contrast (cancellation): smol's Task cancels its future when dropped. Nothing to add.
    type Task<T: Send + 'static> = async_executor::Task<Option<T>>;

    fn spawn<T, F>(&self, name: TaskName, fut: F) -> Self::Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.ex.spawn(task::instrument(name, fut))
    }

    fn sleep(&self, dur: Duration) -> impl Future<Output = ()> + Send + 'static {
        let timer = async_io::Timer::after(dur);
        async move {
            timer.await;
        }
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
            "runtime: our smol executor (async-executor), {} worker thread(s) besides the main \
             thread, 1 async-io reactor thread, blocking pool of at most {pool} threads \
             (BLOCKING_MAX_THREADS)",
            self.workers.load(std::sync::atomic::Ordering::Relaxed)
        )
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        Async::new(listener)
    }

    async fn accept(
        &self,
        listener: &Self::Listener,
    ) -> io::Result<Accepted<Self::Reader, Self::Writer>> {
        let (stream, peer) = listener.accept().await?;
        // Lines are batched by the writer already; no need for Nagle to delay them further.
        stream.get_ref().set_nodelay(true)?;
        // One registered socket, shared by the two halves.
        let io = Arc::new(stream);
        Ok(Accepted {
            reader: SmolReader {
                io: io.clone(),
                drained: false,
            },
            writer: SmolWriter { io },
            peer,
        })
    }
}

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
}
