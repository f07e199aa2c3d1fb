#!/usr/bin/env python3
"""The chat page in a real browser: Debian's Chromium, headless, driven through chromedriver's
W3C WebDriver HTTP API (standard library only, no Selenium).

    scripts/browser_test.py --node target/debug/chatnode [--screenshots docs/]

Starts the node (a plain IRC listener and a WebSocket listener, loopback only), two browser
sessions (a laptop-sized and a phone-sized window, each with a fresh profile) and one TCP
client, suckless ii. All three join one channel and each must see the others' messages; the
page must show the member list, the topic and a private message. Then the node is restarted on
the same ports and both pages must reconnect and rejoin by themselves, without showing any
line twice. Last, scroll-back: a TCP client posts 70 numbered lines, a fresh page joins and
shows the latest 50 from the node's history (CHATHISTORY LATEST), and scrolling to the top
fetches the older ones (CHATHISTORY BEFORE), back to the lines from before the restart. Every
wait has a deadline; everything started is stopped at the end. Exit status 0 on success.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

DEADLINE = 20.0  # seconds for any one wait (a loaded CI machine starts Chromium slowly)
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate(proc):
    """SIGTERM, then SIGKILL if it does not go within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(what, check, deadline=DEADLINE):
    """Polls `check` until it returns something true; there is no event to block on in a browser."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # a page still loading, a file not yet created
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Node:
    """The chatnode process, with its stderr collected."""

    def __init__(self, binary, plain, ws, data_dir):
        self.lines = []
        # History in the test's own directory (it survives the restart); loopback exempt from
        # flood control, so the 70 lines of the scroll-back check arrive at once.
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{plain}", "--listen-ws", f"127.0.0.1:{ws}",
             "--shutdown-grace", "1", "--data-dir", data_dir, "--history", "on",
             "--exempt", "127.0.0.0/8"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": "info", "RUST_LOG_STYLE": "never"})
        threading.Thread(target=self._collect, daemon=True).start()
        wait_for("the node's two listeners",
                 lambda: sum("listening on" in l for l in self.lines) >= 2)

    def _collect(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Driver:
    """chromedriver, and the W3C WebDriver calls this test needs."""

    def __init__(self, workdir):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("chromedriver", lambda: self.call("GET", "/status")["ready"])

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode(errors='replace')}")

    def stop(self):
        terminate(self.proc)
        self.log.close()


class Browser:
    """One headless Chromium session with its own fresh profile."""

    def __init__(self, driver, profile, width, height):
        self.d = driver
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                f"--window-size={width},{height}"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
        self.id = driver.call("POST", "/session", caps)["sessionId"]

    def _s(self, path):
        return f"/session/{self.id}{path}"

    def open(self, url):
        self.d.call("POST", self._s("/url"), {"url": url})

    def js(self, script, *args):
        return self.d.call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def element(self, css):
        return self.d.call("POST", self._s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text):
        el = self.element(css)
        self.d.call("POST", self._s(f"/element/{el}/clear"), {})
        self.d.call("POST", self._s(f"/element/{el}/value"), {"text": text})

    def click(self, css):
        self.d.call("POST", self._s(f"/element/{self.element(css)}/click"), {})

    def say(self, text):
        self.type("#input", text)
        self.click("#send-form button")

    def log_text(self):
        return self.js("return document.getElementById('log').innerText")

    def history_idle(self):
        """No CHATHISTORY request of the current conversation is out."""
        return self.js("return document.getElementById('older').dataset.loading !== '1';")

    def scroll_to_top(self):
        self.js("const log = document.getElementById('log'); log.scrollTop = 0;"
                "log.dispatchEvent(new Event('scroll'));")

    def members(self):
        return self.js("return [...document.querySelectorAll('#members li')].map(li => li.innerText)")

    def buffers(self):
        return self.js("return [...document.querySelectorAll('#buffer-list li')].map(li => li.innerText)")

    def status(self):
        return self.js("return document.getElementById('status').innerText")

    def select_buffer(self, name):
        self.js("""for (const b of document.querySelectorAll('#buffer-list button'))
                     if (b.innerText.split('\\n')[0] === arguments[0]) b.click();""", name)

    def screenshot(self, path):
        png = base64.b64decode(self.d.call("GET", self._s("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)

    def close(self):
        try:
            self.d.call("DELETE", self._s(""))
        except Exception:
            pass


class Ii:
    """suckless ii: a TCP IRC client driven through files and FIFOs."""

    def __init__(self, workdir, port, nick):
        self.dir = os.path.join(workdir, "ii")
        self.proc = subprocess.Popen(["ii", "-s", "127.0.0.1", "-p", str(port), "-n", nick, "-i", self.dir],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.server = os.path.join(self.dir, "127.0.0.1")

    def write(self, fifo, line):
        def put():
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
            return True
        wait_for(f"ii's FIFO {fifo}", put)

    def join(self, channel):
        self.write(os.path.join(self.server, "in"), f"/j {channel}")

    def say(self, channel, text):
        self.write(os.path.join(self.server, channel, "in"), text)

    def heard(self, channel, needle):
        path = os.path.join(self.server, channel, "out")
        return os.path.exists(path) and needle in open(path, errors="replace").read()

    def stop(self):
        terminate(self.proc)


def post_lines(port, nick, channel, texts):
    """A plain TCP client that registers, joins, posts `texts` and quits (after a PING's PONG,
    so the node has relayed every line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {channel}\r\n".encode())
        lines = "".join(f"PRIVMSG {channel} :{t}\r\n" for t in texts)
        s.sendall(f"{lines}PING :posted\r\n".encode())
        got = b""
        end = time.monotonic() + DEADLINE
        while b" PONG " not in got:
            if time.monotonic() > end:
                raise AssertionError(f"{nick}: no PONG after posting; got {got[-300:]!r}")
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"{nick}: closed while posting; got {got[-300:]!r}")
            got += chunk
        s.sendall(b"QUIT :done\r\n")


