"""Headless Chromium driven over the DevTools protocol: open a page, evaluate JavaScript, take a screenshot."""

import base64
import contextlib
import itertools
import json
import shutil
import time
import urllib.request

import websockets.sync.client as ws_client

from processes import Process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, url, profile_dir, width=1280, height=1000):
        self.process = Process([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                f"--user-data-dir={profile_dir}", "--remote-debugging-port=0",
                                f"--window-size={width},{height}", url])
        port = self.process.wait_line(r"DevTools listening on ws://127.0.0.1:(\d+)/").group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(ws_client.connect(page["webSocketDebuggerUrl"], max_size=1 << 26,
                                                               open_timeout=10))
        self._ids = itertools.count(1)

    def call(self, method, **params):
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=30))
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=20.0, poll=0.1):
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(poll)
        raise AssertionError(f"the page never satisfied {expression}; last value {value!r}")

    def set_viewport(self, width, height):
        """The page's viewport exactly width x height CSS pixels at scale 1 (--window-size includes the window's
        own frame in some Chromium versions)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self._stack.close()
        finally:
            self.process.stop()
