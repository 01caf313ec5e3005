"""One connected agent as the hub sees it: liveness, its session, and the replies it owes us.

The session the hub shows and records is what the agent confirmed (a `status`, a `stream_info`,
or IQ after a start), never what the hub asked for: a refused start or configure changes nothing.
"""

import asyncio
import contextlib
import itertools
import logging
import secrets
import time

from ..wire import protocol
from ..wire import tx as wire_tx
from . import limits
from .audio_in import AudioIn, stream_settings
from .recorder import SigmfRecorder
from .spectrum import SpectrumMeter
from .wav_recorder import WavRecorder

MISSED_HEARTBEATS = 3  # intervals without a heartbeat before an agent counts as offline
DEFAULT_INTERVAL = 30.0
RADIO_LOST = "SDR disconnected"
MAX_CAPABILITIES = 16
LEVEL_KEYS = ("speaker_dbfs", "mic_dbfs", "out_dbfs")
VOICE_STATS = ("erle_db", "echo_delay_ms", "drift_ppm", "speaker_latency_ms", "mic_latency_ms", "speaker_queue_ms",
               "mic_queue_ms", "audio_frames_sent", "audio_frames_dropped", "audio_frames_received",
               "audio_frames_played", "audio_frames_concealed")
# Command ids are unique across hub processes: an agent de-duplicates the ids it has seen, so a
# restarted hub that counted from 1 again would have its first commands dropped as repeats.
_HUB_RUN = secrets.token_hex(6)
_command_numbers = itertools.count(1)


def new_command_id():
    return f"hub-{_HUB_RUN}-{next(_command_numbers)}"


def _session_id(value):
    """An app_id from the wire as the hub keeps it: printable text, "" when absent."""
    return "" if value is None else limits.printable(value)


class StreamState:
    """What the hub knows about the running session (from stream_info, or from a confirmed start)."""

    def __init__(self, app_id, sample_rate=0.0, center_frequency=0.0, gain=None, sample_format="cf32"):
        self.app_id = app_id
        self.sample_rate, self.center_frequency, self.gain = sample_rate, center_frequency, gain
        self.sample_format = sample_format
        self.media = "iq"
        self.audio = None  # AudioIn of a voice agent's microphone stream (§8)
        self.sample_index = 0  # the agent's index of the next sample
        self.frames = self.samples = self.bytes = 0
        self.gaps = self.dropped_samples = 0
        self.started = time.time()

    def apply(self, rc):
        """Takes the radio_config values the hub sent, for agents that do not send stream_info."""
        rc = {protocol.KEY_ALIASES.get(k, k): v for k, v in rc.items()}
        for key in ("sample_rate", "center_frequency", "gain"):
            value = limits.finite(rc.get(key))
            if value is not None:
                setattr(self, key, value)
        if rc.get("sample_format") in protocol.SAMPLE_FORMATS:
            self.sample_format = rc["sample_format"]

    def as_dict(self):
        return {"app_id": self.app_id, "sample_rate": self.sample_rate, "center_frequency": self.center_frequency,
                "gain": self.gain, "sample_format": self.sample_format, "frames": self.frames,
                "samples": self.samples, "bytes": self.bytes, "gaps": self.gaps,
                "dropped_samples": self.dropped_samples, "started": self.started, "media": self.media,
                "audio": self.audio.as_dict() if self.audio else None}


class PendingStart:
    """A start the hub sent and the agent has not confirmed yet."""

    def __init__(self, app_id, radio_config, record_to):
        self.app_id, self.radio_config, self.record_to = app_id, radio_config, record_to