def check_scroll_back(browser, url, plain, screenshot=None):
    """A fresh page reads a channel's history: the latest page on JOIN, older ones on scroll."""
    post_lines(plain, "feeder", "#lobby", [f"history line {i:02}" for i in range(1, 71)])
    browser.open(url)  # a new page: nothing in memory
    browser.type("#nick", "carol")
    browser.type("#channels", "#lobby")
    browser.click("#connect")
    wait_for("carol's page to show the latest history", lambda: "history line 70" in browser.log_text())
    wait_for("the history request to be answered", browser.history_idle)
    text = browser.log_text()
    # One page of 50: lines 21 to 70, nothing older yet, and the page offers more.
    assert "history line 21" in text and "history line 20" not in text, text[-2000:]
    assert browser.js("return !document.getElementById('older').hidden"), "no 'Earlier messages'"
    # Scrolling to the top asks for the page before the oldest line, and so on.
    wait_for("the lines before the first page, on scrolling up",
             lambda: browser.scroll_to_top() or "history line 01" in browser.log_text())
    wait_for("the messages from before the restart, further up",
             lambda: browser.scroll_to_top() or "hello from alice's laptop" in browser.log_text())
    # The node said it has nothing older (a short page): the button goes away.
    wait_for("'Earlier messages' to go once the history is exhausted",
             lambda: browser.js("return document.getElementById('older').hidden"))
    text = browser.log_text()
    for needle in ("history line 01", "history line 35", "history line 70"):
        assert text.count(needle) == 1, f"{needle!r} shown {text.count(needle)} times"
    assert text.index("hello from alice's laptop") < text.index("history line 01") < text.index(
        "history line 70"), "scroll-back out of order"
    if screenshot:
        browser.screenshot(screenshot)


