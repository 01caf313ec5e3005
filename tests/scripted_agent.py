"""An agent the test scripts message by message over a real WebSocket to a real hub process: to play a
peer that speaks only the base protocol (like the RIA agent: no acks, no stream_info), or a hostile one."""

import json
import threading
import time

from websockets.sync.client import connect


class ScriptedAgent:
    def __init__(self, hub_url, token, agent_id=None, on_message=None):
        url = hub_url.replace("http://", "ws://") + "/screens/agent/ws" + (f"?agent_id={agent_id}" if agent_id else "")
        self.ws = connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None,
                          open_timeout=10)
        self.received = []  # what the hub sent, decoded
        self.closed = threading.Event()
        self.close_code = self.close_reason = None
        self.on_message = on_message  # called in the reader thread with each decoded message, before it is kept
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for message in self.ws:
                decoded = json.loads(message) if isinstance(message, str) else message
                if self.on_message:
                    self.on_message(decoded)
                with self._cond:
                    self.received.append(decoded)
                    self._cond.notify_all()
        except Exception:
            pass
        finally:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason
            self.closed.set()
            with self._cond:
                self._cond.notify_all()

    def send(self, msg):
        self.ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))

    def send_quietly(self, msg):
        """send() from a player's thread: the test may have closed the connection under it."""
        try:
            self.send(msg)
        except Exception:  # noqa: BLE001
            pass

    def heartbeat(self, hardware=("mock",), status="idle", app_id=None, **extra):
        msg = {"type": "heartbeat", "hardware": list(hardware), "status": status, "capabilities": ["rx"],
               "tx_enabled": False, **extra}
        if app_id is not None:
            msg["app_id"] = app_id
        self.send(msg)

    def wait_message(self, kind, timeout=10.0, count=1):
        """The count-th message of this type from the hub, or None."""
        def found():
            matches = [m for m in self.received if isinstance(m, dict) and m.get("type") == kind]
            return matches[count - 1] if len(matches) >= count else None
        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.closed.is_set(), timeout)
            return found()

    def close(self):
        self.ws.close()
        self._reader.join(5)


