//! Sockets on our reactor: a registered descriptor, the connection halves and the listener.
//!
//! [`Registered`] owns a non-blocking socket and its [`Source`] in the [`Reactor`]. Every
//! operation follows one pattern ([`Registered::poll_io`]): if the reactor says the direction is
//! ready, try the system call; on `EAGAIN`, or a read or write that moved less than asked (the
//! socket was emptied, or filled), forget readiness with the tick seen before the call, so an
//! event that arrived meanwhile is not lost (see [`super::reactor`] on the edge-triggered trap).
//!
//! Cancellation: dropping the last handle of a [`Registered`] removes the socket from epoll
//! before it is closed, so a task that is dropped (cancelled) leaves no registration behind.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::ready;

use super::reactor::{Direction, Reactor, Source};

/// A non-blocking socket registered (edge-triggered) in a [`Reactor`].
pub struct Registered<T: AsFd> {
    reactor: Arc<Reactor>,
    source: Arc<Source>,
    io: Option<T>,
}

impl<T: AsFd> Registered<T> {
    /// Makes `io` non-blocking (the caller's job) and registers it.
    pub fn new(reactor: Arc<Reactor>, io: T) -> io::Result<Self> {
        let source = reactor.register(io.as_fd())?;
        Ok(Registered {
            reactor,
            source,
            io: Some(io),
        })
    }

    /// The socket.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("present until dropped")
    }

    /// Runs `op` when `dir` is ready, until it does not fail with `EAGAIN`. `short` says whether
    /// a successful result emptied (or filled) the socket.
    pub fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
        short: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        loop {
            let tick = ready!(self.source.poll_ready(cx, dir));
            match op(self.get_ref()) {
                Ok(r) => {
                    if short(&r) {
                        self.source.clear(dir, tick);
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.source.clear(dir, tick),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<T: AsFd> Drop for Registered<T> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            // Out of epoll first, then closed (when `io` drops here).
            self.reactor.deregister(&self.source, io.as_fd());
        }
    }
}

/// The read half of a connection.
pub struct Reader {
    io: Arc<Registered<TcpStream>>,
}

/// The write half of a connection.
pub struct Writer {
    io: Arc<Registered<TcpStream>>,
}

/// Splits an accepted stream into halves sharing one registration.
pub fn split(reactor: Arc<Reactor>, stream: TcpStream) -> io::Result<(Reader, Writer)> {
    stream.set_nonblocking(true)?;
    Ok(halves(Registered::new(reactor, stream)?))
}

/// The two halves of one registered connection.
fn halves(io: Registered<TcpStream>) -> (Reader, Writer) {
    let io = Arc::new(io);
    (Reader { io: io.clone() }, Writer { io })
}

/// Connects to `addr` without blocking a thread: a non-blocking socket, `connect` (which answers
/// `EINPROGRESS`), registration, then a wait for the socket to become writable, which is when
/// the kernel has an answer. `SO_ERROR` then says whether it was a refusal (or an unreachable
/// network); the halves share the registration made for the wait. Nagle is off, as on
/// accepted connections.
///
/// Cancellation: dropping the future closes the half-made socket and removes it from epoll.
///
/// ```
/// use chatnode::rt::smol::SmolRuntime;
/// let rt = SmolRuntime::new();
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let connected = rt.block_on(1, rt.connect_to(addr));
/// assert!(connected.is_ok());
/// ```
pub async fn connect(reactor: Arc<Reactor>, addr: SocketAddr) -> io::Result<(Reader, Writer)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    let stream = TcpStream::from(fd);
    match rustix::net::connect(&stream, &addr) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::INPROGRESS => {}
        Err(e) => return Err(e.into()),
    }
    let io = Registered::new(reactor, stream)?;
    // Writable means answered: connected, or failed with the reason in SO_ERROR.
    std::future::poll_fn(|cx| io.poll_io(cx, Direction::Write, connect_outcome, |_| false)).await?;
    io.get_ref().set_nodelay(true)?;
    Ok(halves(io))
}

/// What a connecting socket's first writable event means: `WouldBlock` if it was spurious.
fn connect_outcome(stream: &TcpStream) -> io::Result<()> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(()),
        // Not connected and no error yet: still in progress.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        self.io.poll_io(
            cx,
            Direction::Read,
            // rustix's `recv` is the system call itself (no libc wrapper, no errno).
            |s| Ok(rustix::net::recv(s, &mut *buf, rustix::net::RecvFlags::empty())?.0),
            // Less than asked: the socket is empty now. (0 is EOF, which stays readable.)
            |&n| n > 0 && n < want,
        )
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        self.io.poll_io(
            cx,
            Direction::Write,
            // NOSIGNAL: a peer that is gone is an EPIPE error here, never a SIGPIPE.
            |s| Ok(rustix::net::send(s, buf, rustix::net::SendFlags::NOSIGNAL)?),
            // Less than offered: the send buffer is full now.
            |&n| n < want,
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // nothing is buffered here
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Shuts down our sending side; the peer sees EOF after the last line.
        Poll::Ready(match self.io.get_ref().shutdown(Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

/// A listening socket on the reactor.
pub struct Listener {
    io: Registered<TcpListener>,
}

impl Listener {
    /// Adopts a bound listener.
    pub fn new(reactor: Arc<Reactor>, listener: TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Listener {
            io: Registered::new(reactor, listener)?,
        })
    }

    /// Accepts one connection. Cancel-safe: a connection is taken from the kernel only in the
    /// poll that returns it.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        // Readiness stays set after an accept: more may be queued (edge-triggered: take them all
        // until EAGAIN).
        self.io
            .poll_io(cx, Direction::Read, |l| l.accept(), |_| false)
    }
}
