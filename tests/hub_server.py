"""A real WebSocket hub endpoint for the tests: 127.0.0.1, an ephemeral port, its own thread.

It checks the agent token (Bearer header or ?token=), records every frame in arrival order,
can send to the agent, drop the connection, restart on the same port, and read slowly.
"""

import asyncio
import http
import json
import threading
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve


TOKEN = "s3cret-token"


class HubServer:
    def __init__(self, token=TOKEN, ssl_context=None, read_delay=0.0, port=0):
        self.token = token
        self.ssl_context = ssl_context
        self.read_delay = read_delay
        self.port = port
        self.received = []  # ("text", dict) or ("binary", bytes), in arrival order
        self.connections = 0
        self.disconnections = 0  # connections whose every message is in received
        self.rejected = 0
        self.auth_seen = []  # "header" or "query" per accepted connection
        self._cond = threading.Condition()
        self._loop = None
        self._server = None
        self._ws = None
        self._thread = None

    # ---- life cycle

    def start(self):
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test hub did not start")
        return self

    def _run(self, ready):
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._open())
        ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._close_server())
        self._loop.close()

    async def _open(self):
        self._server = await serve(self._handler, "127.0.0.1", self.port, process_request=self._auth,
                                   ssl=self.ssl_context, compression=None, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_server(self):
        self._server.close()
        await self._server.wait_closed()

    def stop(self):
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def restart(self):
        """Stops and starts again on the same port (a hub restart)."""
        self.stop()
        self._loop = None
        return self.start()

    def url(self, agent_id="agent-1"):
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/screens/agent/ws?agent_id={agent_id}"

    # ---- protocol side

    def _auth(self, connection, request):
        header = request.headers.get("Authorization", "")
        query = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if header == f"Bearer {self.token}":
            connection.auth_way = "header"
            return None
        if query == self.token:
            connection.auth_way = "query"
            return None
        with self._cond:
            self.rejected += 1
            self._cond.notify_all()
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "bad or missing token\n")

    async def _handler(self, ws):
        self._ws = ws
        with self._cond:
            self.connections += 1
            self.auth_seen.append(ws.auth_way)
            self._cond.notify_all()
        try:
            async for message in ws:
                if self.read_delay:
                    await asyncio.sleep(self.read_delay)
                item = ("binary", message) if isinstance(message, bytes) else ("text", json.loads(message))
                with self._cond:
                    self.received.append(item)
                    self._cond.notify_all()
        except Exception:
            pass
        finally:
            with self._cond:
                self.disconnections += 1
                self._cond.notify_all()
            if self._ws is ws:
                self._ws = None

    def send(self, msg):
        ws = self._ws
        assert ws is not None, "no agent connected"
        text = msg if isinstance(msg, str) else json.dumps(msg)
        asyncio.run_coroutine_threadsafe(ws.send(text), self._loop).result(5)

    def send_bytes(self, data, timeout=5):
        """One binary frame; waits while the agent holds the connection back (TCP back-pressure)."""
        ws = self._ws
        assert ws is not None, "no agent connected"
        asyncio.run_coroutine_threadsafe(ws.send(bytes(data)), self._loop).result(timeout)

    def drop_connection(self):
        ws = self._ws
        if ws is not None:
            asyncio.run_coroutine_threadsafe(ws.close(1012, "test drop"), self._loop).result(5)

    # ---- looking at what arrived

    def wait_for(self, predicate, timeout=10.0):
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def texts(self, kind=None):
        with self._cond:
            return [m for t, m in self.received if t == "text" and (kind is None or m.get("type") == kind)]

    def wait_text(self, kind, timeout=10.0, count=1):
        ok = self.wait_for(lambda s: len(s.texts(kind)) >= count, timeout)
        return self.texts(kind)[count - 1] if ok else None

    def binary(self):
        with self._cond:
            return [m for t, m in self.received if t == "binary"]

    def binary_bytes(self):
        return sum(len(b) for b in self.binary())