class TxPlayer:
    """A gr-ria-like TX side for a ScriptedAgent (docs/protocol.md §6), checking interlocks with wire.tx and
    playing what it receives at `play_rate` samples a second in a thread of its own.

    progress=False plays an agent that reports no progress and no queue (the RIA agent 0.1.7); answer=False one
    that never answers tx_start; stop_answer=False one that never confirms a stop. What the hub did is measured
    here, on the agent's side: `max_unplayed` (received − played, at every frame), `arrivals` (seconds since armed,
    samples received), `frames`, `configures` (samples received when each arrived), `after_stop` (samples that
    came after tx_stop)."""

    def __init__(self, agent, interlocks, queue_samples=20000, play_rate=200e3, progress=True, answer=True,
                 stop_answer=True, advertise=True, policy_underrun=True, keep=True):
        from gnuradio.ria.wire import tx as wire_tx

        self.wire_tx = wire_tx
        self.agent, self.interlocks = agent, interlocks
        self.queue_samples, self.play_rate = queue_samples, play_rate
        self.progress, self.answer, self.stop_answer = progress, answer, stop_answer
        self.advertise, self.policy_underrun, self.keep = advertise, policy_underrun, keep
        self.lock = threading.Lock()
        self.session = None  # app_id
        self.received = self.played = 0
        self.max_unplayed = 0
        self.arrivals, self.frames, self.data, self.configures = [], [], [], []
        self.after_stop = 0
        self.stopped = False
        self.ended = threading.Event()
        self._armed_at = None
        self._thread = None
        agent.on_message = self._on_message

    def heartbeat(self, **extra):
        fields = self.interlocks.heartbeat_fields() if self.advertise else {"capabilities": ["rx", "tx"],
                                                                             "tx_enabled": True}
        self.agent.heartbeat(**{**fields, "agent": {"name": "scripted", "version": "0"}, **extra})

    def _send(self, msg):
        self.agent.send_quietly(msg)

    def _on_message(self, msg):
        if isinstance(msg, bytes):
            return self._on_frame(msg)
        if msg.get("id") is not None:
            self._send({"type": "ack", "id": msg["id"]})
        kind = msg.get("type")
        if kind == "tx_start":
            self._on_start(msg)
        elif kind == "tx_configure":
            with self.lock:
                self.configures.append((self.received, msg["radio_config"]))
                index = self.received
            rc = msg["radio_config"]
            self._send(self.wire_tx.tx_info(msg["app_id"], index, rc.get("tx_sample_rate", 1.0),
                                            rc.get("tx_center_frequency", 1.0), rc.get("tx_gain", 0.0)))
        elif kind == "tx_stop":
            with self.lock:
                app_id, self.session, self.stopped = self.session, None, True
            if app_id is None:
                self._send(self.wire_tx.tx_status(msg.get("app_id"), "done", "no TX session"))
            elif self.stop_answer:
                self._send(self.wire_tx.tx_status(app_id, "done", samples_played=self.played))
            self.ended.set()

    def _on_start(self, msg):
        if not self.answer:
            return
        clean, errors = self.wire_tx.normalize(msg.get("radio_config"), "tx_start")
        if not self.interlocks.enabled:
            errors = ["TX is disabled on this agent"]
        errors += self.interlocks.errors(clean)
        if self.session is not None:
            errors.append(f"TX is already active (app_id {self.session})")
        if errors:
            return self._send(self.wire_tx.tx_status(msg["app_id"], "error", "; ".join(errors)))
        with self.lock:
            self.session, self.stopped = msg["app_id"], False
            self.received = self.played = self.max_unplayed = 0
            self._armed_at = time.monotonic()
        extra = {"queue_samples": self.queue_samples} if self.progress else {}
        self._send(self.wire_tx.tx_status(msg["app_id"], "armed", **extra,
                                          **{k: clean[k] for k in ("tx_sample_rate", "tx_center_frequency",
                                                                   "tx_gain")}))
        self._thread = threading.Thread(target=self._play, args=(msg["app_id"],), daemon=True)
        self._thread.start()

    def _on_frame(self, payload):
        with self.lock:
            n = len(payload) // 8
            if self.session is None:
                self.after_stop += n
                return
            self.received += n
            self.frames.append(n)
            if self.keep:
                self.data.append(payload)
            self.arrivals.append((time.monotonic() - self._armed_at, self.received))
            self.max_unplayed = max(self.max_unplayed, self.received - self.played)

    def _play(self, app_id):
        """Plays at play_rate; reports progress every quarter queue or 100 ms; ends on an underrun (pause)."""
        last = time.monotonic()
        reported, reported_at, dry_since, transmitting = 0, last, None, False
        while True:
            time.sleep(0.01)
            now = time.monotonic()
            with self.lock:
                if self.session != app_id:
                    return
                self.played = min(self.received, self.played + int(self.play_rate * (now - last)))
                played, received = self.played, self.received
            last = now
            if played and not transmitting:
                transmitting = True
                self._send(self.wire_tx.tx_status(app_id, "transmitting"))
            if self.progress and played != reported and (played - reported >= self.queue_samples // 4 or
                                                          now - reported_at >= 0.1):
                self._send(self.wire_tx.tx_progress(app_id, received, played, received - played))
                reported, reported_at = played, now
            dry_since = (dry_since or now) if transmitting and played == received else None
            if self.policy_underrun and dry_since and now - dry_since > 0.1:
                with self.lock:
                    if self.session != app_id:
                        return
                    self.session = None
                self._send(self.wire_tx.tx_status(app_id, "underrun", samples_played=played))
                self.ended.set()
                return

    def samples(self):
        import numpy as np
        return np.frombuffer(b"".join(self.data), np.complex64)
