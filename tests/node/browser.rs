//! The chat page in a real browser (issue 12): scripts/browser_test.py drives Debian's
//! Chromium headless through chromedriver, with two browser sessions and one `ii` client in one
//! channel, then restarts the node and checks that both pages reconnect. It reports itself
//! skipped (exit 77) when Chromium, chromedriver or ii is not installed (.ci/run installs them).

use std::process::Command;

use crate::common::*;

#[test]
fn two_browsers_and_ii_chat_and_the_page_reconnects_after_a_restart() {
    if find_on_path("python3").is_none() {
        eprintln!("browser test skipped: no python3");
        return;
    }
    for_each_build(|b| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/browser_test.py");
        let out = Command::new("python3")
            .args([script, "--node", b.path])
            .output()
            .expect("run scripts/browser_test.py");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        match out.status.code() {
            Some(0) => eprintln!("[{}] {}", b.name, text.trim()),
            Some(77) => eprintln!("[{}] {}", b.name, text.trim()),
            _ => panic!("[{}] browser test failed ({}):\n{text}", b.name, out.status),
        }
    });
}
