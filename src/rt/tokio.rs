//! The Tokio build of the runtime seam (feature `tokio`).
//!
//! The server and broker code is the same as on our executor; only this glue differs, and where
//! Tokio's defaults differ from smol's the glue says so. The three contrasts:
//!
//! - **Cancellation.** Dropping a smol `Task` cancels it. Dropping a Tokio `JoinHandle`
//!   *detaches* the task: it runs on, unowned. [`AbortOnDrop`] restores the smol contract by
//!   calling `abort()` in `Drop`, so every task the server starts is still owned.
//! - **Blocking work.** `blocking::unblock` on our side; `spawn_blocking` here, on the runtime's
//!   own blocking pool (its size is `Builder::max_blocking_threads`, default 512).
//! - **Cooperative scheduling.** Tokio gives each task a budget (128 operations on Tokio
//!   resources) and makes resources return `Pending` once it is spent, so a task looping over a
//!   ready socket yields by force. async-executor has no budget. The budget only works through
//!   Tokio's own resources: a loop over async-channel, or one with no awaits at all, is not
//!   preempted on either runtime, which is why the broker yields on its own.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use super::{task, Accepted, Runtime, TaskName};

/// The seam on a Tokio runtime.
///
/// ```
/// use chatnode::rt::{tokio::TokioRuntime, Runtime};
/// let runtime = TokioRuntime::build(1, None).unwrap();
/// let rt = TokioRuntime::new(runtime.handle().clone());
/// let answer = runtime.block_on(async move { rt.spawn("adder".into(), async { 40 + 2 }).await });
/// assert_eq!(answer, Some(42));
/// ```
#[derive(Clone)]
pub struct TokioRuntime {
    handle: tokio::runtime::Handle,
    /// The blocking pool's cap as built (None: Tokio's default), shown by STATS e.
    blocking_threads: Option<usize>,
}

impl TokioRuntime {
    /// A Tokio runtime with `threads` workers; 1 builds the current-thread runtime, where every
    /// task runs on the thread that calls `block_on`. `blocking_threads` caps the blocking pool
    /// (Tokio's default: 512).
    pub fn build(
        threads: usize,
        blocking_threads: Option<usize>,
    ) -> io::Result<tokio::runtime::Runtime> {
        let mut builder = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(threads)
                .thread_name("chatnode-tokio-worker");
            b
        };
        if let Some(n) = blocking_threads {
            // Contrast (blocking work): a setting of the runtime, where smol's pool reads an
            // environment variable (BLOCKING_MAX_THREADS).
            builder.max_blocking_threads(n);
        }
        builder.enable_all().build()
    }

    /// The runtime and its seam as the node starts them (`chatnode-tokio`): [`TokioRuntime::build`]
    /// with the flags' values, and the seam over it, which knows the blocking cap for STATS e.
    /// One call, so the cap the builder gets and the cap STATS e shows cannot drift apart.
    ///
    /// ```
    /// use chatnode::rt::{tokio::TokioRuntime, Runtime};
    /// let (runtime, rt) = TokioRuntime::start(2, Some(3)).unwrap();
    /// assert!(rt.describe().contains("at most 3 threads"));
    /// assert_eq!(runtime.block_on(rt.unblock(|| 6 * 7)), 42);
    /// ```
    pub fn start(
        threads: usize,
        blocking_threads: Option<usize>,
    ) -> io::Result<(tokio::runtime::Runtime, TokioRuntime)> {
        let runtime = TokioRuntime::build(threads, blocking_threads)?;
        let rt =
            TokioRuntime::new(runtime.handle().clone()).with_blocking_threads(blocking_threads);
        Ok((runtime, rt))
    }

    /// The seam over a runtime built with [`TokioRuntime::build`] (or any other).
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        TokioRuntime {
            handle,
            blocking_threads: None,
        }
    }

    /// Says which cap [`TokioRuntime::build`] gave the blocking pool, so `describe` (STATS e)
    /// shows the pool as configured: Tokio's metrics do not expose it.
    pub fn with_blocking_threads(mut self, blocking_threads: Option<usize>) -> Self {
        self.blocking_threads = blocking_threads;
        self
    }
}

/// A `JoinHandle` that aborts its task when dropped, as a smol `Task` does.
pub struct AbortOnDrop<T>(JoinHandle<Option<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        // Contrast (cancellation): without this, dropping the handle would detach the task.
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // `Err` means the task was aborted or panicked outside our catch; either way, no output.
        Pin::new(&mut self.0).poll(cx).map(|r| r.ok().flatten())
    }
}

impl Runtime for TokioRuntime {
    type Listener = TcpListener;
    type Reader = Compat<OwnedReadHalf>;
    type Writer = Compat<OwnedWriteHalf>;
    type Task<T: Send + 'static> = AbortOnDrop<T>;

    fn spawn<T, F>(&self, name: TaskName, fut: F) -> Self::Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        AbortOnDrop(self.handle.spawn(task::instrument(name, fut)))
    }

    fn sleep(&self, dur: Duration) -> impl Future<Output = ()> + Send + 'static {
        // Created inside the runtime (every caller is a task), as Tokio's timer requires.
        tokio::time::sleep(dur)
    }

    fn unblock<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // Contrast (blocking work): Tokio's own blocking pool. Like `blocking::unblock`, a panic
        // in `f` is resumed in the awaiting task.
        let handle = self.handle.spawn_blocking(f);
        async move {
            match handle.await {
                Ok(value) => value,
                Err(e) => match e.try_into_panic() {
                    Ok(payload) => std::panic::resume_unwind(payload),
                    // Only when the runtime shuts down under us, after `run` has returned.
                    Err(e) => panic!("blocking work did not finish: {e}"),
                },
            }
        }
    }

    fn offload(&self, job: Box<dyn FnOnce() + Send>) {
        // Dropping the JoinHandle detaches the job; that is what `offload` promises here.
        drop(self.handle.spawn_blocking(job));
    }

    fn describe(&self) -> String {
        let m = self.handle.metrics();
        format!(
            "runtime: Tokio {:?}, {} worker thread(s), blocking pool of at most {} threads \
             (Builder::max_blocking_threads)",
            self.handle.runtime_flavor(),
            m.num_workers(),
            self.blocking_threads.unwrap_or(512)
        )
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        let _guard = self.handle.enter();
        TcpListener::from_std(listener)
    }

    // Not an `async fn`: that would borrow `self`, and the seam asks for a `'static` future.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        addr: String,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send + 'static {
        // Tokio resolves on its blocking pool and connects on its own reactor.
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (reader, writer) = stream.into_split();
            Ok((reader.compat(), writer.compat_write()))
        }
    }

    async fn accept(
        &self,
        listener: &Self::Listener,
    ) -> io::Result<Accepted<Self::Reader, Self::Writer>> {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        // Tokio's halves are separate owned values; `compat` adapts them to the futures-io
        // traits the shared connection code is written against.
        let (reader, writer) = stream.into_split();
        Ok(Accepted {
            reader: reader.compat(),
            writer: writer.compat_write(),
            peer,
        })
    }
}
