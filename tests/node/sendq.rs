//! A client that never reads is dropped once its send queue exceeds --sendq.

use crate::common::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

const MAX_LINES: usize = 40_000;
const BATCH: usize = 1;
/// Flood lines the flooder may be ahead of the observer: about 22 KB, well under the SendQ.
const WINDOW: usize = 100;

#[test]
fn slow_consumer_is_dropped_with_sendq_exceeded() {
    for_each_build(|b| {
        // The SendQ must hold a burst: the broker hands out up to 128 events' worth of lines
        // before a writer can run (README, --sendq). 64 KiB does; the slow client, which never
        // reads, still overflows it once its kernel buffers are full.
        let node = Node::start(b, &["--sendq", "65536", "--write-timeout", "2"]);
        // A 4 KiB receive buffer: once slow stops reading, only the server's own socket buffer
        // stands between the flood and its SendQ, whatever the host's TCP defaults are (with
        // defaults of several MiB the flood needed to overflow it could outrun the deadline).
        let mut slow =
            Client::connect_with_small_rcvbuf(node.addr(), &format!("{}:slow", b.name), 4096);
        slow.register_as("slow");
        slow.join("#flood");
        let mut observer = node.register("observer");
        observer.join("#flood");
        let mut flooder = node.register("flooder");
        flooder.join("#flood");
        observer.expect(|m| m.is_from("JOIN", "flooder"));
        // From here on `slow` never reads until the end of the test.

        let stop = Arc::new(AtomicBool::new(false));
        // How many flood lines the observer has read. The flooder stays at most WINDOW lines
        // ahead of it: a reader that keeps up must never be dropped, but one slower than an
        // unthrottled flooder legitimately is (its SendQ fills), which is not what this tests.
        let progress = Arc::new((Mutex::new(0usize), Condvar::new()));

        // The observer reads concurrently until it sees slow's QUIT.
        let seen = progress.clone();
        let obs = thread::spawn(move || {
            let quit = observer.expect_within(Duration::from_secs(30), |m| {
                if m.is_from("PRIVMSG", "flooder") {
                    let (count, changed) = &*seen;
                    *count.lock().unwrap() += 1;
                    changed.notify_all();
                }
                m.is_from("QUIT", "slow")
            });
            (observer, quit)
        });

        // The flooder writes from its own thread (the server keeps reading
        // it, so these writes do not block forever).
        let mut out = flooder.writer_clone();
        let stop2 = stop.clone();
        let flood = thread::spawn(move || {
            let text = "z".repeat(200);
            let mut sent = 0;
            while sent < MAX_LINES && !stop2.load(Ordering::SeqCst) {
                let (count, changed) = &*progress;
                let mut read = count.lock().unwrap();
                while sent >= *read + WINDOW && !stop2.load(Ordering::SeqCst) {
                    // Bounded wait, re-checking `stop` so the thread always ends.
                    read = changed
                        .wait_timeout(read, Duration::from_millis(100))
                        .unwrap()
                        .0;
                }
                drop(read);
                let mut batch = Vec::with_capacity(BATCH * 230);
                for i in 0..BATCH {
                    batch.extend_from_slice(
                        format!("PRIVMSG #flood :{:06} {text}\r\n", sent + i).as_bytes(),
                    );
                }
                if let Err(e) = out.write_all(&batch) {
                    return Err(format!("flooder write failed after {sent} lines: {e}"));
                }
                sent += BATCH;
            }
            Ok(sent)
        });

        let joined = obs.join();
        stop.store(true, Ordering::SeqCst);
        let sent = flood.join().expect("flood thread");
        let (mut observer, quit) = match joined {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        };
        let sent = sent.unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "[{}] flooder sent {sent} lines before slow was dropped",
            b.name
        );
        assert!(
            quit.last().contains("SendQ exceeded"),
            "slow's QUIT reason: {quit}"
        );

        // The node still serves the others.
        observer.assert_alive();
        flooder.assert_alive();
        let mut late = node.register("late");
        late.join("#flood");

        // The server closes slow's socket (slow reads its backlog until EOF).
        let lines = slow.expect_closed_within(Duration::from_secs(30));
        eprintln!(
            "[{}] slow read {} lines before EOF; last: {:?}",
            b.name,
            lines.len(),
            lines.last().map(|m| m.text())
        );
    });
}
