"""Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol, for tests that
open pages as a person would (tests/test_site.py). Needs websocket-client (the [site] extra).

    with Chromium() as browser:
        page = browser.open("http://127.0.0.1:8000/index.html")   # waits for the load event
        page.evaluate("document.title")
        page.screenshot("shot.png", max_height=5000)
        page.requests, page.failed                                 # what the page loaded, what failed

Chromium runs with --no-sandbox (CI runs as root, where the sandbox refuses to start) and a fresh
profile in a temporary folder; it is started once and stopped (its own process only) on exit.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

WIDTH, HEIGHT = 1400, 1000  # the window: a laptop screen


def find_chromium() -> str | None:
    """The chromium binary ($CHROMIUM, or chromium / chromium-browser on PATH), None if absent."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    def __init__(self, binary: str | None = None, timeout: float = 60.0):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise FileNotFoundError("chromium not found: apt-get install chromium (Debian), or set $CHROMIUM")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="nstlib-chromium-")
        self._proc: subprocess.Popen | None = None
        self._port: int | None = None

    def __enter__(self) -> "Chromium":
        profile = Path(self._profile)
        self._proc = subprocess.Popen(
            [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
             "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}",
             f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = profile / "DevToolsActivePort"  # Chromium writes its port here once it listens
        deadline = time.monotonic() + self.timeout
        while not (active.is_file() and active.read_text().strip()):
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with status {self._proc.returncode} at start")
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f"{self.binary} did not open its DevTools port within {self.timeout:.0f} s")
            time.sleep(0.1)
        self._port = int(active.read_text().split()[0])
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)  # its helpers may still be writing there

    def new_page(self) -> "Page":
        request = urllib.request.Request(f"http://127.0.0.1:{self._port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            target = json.load(response)
        return Page(target["webSocketDebuggerUrl"], self.timeout)

    def open(self, url: str) -> "Page":
        page = self.new_page()
        page.navigate(url)
        return page


class Page:
    """One tab. `requests` (url -> HTTP status) and `failed` (url -> error text) record what the
    last navigation loaded; `exceptions` the JavaScript errors it threw."""

    def __init__(self, ws_url: str, timeout: float):
        import websocket  # websocket-client

        self.timeout = timeout
        self._ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._id = 0
        self._events: list[dict] = []
        self.requests: dict[str, int | None] = {}
        self.failed: dict[str, str] = {}
        self.exceptions: list[str] = []
        self._urls: dict[str, str] = {}
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def _receive(self) -> dict:
        message = json.loads(self._ws.recv())
        if "method" in message:
            self._record(message["method"], message.get("params", {}))
            self._events.append(message)
        return message

    def _record(self, method: str, params: dict) -> None:
        if method == "Network.requestWillBeSent":
            self._urls[params["requestId"]] = params["request"]["url"]
            self.requests.setdefault(params["request"]["url"], None)
        elif method == "Network.responseReceived":
            self.requests[params["response"]["url"]] = params["response"]["status"]
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failed[self._urls.get(params["requestId"], "?")] = params.get("errorText", "failed")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.exceptions.append(details.get("exception", {}).get("description") or details.get("text", "?"))

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for message in self._events:
                if message["method"] == event:
                    self._events.remove(message)
                    return message.get("params", {})
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {self.timeout:.0f} s")
            self._receive()

    def navigate(self, url: str) -> None:
        self._events.clear()
        self.requests.clear()
        self.failed.clear()
        self.exceptions.clear()
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"{url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (a promise is awaited); a thrown error raises."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True,
                           timeout=int(self.timeout * 1000))
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def screenshot(self, path: str | Path, max_height: int = 5000) -> Path:
        """A PNG of the page from the top, the whole page up to `max_height` CSS pixels."""
        height = min(int(self.evaluate("document.documentElement.scrollHeight")), max_height)
        self.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height, deviceScaleFactor=1,
                  mobile=False)
        try:
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            self.send("Emulation.clearDeviceMetricsOverride")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Page.close")
        except Exception:
            pass
        self._ws.close()
