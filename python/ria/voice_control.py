"""The audio half of ria.control_handler: a hub's play sessions (docs/protocol.md §8) on a voice agent's
speaker, driven through ria.websocket_source (port `speaker`), and the voice figures of its heartbeat.

A play session has no radio to open: it is armed at once, and its state changes only on what the stream
reports (`armed`, `transmitting`, `underrun`, `ended`). The speaker itself never stops (the stream plays
silence between sessions), so ria.aec's reference stays the speaker's signal. Every refusal changes nothing."""

import math

from .session_half import SessionHalf
from .wire import audio

NO_SPEAKER = "this agent has no speaker (audio_out)"


class PlaySession:
    def __init__(self, seq, app_id, clean):
        self.seq = seq
        self.app_id = app_id
        self.clean = clean
        self.state = "arming"  # arming, armed, transmitting, ending
        self.final = None  # (state, message) to send once the stream has ended


class VoiceControl(SessionHalf):
    def __init__(self, handler, speaker, microphone):
        super().__init__(handler)
        self.speaker = bool(speaker)
        self.microphone = bool(microphone)
        self.aec = {}  # the last ria.aec status: erle_db, delay (s), drift_ppm, locked
        self.levels = {}  # speaker_dbfs, mic_dbfs, out_dbfs
        self.sessions_played = 0
        self.sessions_refused = 0

    def capabilities(self):
        return ([audio.CAPABILITY_IN] if self.microphone else []) + ([audio.CAPABILITY_OUT] if self.speaker else [])

    def owns(self, kind, msg):
        """Whether this message is a play session's: an audio tx_start, or a stop/configure while one is on."""
        if kind == "tx_start":
            return audio.is_audio(msg.get("radio_config"))
        return self.session is not None and msg.get("app_id") == self.session.app_id

    # ---------------------------------------------------------------- outputs

    def _stream(self, cmd):
        self.handler._send("speaker", cmd)

    # ---------------------------------------------------------------- hub -> agent

    def _configure(self, seq, app_id, _rc):
        self.handler._error("tx_configure: a play session takes no configure (stop it and start another)", app_id)
        if seq is not None:
            self._stream({"configure": seq, "refused": True})

    def _refuse(self, seq, app_id, message):
        self.sessions_refused += 1
        self.handler.logger.warn(f"play session refused: {message}")
        self._status(app_id, "error", message)
        if seq is not None and self.speaker:
            self._stream({"refuse": seq})

    def _start(self, seq, app_id, rc):
        if not self.speaker:
            return self._refuse(seq, app_id, NO_SPEAKER)
        clean, errors = audio.normalize_play(rc)
        if errors:
            return self._refuse(seq, app_id, "; ".join(errors))
        if self.session is not None:
            return self._refuse(seq, app_id, f"a play session is already active (app_id {self.session.app_id!r})")
        self.session = PlaySession(seq, app_id, clean)
        self._stream({"arm": seq, "app_id": app_id, "sample_rate": clean["tx_sample_rate"],
                      "underrun_policy": clean["underrun_policy"], "sample_format": clean["sample_format"],
                      "volume": clean["tx_gain"]})

    def _stop(self, app_id):
        s = self.session
        if s is None:
            self._status(app_id, "done", "no play session")
        elif s.state != "ending":
            self._end("done", None)

    def _end(self, state, message):
        s = self.session
        s.final = (state, message)
        s.state = "ending"
        self._stream({"stop": True})

    def _finish(self, state, message=None, **extra):
        s = self.session
        self.session = None
        self.sessions_played += 1
        self._status(s.app_id, state, message, **extra)

    # ---------------------------------------------------------------- stream (ria.websocket_source) -> hub

    def on_stream(self, event):
        name = event.get("event")
        s = self.session
        if s is None:
            return
        if name == "armed" and event.get("seq") == s.seq and s.state == "arming":
            s.state = "armed"
            self._status(s.app_id, "armed", queue_samples=event.get("queue_samples"),
                         tx_sample_rate=s.clean["tx_sample_rate"], sample_format=s.clean["sample_format"],
                         tx_gain=s.clean["tx_gain"])
        elif name == "stale" and event.get("seq") == s.seq and s.state == "arming":
            self._end("done", "stopped before it was armed")  # a tx_stop came before the arm
        elif name == "error" and s.state == "arming":
            self.session = None  # the stream refused the arm: nothing is armed
            self._refuse(s.seq, s.app_id, event.get("message", "the speaker stream refused the session"))
        elif name == "transmitting" and s.state == "armed":
            s.state = "transmitting"
            self._status(s.app_id, "transmitting")
        elif name == "underrun" and s.state in ("armed", "transmitting"):
            self._finish("underrun", samples_played=event.get("played", 0))  # (policy pause: the stream ended it)
        elif name == "ended" and event.get("reason") == "hub connection lost" and s.state != "ending":
            self._finish("error", "the connection to the hub was lost: play stopped",
                         samples_played=event.get("played", 0))
        elif name == "ended" and s.state == "ending":
            state, message = s.final
            self._finish(state, message, samples_played=event.get("played", 0))

    # ---------------------------------------------------------------- ria.aec and the level meters

    def on_aec(self, event):
        if event.get("event") == "aec":
            self.aec = {k: event[k] for k in ("locked", "erle_db", "drift_ppm", "delay") if k in event}

    def on_levels(self, levels):
        self.levels = {k: dbfs(v) for k, v in levels.items()}

    def stats(self):
        """The voice figures this side knows (the frame counters are the stream blocks')."""
        out = {}
        for key, field, scale in (("erle_db", "erle_db", 1.0), ("drift_ppm", "drift_ppm", 1.0),
                                  ("echo_delay_ms", "delay", 1000.0)):
            value = self.aec.get(field)
            if isinstance(value, (int, float)) and math.isfinite(value) and (key != "echo_delay_ms"
                                                                               or self.aec.get("locked")):
                out[key] = round(float(value) * scale, 1)
        if self.levels:
            out["levels"] = dict(self.levels)
        return out


def dbfs(rms):
    """An RMS in -1..1 full scale as dBFS (wire.audio.level_dbfs); silence and non-finite are the floor."""
    try:
        rms = float(rms)
    except (TypeError, ValueError):
        return audio.LEVEL_FLOOR_DBFS
    return audio.level_dbfs(rms * rms) if math.isfinite(rms) and rms > 0 else audio.LEVEL_FLOOR_DBFS