def check(args, workdir):
    plain, ws = free_port(), free_port()
    data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir)
    node = Node(args.node, plain, ws, data_dir)
    stoppers = [node.stop]
    try:
        driver = Driver(workdir)
        stoppers.append(driver.stop)
        laptop = Browser(driver, os.path.join(workdir, "laptop"), 1200, 760)
        stoppers.append(laptop.close)
        phone = Browser(driver, os.path.join(workdir, "phone"), 390, 760)
        stoppers.append(phone.close)
        url = f"http://127.0.0.1:{ws}/"
        for browser, nick in ((laptop, "alice"), (phone, "bob")):
            browser.open(url)
            browser.type("#nick", nick)
            browser.type("#channels", "#lobby")
            browser.click("#connect")
            wait_for(f"{nick} in #lobby", lambda: f"You joined #lobby" in browser.log_text())
        ii = Ii(workdir, plain, "terminal")
        stoppers.append(ii.stop)
        ii.join("#lobby")
        # Every page sees everyone in the member list (the laptop's is always on screen).
        wait_for("alice to see bob and terminal in #lobby",
                 lambda: {"alice", "bob", "terminal"} <= {m.lstrip("@+") for m in laptop.members()})

        laptop.say("/topic Board games on Friday, bring snacks")
        wait_for("the topic on bob's page",
                 lambda: "Board games" in phone.js("return document.getElementById('topic').innerText"))
        laptop.say("hello from alice's laptop")
        wait_for("alice's own line on her page", lambda: "hello from alice's laptop" in laptop.log_text())
        wait_for("bob to read alice", lambda: "hello from alice's laptop" in phone.log_text())
        wait_for("ii to read alice", lambda: ii.heard("#lobby", "hello from alice's laptop"))
        phone.say("hi alice, bob here on the phone")
        wait_for("alice to read bob", lambda: "bob here on the phone" in laptop.log_text())
        wait_for("ii to read bob", lambda: ii.heard("#lobby", "bob here on the phone"))
        ii.say("#lobby", "greetings from a terminal")
        wait_for("alice to read ii", lambda: "greetings from a terminal" in laptop.log_text())
        wait_for("bob to read ii", lambda: "greetings from a terminal" in phone.log_text())
        laptop.say("/me waves")
        wait_for("bob to see the action", lambda: "waves" in phone.log_text())
        # A private message opens a conversation on the other side.
        phone.say("/msg alice are you coming on Friday?")
        wait_for("alice's conversation with bob", lambda: any(b.startswith("bob") for b in laptop.buffers()))
        laptop.select_buffer("bob")
        laptop.say("sure, see you there")
        wait_for("bob to read alice's private answer", lambda: "see you there" in phone.log_text())
        for browser in (laptop, phone):
            browser.select_buffer("#lobby")

        if args.screenshots:
            os.makedirs(args.screenshots, exist_ok=True)
            laptop.screenshot(os.path.join(args.screenshots, "chat-page.png"))
            phone.screenshot(os.path.join(args.screenshots, "chat-page-phone.png"))

        # The node restarts on the same ports: both pages reconnect and rejoin by themselves.
        node.stop()
        wait_for("alice's page to notice", lambda: "offline" in laptop.status())
        node = Node(args.node, plain, ws, data_dir)
        stoppers[0] = node.stop
        wait_for("alice back in #lobby",
                 lambda: {"alice", "bob"} <= {m.lstrip("@+") for m in laptop.members()}, DEADLINE * 2)
        phone.say("back after the restart")
        wait_for("alice to read bob after the restart", lambda: "back after the restart" in laptop.log_text())
        # The rejoin fetched the channel's history again: what the page had is not doubled.
        for browser in (laptop, phone):
            wait_for("the history fetched on rejoining", browser.history_idle)
            text = browser.log_text()
            assert text.count("greetings from a terminal") == 1, text[-2000:]

        shot = os.path.join(args.screenshots, "chat-page-history.png") if args.screenshots else None
        check_scroll_back(laptop, url, plain, shot)
        print("browser test: ok (2 browsers + ii chatted; both pages reconnected after a restart; "
              "scroll-back from history on join and on scrolling up)")
    finally:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception as e:
                print(f"cleanup: {e}", file=sys.stderr)
        if "node" in locals() and node.proc.returncode not in (0, None):
            print("\n".join(node.lines[-40:]), file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--node", required=True, help="the chatnode (or chatnode-tokio) binary")
    p.add_argument("--screenshots",
                   help="directory to save chat-page.png, chat-page-phone.png and chat-page-history.png in")
    args = p.parse_args()
    for tool in (CHROMIUM, CHROMEDRIVER, shutil.which("ii") or "ii"):
        if not os.path.exists(tool):
            print(f"browser test: skipped ({tool} is not installed)")
            return 77
    workdir = tempfile.mkdtemp(prefix="chatnode-browser-")
    try:
        check(args, workdir)
    except Exception:
        for name in ("chromedriver.log",):
            path = os.path.join(workdir, name)
            if os.path.exists(path):
                print(f"--- {name} (tail)\n" + open(path, errors="replace").read()[-3000:], file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