class AgentLink:
    def __init__(self, agent_id, name, ws, hub, clock=time.monotonic, log=None):
        self.agent_id, self.name, self.ws, self.hub = agent_id, name, ws, hub
        self.address = "?"  # where the connection came from (set by the hub)
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
        self.pending = None  # PendingStart
        self.last_error = None
        self.errors = []  # the last few, newest last
        self.refused_messages = 0  # text messages from this agent the hub could not take
        self.speaks_stream_info = False
        self.meter = SpectrumMeter()
        self.recorder = None
        self._record_to = None  # a recording the confirmed start opens
        self.recording_ended = None  # why the last recording ended early, if it did
        self.recordings = []
        self._waiters = []  # (predicate, future)
        self.log = log or limits.LogLimiter(hub.log if hub else logging.getLogger("ria_hub"), clock)
        self.busy = asyncio.Lock()  # one command at a time
        self.tx = None  # the TxSession under way (hub/tx_session.py)
        self.tx_last = None  # the one before, for people to read
        self.tx_caps = wire_tx.Interlocks(False)  # what the agent's heartbeat advertises
        self.tx_caps_error = None  # why the advertised caps could not be read (the hub then refuses TX)
        self.agent_tx = None  # the TX session the agent's heartbeat reports, if any
        self.capabilities = []  # from the heartbeat: rx, tx, audio_in, audio_out
        self.voice_levels = None  # the heartbeat's stats.levels (§8), checked

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
        hardware = msg.get("hardware")
        if isinstance(hardware, list):
            self.hardware = [h for h in hardware[:limits.MAX_HARDWARE] if limits.is_printable_name(h)]
        if isinstance(msg.get("stats"), dict):
            self.stats = self._clean_stats(msg["stats"])
            levels = msg["stats"].get("levels")
            self.voice_levels = {k: limits.finite(levels.get(k)) for k in LEVEL_KEYS} \
                if isinstance(levels, dict) else None
        caps = msg.get("capabilities")
        if isinstance(caps, list):
            self.capabilities = [c for c in caps[:MAX_CAPABILITIES] if limits.is_printable_name(c, 40)]
        if isinstance(msg.get("agent"), dict):
            self.agent_info = {k: limits.printable(v) for k, v in msg["agent"].items()
                               if k in ("name", "version") and isinstance(v, str)}
        self._read_tx_fields(msg)
        state = msg.get("status")
        if state == "streaming" and self.status != "streaming" and self._rx_in_heartbeat(msg):
            app_id = msg.get("app_id")
            if isinstance(app_id, (str, int)) and not isinstance(app_id, bool):
                self._confirm_start(app_id)  # joined mid-session (after a hub restart), or a start's answer
                self._segment()
        elif state == "idle" and self.status == "streaming":
            self._session_ended()

    def _read_tx_fields(self, msg):
        try:
            self.tx_caps, self.tx_caps_error = wire_tx.interlocks_from_heartbeat(msg), None
        except ValueError as e:
            self.tx_caps, self.tx_caps_error = wire_tx.Interlocks(False), limits.printable(e, 200)
        sessions = msg.get("sessions")
        tx = sessions.get("tx") if isinstance(sessions, dict) else None
        self.agent_tx = {"app_id": _session_id(tx.get("app_id")),
                         "state": limits.printable(tx.get("state", "?"), 20)} if isinstance(tx, dict) else None

    def _rx_in_heartbeat(self, msg):
        """Whether a heartbeat's `streaming` is an RX session: the RIA agent also says `streaming`, with the TX
        session's app_id, while it only transmits."""
        sessions = msg.get("sessions")
        if isinstance(sessions, dict) and "rx" in sessions:
            return True
        tx_ids = {s.app_id for s in (self.tx, self.tx_last) if s} | ({self.agent_tx["app_id"]} if self.agent_tx
                                                                      else set())
        return _session_id(msg.get("app_id")) not in tx_ids

    @staticmethod
    def _clean_stats(stats):
        """Known-shape stats only: up to MAX_STATS entries of finite numbers (anything else is dropped)."""
        clean = {}
        for key, value in list(stats.items())[:limits.MAX_STATS]:
            number = limits.finite(value)
            if number is not None and limits.is_printable_name(key):
                clean[key] = int(value) if isinstance(value, int) and abs(value) < 2 ** 53 else number
        return clean

    # ---------------------------------------------------------------- frames from the agent

    def on_text(self, text):
        if len(text) > limits.MAX_AGENT_TEXT:
            return self._refuse(f"a text message of {len(text)} characters (the limit is {limits.MAX_AGENT_TEXT})")
        try:
            msg = limits.parse_json(text)
        except (ValueError, RecursionError) as e:
            return self._refuse(f"a text message that is not JSON the hub accepts ({limits.printable(e, 80)})")
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return self._refuse("a message without a string 'type'")
        handler = {"heartbeat": self._on_heartbeat, "status": self._on_status, "error": self._on_error,
                   "stream_info": self._on_stream_info, "gap": self._on_gap, "tx_status": self._on_tx,
                   "tx_progress": self._on_tx, "tx_info": self._on_tx}.get(msg["type"])
        if handler is not None and handler(msg) is False:  # others (ack, pong) only answer waiters
            return
        self._wake(msg)

    def _refuse(self, what):
        self.refused_messages += 1
        self.hub.counters["agent_messages_refused"] += 1
        self.log(logging.WARNING, "agent %s sent %s; ignored", self.agent_id, what)

    def _on_status(self, msg):
        state = msg.get("status")
        if state == "streaming":
            app_id = _session_id(msg.get("app_id"))
            if self.status != "streaming" or (self.pending and app_id == self.pending.app_id):
                self._confirm_start(app_id)
                self._segment()
            elif self.last_error and self.last_error["message"].startswith(RADIO_LOST):
                self.last_error = None  # the agent says it streams again: the radio is back
        elif state == "idle":
            self._session_ended()

    def _on_error(self, msg):
        text = limits.printable(msg.get("message", ""), limits.MAX_ERROR_CHARS)
        app_id = msg.get("app_id")
        self.last_error = {"message": text, "app_id": limits.printable(app_id) if app_id is not None else None,
                           "time": time.time()}
        self.errors = (self.errors + [self.last_error])[-limits.MAX_ERRORS_KEPT:]
        self.log(logging.INFO, "agent %s reports: %s", self.agent_id, text)

    def _on_stream_info(self, msg):
        if msg.get("media") == "audio":
            return self._on_audio_info(msg)
        rate, freq = limits.finite(msg.get("sample_rate")), limits.finite(msg.get("center_frequency"))
        gain = msg.get("gain")
        if rate is None or rate <= 0 or freq is None or (gain is not None and limits.finite(gain) is None) \
                or msg.get("sample_format", "cf32") not in protocol.SAMPLE_FORMATS:
            return self._refuse("a stream_info without a positive finite sample_rate, a finite center_frequency "
                                "and gain, and a known sample_format")
        self.speaks_stream_info = True
        app_id = _session_id(msg.get("app_id"))
        if self.status != "streaming" or self.stream.app_id != app_id:
            self._confirm_start(app_id)
        s = self.stream
        retuned = (s.center_frequency, s.sample_rate) != (freq, rate)
        s.sample_rate, s.center_frequency = rate, freq
        s.gain = None if gain is None else limits.finite(gain)
        s.sample_format = msg.get("sample_format", "cf32")
        s.media, s.audio = "iq", None
        self._take_index(s, msg)
        if retuned:
            self.meter.reset()
        self._segment()

    @staticmethod
    def _take_index(s, msg):
        index = msg.get("sample_index")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 2 ** 63:
            s.sample_index = index

    def _on_audio_info(self, msg):
        """A voice agent's microphone stream (§8): decoded, measured and recorded here, never sent to the
        spectrum meter (it is not IQ)."""
        try:
            settings = stream_settings(msg)
        except ValueError as e:
            return self._refuse(f"an audio stream_info the hub cannot read ({limits.printable(e, 120)})")
        self.speaks_stream_info = True
        app_id = _session_id(msg.get("app_id"))
        if self.status != "streaming" or self.stream.app_id != app_id:
            self._confirm_start(app_id)
        s = self.stream
        if s.audio is None or (s.audio.sample_format, s.audio.rate) != (settings["sample_format"],
                                                                         settings["sample_rate"]):
            s.audio = AudioIn(settings)
        s.media, s.sample_format, s.sample_rate = "audio", settings["sample_format"], float(settings["sample_rate"])
        s.center_frequency, s.gain = 0.0, None
        self._take_index(s, msg)
        self.meter.reset()
        self._segment()

    def _on_gap(self, msg):
        s = self.stream
        if s is None:
            return
        dropped = msg.get("dropped_samples")
        if isinstance(dropped, bool) or not isinstance(dropped, int) or not 0 <= dropped < 2 ** 53:
            dropped = 0
        s.gaps += 1
        s.dropped_samples += dropped
        s.sample_index += dropped
        if s.audio:
            return self._audio_gap(s, dropped, limits.printable(msg.get("reason", "?"), 40))
        if self._bus:
            self._bus.event(self.agent_id, "gap", app_id=s.app_id, dropped_samples=dropped,
                            reason=limits.printable(msg.get("reason", "?"), 40))
            if not self.recorder:
                self._announce_segment()  # (with a recorder, _segment() below announces it, once)
        if self.recorder:
            self.recorder.gap(dropped, limits.printable(msg.get("reason", "?"), 40))
            self._segment()

    def _on_tx(self, msg):
        kind = msg["type"]
        try:
            clean = {"tx_status": wire_tx.parse_tx_status, "tx_progress": wire_tx.parse_tx_progress,
                     "tx_info": wire_tx.parse_tx_info}[kind](msg)
        except ValueError as e:
            self._refuse(f"a {kind} the hub cannot read ({limits.printable(e, 120)})")
            return False
        session = self.tx
        if session is None or _session_id(clean["app_id"]) != session.app_id:
            return None  # an answer about no session of ours (a tx_stop's "no TX session", a late one)
        {"tx_status": session.on_status, "tx_progress": session.on_progress, "tx_info": session.on_info}[kind](clean)
        return None

    def tx_ended(self, session):
        if self.tx is session:
            self.tx, self.tx_last = None, session

    def on_binary(self, payload):
        if self.stream and self.stream.audio:
            return self._on_audio(payload)
        size = protocol.BYTES_PER_SAMPLE[self.stream.sample_format if self.stream else "cf32"]
        if not payload or len(payload) % size:
            return self._refuse(f"a binary frame of {len(payload)} bytes (not whole {size}-byte samples)")
        if self.status != "streaming" and self.pending and not self.speaks_stream_info:
            self._confirm_start(self.pending.app_id)  # IQ after a start: this agent streams
            self._segment()
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
            with self._recorder_io():
                self.recorder.write(payload)
        if self.hub.republisher:
            self.hub.republisher.publish(self.agent_id, payload, s.sample_format)
        if self._bus:
            self._bus.frame(self.agent_id, payload)

    def _on_audio(self, payload):
        s, counters = self.stream, self.hub.counters
        try:
            samples, concealed = s.audio.decode(payload)
        except ValueError as e:
            return self._refuse(f"a binary frame that is not {s.audio.sample_format} audio ({limits.printable(e, 80)})")
        counters["audio_frames_received"] += 1
        counters["audio_frames_concealed"] += concealed
        counters["audio_decode_errors"] += concealed
        s.frames += 1
        s.samples += len(samples)
        s.bytes += len(payload)
        s.sample_index += len(samples)
        if self.recorder:
            with self._recorder_io():
                self.recorder.write_samples(samples, 1, concealed, len(samples) if concealed else 0)
        if self.hub.republisher:
            self.hub.republisher.publish_audio(self.agent_id, samples)

    def _audio_gap(self, s, dropped, reason):
        samples, frames = s.audio.conceal(dropped, keep=self.recorder is not None)
        self.hub.counters["audio_frames_concealed"] += frames
        if self.recorder:
            with self._recorder_io():
                self.recorder.gap(dropped, reason)
                self.recorder.write_samples(samples, 0, frames, len(samples))
            self._segment()  # gaps faster than the recorder's limit end the recording, as for IQ

    # ---------------------------------------------------------------- the session, as confirmed

    def _confirm_start(self, app_id):
        """The agent streams session `app_id`: the hub's session becomes it. The caller sets what it
        knows of the stream, then calls _segment(), which opens a recording the start asked for."""
        app_id = _session_id(app_id)
        pending = self.pending if self.pending and self.pending.app_id == app_id else None
        self._end_recording()
        self.stream = StreamState(app_id)
        self.status = "streaming"
        self.meter.reset()
        if pending:
            self.stream.apply(pending.radio_config)
            self.pending = None
            self._record_to = pending.record_to

    def _session_ended(self):
        """The last session's figures stay for people to read; status, recording and pending start end."""
        self.status = "idle"
        self.pending = None
        self._end_recording()
        if self._bus:
            self._bus.event(self.agent_id, "end", app_id=self.stream.app_id if self.stream else "")

    # ---------------------------------------------------------------- commands to the agent

    @property
    def acknowledges(self):
        """Our agents ack every command; the RIA agent does not (its heartbeat has no `agent` field)."""
        return self.agent_info is not None

    async def command(self, msg, timeout, record_to=None):
        """Sends a hub message with a fresh id; waits for the ack (our agents) or the status it causes.

        Returns {"id", "acked", "status", "error"}; for agents that do not acknowledge, acked is None.
        """
        msg = dict(msg, id=new_command_id())
        kind = msg["type"]
        want_status = {"start": "streaming", "stop": "idle"}.get(kind)
        acked = self._expect(lambda m: m.get("type") == "ack" and m.get("id") == msg["id"]) \
            if self.acknowledges else None
        status = self._expect(lambda m: m.get("type") == "status" and m.get("status") == want_status) \
            if want_status else None
        # An error answers this command when it names the command's session, or none.
        error = self._expect(lambda m: m.get("type") == "error" and _session_id(m.get("app_id")) in
                             (_session_id(msg.get("app_id")), ""))
        if kind == "start":
            self.pending = PendingStart(msg["app_id"], msg.get("radio_config", {}), record_to)
            self.last_error = None
        await self.ws.send_str(protocol.encode(msg))
        result = {"id": msg["id"], "acked": None, "status": None, "error": None}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            if acked:
                result["acked"] = await self._until(acked, deadline, error)
            if status and not error.done():
                got = await self._until(status, deadline, error)
                result["status"] = want_status if got else None
            if kind == "configure":  # a rejected value comes back as an error right after the ack
                await self._until(None, min(deadline, loop.time() + 0.3), error)
            if error.done() and not error.cancelled():
                result["error"] = limits.printable(error.result().get("message", "error"), limits.MAX_ERROR_CHARS)
        except asyncio.CancelledError:
            if not self.ws.closed:
                raise  # the request itself was cancelled
            result["error"] = f"agent {self.agent_id} disconnected before it answered {kind}"  # closed() cancelled
        finally:
            self._cancel(acked, status, error)
        if kind == "start" and (result["error"] or result["status"] is None) and self.pending:
            self.pending.record_to = None  # a session the teacher was told failed is never recorded
        if kind == "configure" and not result["error"] and not self.speaks_stream_info and self.stream:
            self.stream.apply(msg.get("radio_config", {}))  # this agent will not describe the change
            self.meter.reset()
            self._segment()
        return result

    async def _until(self, future, deadline, error):
        remaining = deadline - asyncio.get_running_loop().time()
        waitables = [f for f in (future, error) if f is not None]
        if remaining <= 0:
            return bool(future and future.done())
        await asyncio.wait(waitables, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        return bool(future and future.done())

    def _expect(self, predicate):
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    expect = _expect  # for the TX session: a future for the next message that satisfies predicate

    def forget(self, *futures):
        self._cancel(*futures)

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
        self.recording_ended = None
        kind = WavRecorder if self.stream.audio else SigmfRecorder
        self.recorder = kind(folder, self.agent_id, self.name, self.stream.app_id, clock=self._clock)
        self._segment()
        return self.recorder

    def _segment(self):
        """A new capture from the next frame on (the first one opens a recording the start asked for); a
        recording whose agent changes settings faster than the recorder's limit ends, and says why, rather
        than flooding the disk."""
        if self._bus and not (self.stream and self.stream.audio):  # the data bus carries IQ only
            self._announce_segment()
        if self._record_to and self.stream:
            folder, self._record_to = self._record_to, None
            self._open_recorder(folder)
            return
        if not self.recorder:
            return
        s = self.stream
        if isinstance(self.recorder, WavRecorder) != bool(s.audio):
            return self._end_recording("the stream changed between IQ and audio")
        with self._recorder_io():
            if not self.recorder.segment(s.sample_format, s.sample_rate, s.center_frequency, s.sample_index):
                self._end_recording(f"the session changed settings more than {limits.SEGMENT_RATE:g} times a second")

    @property
    def _bus(self):
        return getattr(self.hub, "data_bus", None)  # the cluster's data bus (hub/cluster/data_bus.py), if any

    def _announce_segment(self):
        """The stream as it goes on from the next frame, for recorders on the cluster's data bus."""
        s = self.stream
        if s:
            self._bus.event(self.agent_id, "segment", app_id=s.app_id, name=self.name,
                            sample_format=s.sample_format, sample_rate=s.sample_rate,
                            center_frequency=s.center_frequency, sample_index=s.sample_index)

    @contextlib.contextmanager
    def _recorder_io(self):
        """An I/O error of the recorder (disk full, folder gone) ends the recording with its reason."""
        try:
            yield
        except OSError as e:
            self._end_recording(e)

    def flush_recording(self):
        if self.recorder:
            with self._recorder_io():
                self.recorder.flush_meta()

    def _end_recording(self, why=None):
        """Closes the recording and lists its files; `why`, when it ends early, goes to recording_ended."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        self.recordings = (self.recordings + recorder.files)[-1000:]
        try:
            recorder.close()
        except OSError as e:
            why = why or e
        if why is not None:
            self.recording_ended = limits.printable(f"recording stopped: {why}", limits.MAX_ERROR_CHARS)
            self.log(logging.WARNING, "agent %s: %s", self.agent_id, self.recording_ended)

    def stop_recording(self):
        files = self.recorder.files if self.recorder else []
        self._end_recording()
        return files

    def closed(self):
        self._end_recording()
        if self.tx:
            self.tx.closed()
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
                "recording": self.recorder.meta_path if self.recorder else None,
                "recording_ended": self.recording_ended, "tx": self.tx_summary(),
                "capabilities": self.capabilities, "voice": self.voice_summary(),
                "twin_connections": self.hub.twins.view(self.agent_id) if self.hub else None}

    def voice_summary(self):
        """A voice agent's levels (the agent's, from its heartbeat, and what the hub measures of its stream), its
        echo canceller's figures; None for an agent that is not a voice agent."""
        audio = self.stream.audio if self.stream else None
        if not (audio or self.voice_levels or {"audio_in", "audio_out"} & set(self.capabilities)):
            return None
        return {"levels": self.voice_levels, "received_dbfs": audio.meter.level_dbfs if audio else None,
                "received": audio.as_dict() if audio else None,
                **{k: self.stats.get(k) for k in VOICE_STATS}}

    def tx_summary(self):
        caps = self.tx_caps
        return {"caps": {"tx_enabled": caps.enabled, "tx_max_gain_db": caps.max_gain_db,
                         "tx_max_duration_s": caps.max_duration_s,
                         "tx_allowed_freq_ranges": caps.allowed_freq_ranges, "error": self.tx_caps_error},
                "session": self.tx.as_dict() if self.tx else None,
                "last": self.tx_last.as_dict() if self.tx_last else None, "agent_session": self.agent_tx}
