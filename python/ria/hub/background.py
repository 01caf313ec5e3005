"""A hub running in a thread of this process (for the demo): start, wait until it listens, stop."""

import asyncio
import threading

from .server import serve


class BackgroundHub:
    def __init__(self, config):
        self.config = config
        self.url = self.hub = None
        self._ready = threading.Event()
        self._loop = self._task = None
        self._error = None
        self._thread = threading.Thread(target=self._main, name="ria-hub", daemon=True)

    def start(self, timeout=10.0):
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            raise RuntimeError(f"the hub did not start: {self._error or 'timed out'}")
        return self

    def _main(self):
        async def main():
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()

            def ready(hub, url):
                self.hub, self.url = hub, url
                self._ready.set()
            try:
                await serve(self.config, ready)
            except asyncio.CancelledError:
                pass
        try:
            asyncio.run(main())
        except Exception as e:  # reported by start()
            self._error = e
            self._ready.set()

    def stop(self, timeout=10.0):
        if self._loop and self._task:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
