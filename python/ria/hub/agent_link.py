"""One connected agent as the hub sees it: liveness, its session, and the replies it owes us."""

import asyncio
import itertools
import json
import time

from ..wire import protocol
from .recorder import SigmfRecorder
from .spectrum import SpectrumMeter

MISSED_HEARTBEATS = 3  # intervals without a heartbeat before an agent counts as offline
DEFAULT_INTERVAL = 30.0
_command_ids = itertools.count(1)


class StreamState:
    """What the hub knows about the running session (from stream_info, or from the start it sent)."""

    def __init__(self, app_id, sample_rate=0.0, center_frequency=0.0, gain=None, sample_format="cf32"):
        self.app_id = app_id
        self.sample_rate, self.center_frequency, self.gain = sample_rate, center_frequency, gain
        self.sample_format = sample_format
        self.sample_index = 0  # the agent's index of the next sample
        self.frames = self.samples = self.bytes = 0
        self.gaps = self.dropped_samples = 0
        self.started = time.time()

    def as_dict(self):
        return {"app_id": self.app_id, "sample_rate": self.sample_rate, "center_frequency": self.center_frequency,
                "gain": self.gain, "sample_format": self.sample_format, "frames": self.frames,
                "samples": self.samples, "bytes": self.bytes, "gaps": self.gaps,
                "dropped_samples": self.dropped_samples, "started": self.started}


