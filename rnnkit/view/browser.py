"""Headless Chromium driven over the Chrome DevTools Protocol, for the view's browser test and its
README screenshot. Chromium comes from the system's packages (Debian: ``apt-get install chromium``,
``make browser``); nothing is downloaded. The protocol runs over a pipe
(``--remote-debugging-pipe``: commands in on fd 3, answers out on fd 4, each message ended by a
NUL byte), so no websocket client is needed.

    with Browser() as b:
        b.goto("http://127.0.0.1:8000/#text=hello")
        b.wait("document.body.dataset.busy === '0'")
        b.hover("#tokens .tok")
        b.screenshot("page.png")
"""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """Chromium missing, failed to start, answered with an error, or a wait timed out."""


def find_chromium():
    """The Chromium (or Chrome) executable: $RNNKIT_CHROMIUM, else the first of NAMES on the
    PATH; None when there is none."""
    given = os.environ.get("RNNKIT_CHROMIUM")
    if given:
        return given if shutil.which(given) else None
    return next((shutil.which(n) for n in NAMES if shutil.which(n)), None)


class Browser:
    """One headless browser with one page; ``timeout`` (seconds) bounds every wait."""

    def __init__(self, binary=None, width=1280, height=900, timeout=30):
        binary = binary or find_chromium()
        if binary is None:
            raise BrowserError("no Chromium found (install it: make browser, or apt-get install "
                               "chromium; or set RNNKIT_CHROMIUM)")
        self.timeout, self.errors, self._buf, self._id, self._events = timeout, [], b"", 0, []
        self.profile = tempfile.mkdtemp(prefix="rnnkit-chromium-")
        cmd_r, self._cmd = _high(os.pipe())   # we write commands, Chromium reads them on fd 3
        self._out, out_w = _high(os.pipe())   # Chromium writes answers on fd 4
        flags = ["--headless", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                 "--mute-audio", "--disable-dev-shm-usage", f"--user-data-dir={self.profile}",
                 f"--window-size={width},{height}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--no-sandbox")   # Chromium's sandbox refuses to run as root
        # a small Python moves the pipe ends to fds 3 and 4 and execs Chromium (not preexec_fn,
        # unsafe while other threads run, such as a view server under test; not sh, whose
        # redirections take one-digit descriptors only)
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", EXEC_ON_3_4, str(cmd_r), str(out_w),
                                          binary, *flags, "about:blank"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, pass_fds=(cmd_r, out_w))
        finally:
            os.close(cmd_r)
            os.close(out_w)
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
            self.session = self.call("Target.attachToTarget", {"targetId": target["targetId"],
                                                               "flatten": True}, session=False)["sessionId"]
            for domain in ("Page", "Runtime"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                             "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ the protocol
    def call(self, method, params=None, session=True):
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._cmd, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._next(self.timeout)
            if m.get("id") == self._id:
                if "error" in m:
                    raise BrowserError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})

    def _next(self, timeout):
        """The next message from Chromium (an event is also noted before it is returned)."""
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {timeout} s")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium closed its DevTools pipe (it crashed or exited)")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        m = json.loads(raw)
        if "method" in m:
            self._note(m)
        return m

    def _note(self, event):
        self._events.append(event["method"])
        p = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append(d.get("exception", {}).get("description") or d.get("text"))
        elif event["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))

    # ------------------------------------------------------------ the page
    def goto(self, url):
        """Load ``url`` and wait for its load event."""
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while "Page.loadEventFired" not in self._events:
            self._next(max(0.1, deadline - time.monotonic()))

    def eval(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(f"{expression[:80]!r}: {d.get('exception', {}).get('description') or d.get('text')}")
        return r["result"].get("value")

    def wait(self, expression, timeout=None):
        """Wait until the expression is truthy in the page; its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            v = self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(0.1)

    def center(self, selector):
        box = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
                        f" e.scrollIntoView({{block: 'nearest'}}); const r = e.getBoundingClientRect();"
                        f" return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        if box is None:
            raise BrowserError(f"no element {selector!r} on the page")
        return box

    def hover(self, selector):
        x, y = self.center(selector)
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def click(self, selector):
        x, y = self.center(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                   "clickCount": 1})

    def type(self, selector, text, replace=True):
        """Focus the element and type ``text`` into it as keyboard input (input events fire)."""
        self.click(selector)
        if replace:
            self.eval(f"document.querySelector({json.dumps(selector)}).select()")
        self.call("Input.insertText", {"text": text})

    def choose_file(self, selector, path):
        """Choose ``path`` in the file input ``selector`` as a user would in its dialog (its
        change event fires)."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise BrowserError(f"no element {selector!r} on the page")
        self.call("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node})

    def key(self, key, code=None, keycode=0):
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code or key,
                                                 "windowsVirtualKeyCode": keycode})

    def screenshot(self, path):
        """Write a PNG of the viewport to ``path``."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    # ------------------------------------------------------------ the end
    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.call("Browser.close", session=False)
                except (BrowserError, OSError):
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            for fd in (self._cmd, self._out):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


EXEC_ON_3_4 = ("import os, sys; r, w = map(int, sys.argv[1:3]); os.dup2(r, 3); os.dup2(w, 4); "
               "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")


def _high(fds):
    """The pipe's two ends moved to descriptors above 9: neither is then 3 or 4, where the child
    wants them (closed on exec here; pass_fds keeps them for the shell)."""
    out = []
    for fd in fds:
        out.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return out
