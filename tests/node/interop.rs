//! Interoperability with a third-party client: suckless `ii` (1.8).
//!
//! ii 1.8, checked against its man page and a recorded session: it sends
//! `NICK n` / `USER n localhost HOST :n` on connect, creates
//! PREFIX/HOST/{in,out} (`in` is a FIFO), creates PREFIX/HOST/#chan/{in,out}
//! as soon as `/j #chan` is written to the server `in`, writes text written
//! to a channel `in` as `PRIVMSG #chan :text`, answers PING, and appends
//! `<unixtime> <nick> text` lines to the channel `out` file.

use crate::common::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const FILE_DEADLINE: Duration = Duration::from_secs(10);
/// When set (`.ci/run` sets it), a missing `ii` fails the test instead of skipping it.
const REQUIRE_II: &str = "CHATNODE_REQUIRE_II";
/// O_NONBLOCK on Linux: opening a FIFO for writing fails (ENXIO) instead of
/// blocking while ii does not have it open for reading yet.
const O_NONBLOCK: i32 = 0o4000;

/// Kills ii when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ii_diagnostics(dir: &TempDir) -> String {
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<{e}>"))
    };
    format!(
        "ii stdout (raw IRC):\n{}\nii stderr:\n{}\nserver out:\n{}\n#interop out:\n{}",
        read(&dir.join("ii.stdout")),
        read(&dir.join("ii.stderr")),
        read(&dir.join("irc/127.0.0.1/out")),
        read(&dir.join("irc/127.0.0.1/#interop/out")),
    )
}

/// Writes `line` into one of ii's FIFOs once ii has it open.
fn write_fifo(ii: &mut KillOnDrop, dir: &TempDir, fifo: &Path, line: &str) {
    let mut last_err = String::new();
    let opened = poll_until(FILE_DEADLINE, || {
        if let Ok(Some(st)) = ii.0.try_wait() {
            panic!("ii exited ({st}) early\n{}", ii_diagnostics(dir));
        }
        match OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(fifo)
        {
            Ok(mut f) => {
                f.write_all(line.as_bytes()).expect("write to ii fifo");
                true
            }
            Err(e) => {
                last_err = e.to_string();
                false
            }
        }
    });
    assert!(
        opened,
        "could not open {} for writing within {FILE_DEADLINE:?}: {last_err}\n{}",
        fifo.display(),
        ii_diagnostics(dir)
    );
}

#[test]
fn ii_joins_talks_and_receives() {
    let Some(ii_path) = find_on_path("ii") else {
        // CI installs ii and sets this, so a missing ii fails there instead of passing quietly.
        if std::env::var_os(REQUIRE_II).is_some() {
            panic!("{REQUIRE_II} is set but ii is not on PATH (apt-get install ii)");
        }
        report_skip(
            "ii_joins_talks_and_receives",
            "needs the third-party client ii (apt-get install ii)",
        );
        return;
    };
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut harness = node.register("harness");
        harness.join("#interop");

        let dir = TempDir::new("ii");
        let prefix = dir.join("irc");
        let child = Command::new(&ii_path)
            .arg("-s")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(node.addr().port().to_string())
            .arg("-n")
            .arg("iibot")
            .arg("-f")
            .arg("ii bot")
            .arg("-i")
            .arg(&prefix)
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("ii.stdout")).unwrap())
            .stderr(File::create(dir.join("ii.stderr")).unwrap())
            .spawn()
            .expect("spawn ii");
        let mut ii = KillOnDrop(child);

        let server_dir = prefix.join("127.0.0.1");
        let chan_dir = server_dir.join("#interop");

        // ii joins #interop: the harness sees the JOIN.
        write_fifo(&mut ii, &dir, &server_dir.join("in"), "/j #interop\n");
        harness.expect(|m| m.is_from("JOIN", "iibot") && m.param(0) == "#interop");

        // ii speaks: the harness receives the PRIVMSG.
        write_fifo(&mut ii, &dir, &chan_dir.join("in"), "hello from ii\n");
        let m = harness.expect(|m| m.is_from("PRIVMSG", "iibot"));
        assert_eq!(m.param(0), "#interop", "{m}");
        assert_eq!(m.last(), "hello from ii", "{m}");

        // The harness speaks: ii's #interop/out gets the line.
        harness.send("PRIVMSG #interop :hello ii, from the harness ✓");
        let out = chan_dir.join("out");
        let seen = poll_until(FILE_DEADLINE, || {
            file_contains(&out, "<harness> hello ii, from the harness ✓")
        });
        assert!(
            seen,
            "ii's #interop/out lacks the harness line\n{}",
            ii_diagnostics(&dir)
        );
        harness.assert_alive();
        drop(ii);
    });
}
