"""One WebSocket connection to the hub: auth, heartbeat, reconnect, ordered data with a drop policy.

Threads: a connection thread (connect, read hub messages, schedule heartbeats, back off and
reconnect) and a sender thread (control messages first, then one data item at a time, so a
heartbeat never waits behind more than one IQ frame). Producers never touch the socket.
"""

import collections
import logging
import random
import socket
import ssl
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from . import protocol

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
BACKOFF_RESET_AFTER_S = 10.0
SEEN_IDS = 4096


def backoff_delay(attempt, rng=random.random):
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** min(attempt, 16)))


def redact(url):
    """The URL without a token in its query, for logs."""
    parts = urlsplit(url)
    query = [(k, "***" if k == "token" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


class _Gap:
    __slots__ = ("app_id", "sample_index", "dropped", "reason")

    def __init__(self, app_id, sample_index, dropped, reason):
        self.app_id, self.sample_index, self.dropped, self.reason = app_id, sample_index, dropped, reason


class Transport:
    def __init__(self, url, token, *, on_message, heartbeat, on_connect=None, heartbeat_interval=30.0, ca_file=None,
                 insecure=False, token_in_query=False, max_frames_queued=64, max_message_size=1 << 20,
                 max_text_chars=64 * 1024, open_timeout=5.0, logger=None, rng=random.random):
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"hub URL must start with ws:// or wss://, got {redact(url)!r}")
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0, got {heartbeat_interval}")
        if max_frames_queued < 1:
            raise ValueError(f"max_frames_queued must be >= 1, got {max_frames_queued}")
        self.url = url
        if token and token_in_query:
            sep = "&" if "?" in url else "?"
            self.url = f"{url}{sep}{urlencode({'token': token})}"
        self._headers = {"Authorization": f"Bearer {token}"} if token and not token_in_query else {}
        self._ssl = self._ssl_context(ca_file, insecure) if url.startswith("wss://") else None
        self._on_message = on_message
        self._heartbeat = heartbeat
        self._on_connect = on_connect
        self.heartbeat_interval = heartbeat_interval
        self.max_frames_queued = max_frames_queued
        self._max_message_size = max_message_size
        self._max_text_chars = max_text_chars
        self._open_timeout = open_timeout
        self.log = logger or logging.getLogger("gr-ria.transport")
        self._rng = rng

        self._lock = threading.Condition()
        self._control = collections.deque()
        self._data = collections.deque()  # bytes frames (with sample counts), dict texts, _Gap markers
        self._frames_queued = 0
        self._ws = None
        self._stop = threading.Event()
        self._seen_ids = collections.deque(maxlen=SEEN_IDS)
        self._seen_set = set()
        self._threads = []
        self.last_error = ""

        self.frames_sent = self.bytes_sent = self.samples_sent = 0
        self.frames_dropped = self.samples_dropped = 0
        self.connections = 0

    # ---------------------------------------------------------------- public

    @staticmethod
    def _ssl_context(ca_file, insecure):
        ctx = ssl.create_default_context(cafile=ca_file or None)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    @property
    def connected(self):
        return self._ws is not None

    @property
    def reconnects(self):
        return max(0, self.connections - 1)

    def start(self):
        for target, name in ((self._connection_loop, "ria-ws-conn"), (self._send_loop, "ria-ws-send")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout=0.9):
        """Stops everything; returns within about `timeout` seconds whatever the network does."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        ws = self._ws
        if ws is not None:
            closer = threading.Thread(target=self._close_quietly, args=(ws,), daemon=True)
            closer.start()
            closer.join(max(0.0, deadline - time.monotonic() - 0.2))
            self._abort_socket(ws)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def send_control(self, msg):
        """Queues a JSON message ahead of all data. Never blocks."""
        with self._lock:
            self._control.append(msg)
            self._lock.notify_all()

    def send_text_in_order(self, msg):
        """Queues a JSON message behind the data already queued (stream_info, for example)."""
        with self._lock:
            self._data.append(msg)
            self._lock.notify_all()

    def send_frame(self, payload, nsamples, sample_index, app_id, block, timeout=0.1):
        """Queues one binary frame. With block=False a full queue drops it (counted, and a
        `gap` goes out in its place); with block=True it waits up to `timeout` and returns
        False if there was still no room, so the caller can retry (and stay stoppable)."""
        with self._lock:
            if self._frames_queued >= self.max_frames_queued:
                if block:
                    self._lock.wait_for(lambda: self._frames_queued < self.max_frames_queued or self._stop.is_set(),
                                        timeout)
                    if self._frames_queued >= self.max_frames_queued:
                        return False
                else:
                    self._drop_locked(nsamples, sample_index, app_id,
                                      "backpressure" if self._ws is not None else "disconnected")
                    return True
            self._data.append((payload, nsamples, sample_index, app_id))
            self._frames_queued += 1
            self._lock.notify_all()
            return True

    def wait_drained(self, timeout):
        """True once every queued data item has been sent (or dropped)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._data and not self._control, timeout)

    def wait_until(self, predicate, timeout):
        """Waits until predicate(transport) holds (checked on every state change), or timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout)

    def stats(self):
        return {"frames_sent": self.frames_sent, "frames_dropped": self.frames_dropped,
                "samples_dropped": self.samples_dropped, "bytes_sent": self.bytes_sent,
                "reconnects": self.reconnects}

    def queue_depth(self):
        return self._frames_queued

    # ---------------------------------------------------------------- internals

    def _drop_locked(self, nsamples, sample_index, app_id, reason):
        self.frames_dropped += 1
        self.samples_dropped += nsamples
        last = self._data[-1] if self._data else None
        if (isinstance(last, _Gap) and last.app_id == app_id and last.reason == reason
                and last.sample_index + last.dropped == sample_index):
            last.dropped += nsamples
        else:
            self._data.append(_Gap(app_id, sample_index, nsamples, reason))
        self._lock.notify_all()

    @staticmethod
    def _close_quietly(ws):
        try:
            ws.close()
        except Exception:
            pass

    @staticmethod
    def _abort_socket(ws):
        try:
            ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _connect_once(self):
        return connect(self.url, additional_headers=self._headers, compression=None, ssl=self._ssl,
                       max_size=self._max_message_size, open_timeout=self._open_timeout, close_timeout=0.5,
                       ping_interval=None, user_agent_header="gr-ria")

    def _describe_failure(self, exc):
        if isinstance(exc, InvalidStatus):
            code = exc.response.status_code
            if code in (401, 403):
                return f"the hub refused the agent token (HTTP {code}); register again"
            return f"the hub answered HTTP {code} instead of a WebSocket"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return (f"the hub's TLS certificate is not trusted ({exc.verify_message}); "
                    "give the hub's CA file, or use insecure mode only for testing")
        if isinstance(exc, ConnectionClosed):
            rcvd = exc.rcvd
            return f"connection closed ({rcvd.code} {rcvd.reason})" if rcvd else "connection lost"
        return f"{type(exc).__name__}: {exc}"

    def _connection_loop(self):
        attempt = 0
        while not self._stop.is_set():
            try:
                with self._connect_once() as ws:
                    up_since = time.monotonic()
                    self._serve(ws)
                    if time.monotonic() - up_since >= BACKOFF_RESET_AFTER_S:
                        attempt = 0
            except Exception as e:  # network, TLS, HTTP: all retried
                if not self._stop.is_set():
                    self._note_failure(e)
            if self._stop.is_set():
                break
            delay = backoff_delay(attempt, self._rng)
            attempt += 1
            self._stop.wait(delay)

    def _note_failure(self, exc):
        message = self._describe_failure(exc)
        if message != self.last_error:
            self.log.warning("hub %s: %s", redact(self.url), message)
        with self._lock:
            self.last_error = message
            self._lock.notify_all()

    def _serve(self, ws):
        try:
            # The first frame on every connection is a heartbeat.
            ws.send(protocol.encode(self._heartbeat()))
        except Exception as e:
            self._note_failure(e)
            self._abort_socket(ws)
            return
        self.connections += 1
        self.last_error = ""
        self.log.info("connected to hub %s", redact(self.url))
        if self._on_connect:
            self._on_connect()
        with self._lock:
            self._ws = ws
            self._lock.notify_all()
        next_heartbeat = time.monotonic() + self.heartbeat_interval
        try:
            while not self._stop.is_set():
                try:
                    raw = ws.recv(timeout=min(0.25, max(0.0, next_heartbeat - time.monotonic())))
                except TimeoutError:
                    raw = None
                if raw is not None:
                    self._handle_incoming(raw)
                if time.monotonic() >= next_heartbeat:
                    self.send_control(self._heartbeat())
                    next_heartbeat += self.heartbeat_interval
        except Exception as e:
            if not self._stop.is_set():
                self._note_failure(e)
        finally:
            with self._lock:
                self._ws = None
                self._lock.notify_all()
            self._abort_socket(ws)

    def _handle_incoming(self, raw):
        if isinstance(raw, bytes):
            self._reply_error(None, "binary frames from the hub are not understood by this agent")
            return
        try:
            msg = protocol.decode(raw, self._max_text_chars)
        except protocol.ProtocolError as e:
            self._reply_error(None, f"bad message from hub: {e}")
            return
        msg_id = msg.get("id")
        if msg_id is not None:
            self.send_control(protocol.ack(msg_id))
            if msg_id in self._seen_set:
                return  # already acted on (a resend across a reconnect)
            if len(self._seen_ids) == self._seen_ids.maxlen:
                self._seen_set.discard(self._seen_ids[0])
            self._seen_ids.append(msg_id)
            self._seen_set.add(msg_id)
        if msg["type"] == "ping":
            self.send_control(protocol.pong(msg_id))
            return
        self._on_message(msg)

    def _reply_error(self, app_id, message):
        self.log.warning("%s", message)
        self.send_control(protocol.error(app_id, message))

    def _next_item(self):
        """Waits for something to send while connected; returns (ws, item, is_control)."""
        with self._lock:
            while not self._stop.is_set():
                if self._ws is not None:
                    if self._control:
                        return self._ws, self._control.popleft(), True
                    if self._data:
                        item = self._data.popleft()
                        if isinstance(item, tuple):
                            self._frames_queued -= 1
                            self._lock.notify_all()
                        return self._ws, item, False
                self._lock.wait(0.25)
        return None, None, False

    def _send_loop(self):
        while not self._stop.is_set():
            ws, item, is_control = self._next_item()
            if ws is None:
                return
            try:
                if isinstance(item, tuple):
                    payload, nsamples = item[0], item[1]
                    ws.send(payload)
                    self.frames_sent += 1
                    self.samples_sent += nsamples
                    self.bytes_sent += len(payload)
                elif isinstance(item, _Gap):
                    ws.send(protocol.encode(protocol.gap(item.app_id, item.sample_index, item.dropped, item.reason)))
                else:
                    ws.send(protocol.encode(item))
            except Exception as e:
                self._on_send_failure(ws, item, is_control, e)

    def _on_send_failure(self, ws, item, is_control, exc):
        if not self._stop.is_set():
            self._note_failure(exc)
        self._abort_socket(ws)
        with self._lock:
            if isinstance(item, tuple):
                # The hub never got this frame: account for it as a gap, in order.
                _, nsamples, sample_index, app_id = item
                self.frames_dropped += 1
                self.samples_dropped += nsamples
                self._data.appendleft(_Gap(app_id, sample_index, nsamples, "disconnected"))
            elif isinstance(item, _Gap) or (isinstance(item, dict) and item.get("type") != "heartbeat"):
                # Text is never lost: it goes out on the next connection (a heartbeat goes first anyway).
                (self._control if is_control else self._data).appendleft(item)
