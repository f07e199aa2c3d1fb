//! Cooperative scheduling on a one-thread node: a flood in one channel must not starve a
//! client elsewhere. The broker and every connection yield after a bounded amount of work
//! (`chatnode::budget`), so PING/PONG keeps flowing while the flood is still going on.

use crate::common::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The flood stops here at the latest; the round trips must all complete well before.
const MAX_FLOOD_LINES: usize = 400_000;
const ROUND_TRIPS: usize = 20;

#[test]
fn flood_in_one_channel_does_not_stop_ping_elsewhere() {
    for_each_build(|b| {
        let node = Node::start(b, &["--threads", "1", "--sendq", "1048576"]);
        let mut readers = Vec::new();
        let stop = Arc::new(AtomicBool::new(false));
        for i in 0..2 {
            let mut r = node.register(&format!("reader{i}"));
            r.join("#flood");
            // Read and discard as fast as possible, until told to stop.
            let mut stream = r.writer_clone();
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let stop = stop.clone();
            readers.push(thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while !stop.load(Ordering::SeqCst) {
                    match stream.read(&mut buf) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return,
                    }
                }
                drop(r);
            }));
        }
        let mut flooder = node.register("flooder");
        flooder.join("#flood");
        let mut pinger = node.register("pinger");
        pinger.join("#quiet");

        let sent = Arc::new(AtomicUsize::new(0));
        let mut out = flooder.writer_clone();
        let (sent2, stop2) = (sent.clone(), stop.clone());
        let flood = thread::spawn(move || {
            let mut batch = Vec::new();
            for i in 0..100 {
                batch
                    .extend_from_slice(format!("PRIVMSG #flood :flood line {i:03}\r\n").as_bytes());
            }
            while sent2.load(Ordering::SeqCst) < MAX_FLOOD_LINES && !stop2.load(Ordering::SeqCst) {
                if out.write_all(&batch).is_err() {
                    return;
                }
                sent2.fetch_add(100, Ordering::SeqCst);
            }
        });

        // Wait until the flood is really under way before measuring anything.
        assert!(
            poll_until(Duration::from_secs(10), || sent.load(Ordering::SeqCst)
                >= 20_000),
            "the flood did not start"
        );
        for i in 0..ROUND_TRIPS {
            pinger.send(&format!("PING :quiet-{i}"));
            pinger.expect_within(Duration::from_secs(30), |m| {
                m.is("PONG") && m.last() == format!("quiet-{i}")
            });
        }
        let sent_when_done = sent.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        let _ = flood.join();
        for r in readers {
            let _ = r.join();
        }
        eprintln!(
            "[{}] {ROUND_TRIPS} round trips done after {sent_when_done} flood lines",
            b.name
        );
        assert!(
            sent_when_done < MAX_FLOOD_LINES,
            "the round trips completed only after the whole flood ({sent_when_done} lines): \
             the flood starved the quiet client"
        );
        pinger.assert_alive();
    });
}
