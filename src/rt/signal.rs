//! Unix signals as a stream of events on our reactor (SIGINT, SIGTERM for shutdown).
//!
//! The handler, installed through `signal-hook-registry` (which chains with any handler already
//! there), writes the signal's number as one byte into a non-blocking socket pair; the read end is
//! registered in our reactor like any socket. So a signal wakes the task waiting for it through
//! the same `epoll_wait` as everything else: no thread of its own. (async-signal does the same
//! through async-io, whose reactor would bring its helper thread back.)
//!
//! Dropping [`Signals`] removes the handlers and deregisters the socket.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use signal_hook_registry::SigId;

use super::net::Registered;
use super::reactor::{Direction, Reactor};

pub use rustix::process::Signal;

/// The short name of the signals the node handles (`"Term"`, `"Int"`, `"Hup"`), as
/// [`crate::cli::on_signal`] takes them; `"other"` for the rest.
///
/// ```
/// use chatnode::rt::signal::{name, Signal};
/// assert_eq!(name(Signal::HUP), "Hup");
/// ```
pub fn name(signal: Signal) -> &'static str {
    match signal {
        Signal::TERM => "Term",
        Signal::INT => "Int",
        Signal::HUP => "Hup",
        _ => "other",
    }
}

/// Signals delivered to this process, as a stream. See the module documentation.
pub struct Signals {
    reader: Registered<UnixStream>,
    ids: Vec<SigId>,
}

impl Signals {
    /// Starts catching `signals`. Until this value is dropped, they no longer end the process.
    pub fn new(reactor: Arc<Reactor>, signals: &[Signal]) -> io::Result<Signals> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        let writer = Arc::new(writer);
        let mut ids = Vec::new();
        for &signal in signals {
            let raw = signal.as_raw();
            let writer = writer.clone();
            // SAFETY: the action runs inside a signal handler, so it may only do
            // async-signal-safe work. It does one `write(2)` of a byte from the stack to a
            // non-blocking socket that it keeps alive itself (the Arc): no allocation, no lock,
            // and a full socket makes the write fail with EAGAIN rather than block (the signal
            // is then already pending in the bytes not yet read).
            let id = unsafe {
                signal_hook_registry::register(raw, move || {
                    let _ = (&*writer).write(&[raw as u8]);
                })
            }?;
            ids.push(id);
        }
        Ok(Signals {
            reader: Registered::new(reactor, reader)?,
            ids,
        })
    }

    /// The next signal caught.
    pub async fn next(&mut self) -> io::Result<Signal> {
        loop {
            let mut byte = [0u8; 1];
            let n = poll_fn(|cx| {
                self.reader
                    .poll_io(cx, Direction::Read, |s| (&*s).read(&mut byte), |_| false)
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(signal) = Signal::from_named_raw(i32::from(byte[0])) {
                return Ok(signal);
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}
