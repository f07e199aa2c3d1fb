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
        let stop_readers = Arc::new(AtomicBool::new(false));
        // Flood lines each reader has received: what the server handled and relayed, not what
        // the flooder managed to write.
        let received: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::default()).collect();
        for (i, count) in received.iter().enumerate() {
            let mut r = node.register(&format!("reader{i}"));
            r.join("#flood");
            // Read and count as fast as possible, until told to stop.
            let mut stream = r.writer_clone();
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let (stop, count) = (stop_readers.clone(), count.clone());
            readers.push(thread::spawn(move || -> Result<(), String> {
                let mut buf = vec![0u8; 1 << 16];
                while !stop.load(Ordering::SeqCst) {
                    match stream.read(&mut buf) {
                        Ok(0) => return Err("the server closed the reader".into()),
                        Ok(n) => {
                            let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                            count.fetch_add(lines, Ordering::SeqCst);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(e) => return Err(format!("reader: {e}")),
                    }
                }
                drop(r);
                Ok(())
            }));
        }
        let mut flooder = node.register("flooder");
        flooder.join("#flood");
        let mut pinger = node.register("pinger");
        pinger.join("#quiet");

        let sent = Arc::new(AtomicUsize::new(0));
        let stop_flood = Arc::new(AtomicBool::new(false));
        let mut out = flooder.writer_clone();
        let (sent2, stop2) = (sent.clone(), stop_flood.clone());
        let flood = thread::spawn(move || -> Result<(), String> {
            let mut batch = Vec::new();
            for i in 0..100 {
                batch
                    .extend_from_slice(format!("PRIVMSG #flood :flood line {i:03}\r\n").as_bytes());
            }
            while sent2.load(Ordering::SeqCst) < MAX_FLOOD_LINES && !stop2.load(Ordering::SeqCst) {
                out.write_all(&batch)
                    .map_err(|e| format!("the flooder's write failed: {e}"))?;
                sent2.fetch_add(100, Ordering::SeqCst);
            }
            Ok(())
        });

        // Wait until the flood is really under way (relayed, not just written) before measuring.
        let relayed = || {
            received
                .iter()
                .map(|c| c.load(Ordering::SeqCst))
                .min()
                .unwrap()
        };
        assert!(
            poll_until(Duration::from_secs(10), || relayed() >= 5_000),
            "the flood did not reach the readers"
        );
        let relayed_before = relayed();
        for i in 0..ROUND_TRIPS {
            pinger.send(&format!("PING :quiet-{i}"));
            pinger.expect_within(Duration::from_secs(30), |m| {
                m.is("PONG") && m.last() == format!("quiet-{i}")
            });
        }
        let sent_when_done = sent.load(Ordering::SeqCst);
        let relayed_during = relayed() - relayed_before;
        // The flooder is still connected and served: its PING comes back after its backlog.
        stop_flood.store(true, Ordering::SeqCst);
        let flood_result = flood.join().expect("flood thread");
        // Its socket may still hold megabytes of flood: a generous (bounded) deadline.
        flooder.send("PING :flooder-alive");
        flooder.expect_within(Duration::from_secs(60), |m| {
            m.is("PONG") && m.last() == "flooder-alive"
        });
        stop_readers.store(true, Ordering::SeqCst);
        for r in readers {
            r.join()
                .expect("reader thread")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        flood_result.unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "[{}] {ROUND_TRIPS} round trips done after {sent_when_done} flood lines; each reader \
             got at least {relayed_during} flood lines meanwhile",
            b.name
        );
        assert!(
            relayed_during > 0,
            "the readers of #flood got only {relayed_during} lines during the round trips: \
             the flood was not being served"
        );
        assert!(
            sent_when_done < MAX_FLOOD_LINES,
            "the round trips completed only after the whole flood ({sent_when_done} lines): \
             the flood starved the quiet client"
        );
        pinger.assert_alive();
    });
}
