"""A TCP forwarder on 127.0.0.1 that can go silent: freeze() stops forwarding both ways without
closing anything (a dead Wi-Fi, a NAT that forgot the flow), thaw() resumes.

While frozen it also accepts new connections and forwards nothing on them, so a reconnect
attempt hangs in its handshake the way it does on a real blackholed path. With `rate` (bytes per
second, each way) it is a slow link instead: everything arrives, late. Its receive buffers are
then small, so the sender's TCP sees the slowness (acknowledgements come at the link's pace), as
on a slow uplink, rather than a relay that takes megabytes at once and forwards them slowly.
"""

import time

import selectors
import socket
import threading


class BlackholeProxy:
    def __init__(self, target_port, target_host="127.0.0.1", rate=None):
        self._target = (target_host, target_port)
        self._rate = rate
        self._listener = socket.socket()
        if rate:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # accepted sockets inherit it
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets = []
        self.accepted = 0
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def freeze(self):
        self._flowing.clear()

    def thaw(self):
        self._flowing.set()

    def close(self):
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass
        for t in self._threads:
            t.join(5)

    def _accept_loop(self):
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                self.accepted += 1
            t = threading.Thread(target=self._pump_pair, args=(client, upstream), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump_pair(self, a, b):
        peer = {a: b, b: a}
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            while not self._closed.is_set():
                if not self._flowing.is_set():
                    self._flowing.wait(0.1)  # frozen: read nothing, so both senders' buffers fill up
                    continue
                for key, _ in sel.select(0.1):
                    try:
                        data = key.fileobj.recv(1 << 16 if self._rate is None else 4096)
                        if not data:
                            raise OSError("closed")
                        peer[key.fileobj].sendall(data)
                        if self._rate:
                            time.sleep(len(data) / self._rate)  # the slow link is what is under test
                    except OSError:
                        for s in (a, b):
                            try:
                                s.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass
                            s.close()
                        return