class AgentLink:
    def __init__(self, agent_id, name, ws, hub, clock=time.monotonic):
        self.agent_id, self.name, self.ws, self.hub = agent_id, name, ws, hub
        self._clock = clock
        self.connected_at = time.time()
        self._connected_mono = clock()
        self.online = False  # from the first heartbeat on
        self.last_heartbeat = None  # wall clock, for people
        self._last_beat_mono = None
        self.interval = DEFAULT_INTERVAL
        self._interval_measured = False
        self.hardware, self.stats, self.agent_info = [], {}, None
        self.status = "idle"
        self.stream = None
        self.last_error = None
        self.errors = []  # the last few, newest last
        self.speaks_stream_info = False
        self.meter = SpectrumMeter()
        self.recorder = None
        self.recordings = []
        self._waiters = []  # (predicate, future)

    # ---------------------------------------------------------------- liveness

    def heartbeat_overdue(self):
        if self._last_beat_mono is None:
            return self._clock() - self._connected_mono > MISSED_HEARTBEATS * DEFAULT_INTERVAL
        return self._clock() - self._last_beat_mono > MISSED_HEARTBEATS * self.interval

    def _on_heartbeat(self, msg):
        now = self._clock()
        gap = None if self._last_beat_mono is None else now - self._last_beat_mono
        if gap is not None and gap > 0.05:
            # The interval is whatever this agent uses: the first gap sets it, later ones are averaged in so that
            # one late beat does not stretch it for long.
            self.interval = gap if not self._interval_measured else \
                min(DEFAULT_INTERVAL * 10, 0.5 * self.interval + 0.5 * gap)
            self._interval_measured = True
        self._last_beat_mono = now
        self.last_heartbeat = time.time()
        self.online = True
        self.hardware = [h for h in msg.get("hardware", []) if isinstance(h, str)]
        if isinstance(msg.get("stats"), dict):
            self.stats = msg["stats"]
        if isinstance(msg.get("agent"), dict):
            self.agent_info = msg["agent"]
        if msg.get("status") in ("idle", "streaming"):
            self.status = msg["status"]
            if self.status == "streaming" and self.stream is None and msg.get("app_id"):
                self.stream = StreamState(str(msg["app_id"]))  # joined mid-session (after a hub restart)

    # ---------------------------------------------------------------- frames from the agent

    def on_text(self, text):
        try:
            msg = json.loads(text)
        except ValueError:
            self.hub.log.warning("agent %s sent a text frame that is not JSON (%d chars)", self.agent_id, len(text))
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.hub.log.warning("agent %s sent a message without a type", self.agent_id)
            return
        handler = {"heartbeat": self._on_heartbeat, "status": self._on_status, "error": self._on_error,
                   "stream_info": self._on_stream_info, "gap": self._on_gap}.get(msg["type"])
        if handler is not None:  # others (ack, pong, tx_status) only answer waiters
            handler(msg)
        self._wake(msg)

    def _on_status(self, msg):
        state = msg.get("status")
        if state == "streaming":
            self.status = "streaming"
            if self.stream is None:
                self.stream = StreamState(str(msg.get("app_id", "")))
        elif state == "idle":
            self.status = "idle"
            self._end_recording()

    def _on_error(self, msg):
        text = str(msg.get("message", ""))
        self.last_error = {"message": text, "app_id": msg.get("app_id"), "time": time.time()}
        self.errors = (self.errors + [self.last_error])[-20:]
        self.hub.log.info("agent %s reports: %s", self.agent_id, text)

    def _on_stream_info(self, msg):
        self.speaks_stream_info = True
        s = self.stream
        if s is None or s.app_id != msg.get("app_id"):
            s = self.stream = StreamState(str(msg.get("app_id", "")))
        retuned = (s.center_frequency, s.sample_rate) != (msg.get("center_frequency"), msg.get("sample_rate"))
        s.sample_rate = float(msg.get("sample_rate") or 0.0)
        s.center_frequency = float(msg.get("center_frequency") or 0.0)
        s.gain = msg.get("gain")
        if msg.get("sample_format") in protocol.SAMPLE_FORMATS:
            s.sample_format = msg["sample_format"]
        if isinstance(msg.get("sample_index"), int):
            s.sample_index = msg["sample_index"]
        if retuned:
            self.meter.reset()
        if self.recorder:
            self.recorder.segment(s.sample_format, s.sample_rate, s.center_frequency, s.sample_index)

    def _on_gap(self, msg):
        s = self.stream
        if s is None:
            return
        dropped = msg.get("dropped_samples") if isinstance(msg.get("dropped_samples"), int) else 0
        s.gaps += 1
        s.dropped_samples += dropped
        s.sample_index += dropped
        if self.recorder:
            self.recorder.gap(dropped, msg.get("reason", "?"))
            self.recorder.segment(s.sample_format, s.sample_rate, s.center_frequency, s.sample_index)

    def on_binary(self, payload):
        s = self.stream
        if s is None:  # IQ outside a session the hub knows of: the hub counted it, nothing else to do
            return
        n = len(payload) // protocol.BYTES_PER_SAMPLE[s.sample_format]
        s.frames += 1
        s.samples += n
        s.bytes += len(payload)
        s.sample_index += n
        self.meter.feed(payload, s.sample_format)
        if self.recorder:
            self.recorder.write(payload)
        if self.hub.republisher:
            self.hub.republisher.publish(self.agent_id, payload, s.sample_format)

    # ---------------------------------------------------------------- commands to the agent

    async def command(self, msg, timeout, record_to=None):
        """Sends a hub message with a fresh id; waits for the ack (our agents) or the status it causes.

        Returns {"id", "acked", "status", "error"}. Agents that do not acknowledge (the RIA agent)
        are recognised by their heartbeat, which has no `agent` field; for them the ack is None.
        """
        msg = dict(msg, id=f"hub-{next(_command_ids)}")
        kind = msg["type"]
        expects_ack = self.agent_info is not None
        want_status = {"start": "streaming", "stop": "idle"}.get(kind)
        acked = self._expect(lambda m: m.get("type") == "ack" and m.get("id") == msg["id"]) if expects_ack else None
        status = self._expect(lambda m: m.get("type") == "status" and m.get("status") == want_status) \
            if want_status else None
        error = self._expect(lambda m: m.get("type") == "error")
        if kind == "start":
            self._begin_session(msg, record_to)
        await self.ws.send_str(protocol.encode(msg))
        if kind == "configure" and not self.speaks_stream_info and self.stream:
            self._apply_config(self.stream, msg.get("radio_config", {}))
        result = {"id": msg["id"], "acked": None, "status": None, "error": None}
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            if acked:
                result["acked"] = await self._until(acked, deadline, error)
            if status and not result["error"]:
                got = await self._until(status, deadline, error)
                result["status"] = want_status if got else None
            if kind == "configure":  # a rejected value comes back as an error right after the ack
                await self._until(None, min(deadline, asyncio.get_running_loop().time() + 0.3), error)
            if error.done():
                result["error"] = error.result().get("message")
        finally:
            self._cancel(acked, status, error)
        return result

    async def _until(self, future, deadline, error):
        remaining = deadline - asyncio.get_running_loop().time()
        waitables = [f for f in (future, error) if f is not None]
        if remaining <= 0:
            return bool(future and future.done())
        await asyncio.wait(waitables, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        return bool(future and future.done())

    def _begin_session(self, msg, record_to):
        rc = msg.get("radio_config", {})
        self.stream = StreamState(str(msg.get("app_id")), sample_format=rc.get("sample_format", "cf32"))
        self._apply_config(self.stream, rc)
        self.meter.reset()
        self.last_error = None
        self._end_recording()
        if record_to:  # opened before the start goes out, so the session's first frame is in the file
            self._open_recorder(record_to)

    @staticmethod
    def _apply_config(stream, rc):
        rc = {protocol.KEY_ALIASES.get(k, k): v for k, v in rc.items()}
        for key in ("sample_rate", "center_frequency", "gain"):
            if isinstance(rc.get(key), (int, float)):
                setattr(stream, key, float(rc[key]))

    def _expect(self, predicate):
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def _wake(self, msg):
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(msg):
                future.set_result(msg)

    def _cancel(self, *futures):
        self._waiters = [(p, f) for p, f in self._waiters if f not in futures]

    # ---------------------------------------------------------------- recording

    def start_recording(self, folder):
        if self.recorder:
            return self.recorder
        if self.stream is None or self.status != "streaming":
            raise ValueError(f"agent {self.agent_id} is not streaming; start a session first")
        return self._open_recorder(folder)

    def _open_recorder(self, folder):
        s = self.stream
        self.recorder = SigmfRecorder(folder, self.agent_id, self.name, s.app_id)
        self.recorder.segment(s.sample_format, s.sample_rate, s.center_frequency, s.sample_index)
        return self.recorder

    def _end_recording(self):
        if self.recorder:
            self.recorder.close()
            self.recordings.extend(self.recorder.files)
            self.recorder = None

    def stop_recording(self):
        files = self.recorder.files if self.recorder else []
        self._end_recording()
        return files

    def closed(self):
        self._end_recording()
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters = []

    # ---------------------------------------------------------------- views

    def summary(self):
        return {"agent_id": self.agent_id, "name": self.name, "online": self.online, "status": self.status,
                "hardware": self.hardware, "last_heartbeat": self.last_heartbeat, "interval": round(self.interval, 2),
                "stats": self.stats, "agent": self.agent_info, "connected_at": self.connected_at,
                "stream": self.stream.as_dict() if self.stream else None, "last_error": self.last_error,
                "recording": self.recorder.meta_path if self.recorder else None}
