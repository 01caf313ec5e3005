"""A running agent's health: one metrics snapshot, served on GET /health and logged every interval."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# A voice agent's counters (docs/protocol.md §8), shown as differences on the metrics line
VOICE_COUNTERS = ("audio_frames_sent", "audio_frames_dropped", "audio_frames_received", "audio_frames_played",
                  "audio_frames_concealed", "audio_frames_bad")
VOICE_GAUGES = ("speaker_queue_ms", "mic_queue_ms", "speaker_latency_ms", "mic_latency_ms", "erle_db",
                "echo_delay_ms", "drift_ppm")


def snapshot(sink, tx_stream=None, voice=None):
    """The agent's metrics as one dict (the /health body and the source of the log line); with a TX stream
    (ria.websocket_source), its counters as tx_* and its state as tx; with a voice agent (ria.voice_agent), the
    echo canceller's figures and the levels."""
    snap = dict(sink.stats(), state="connected" if sink.connected() else "disconnected",
                session="streaming" if sink.streaming() else "idle", app_id=sink.app_id(),
                queue_depth=sink.queue_depth(), last_error=sink.last_error(), time=round(time.time(), 3))
    if tx_stream is not None:
        snap.update({k if k in VOICE_COUNTERS + VOICE_GAUGES else
                     f"tx_samples_{k}" if k in ("received", "played") else f"tx_{k}": v
                     for k, v in tx_stream.stats().items()}, tx=tx_stream.state())  # (a speaker's are its own)
    if voice is not None:
        snap.update(voice.stats())
    return snap


class MetricsLine:
    """Formats the periodic log line: per-interval differences of the counters, plus the current state."""

    def __init__(self):
        self._last = {}

    def format(self, snap):
        def delta(key):
            return snap.get(key, 0) - self._last.get(key, 0)

        voice = any(k in snap for k in VOICE_COUNTERS + VOICE_GAUGES + ("levels",))
        line = (f"metrics: state={snap['state']} session={snap['session']} "
                f"frames_sent=+{delta('frames_sent')} frames_dropped=+{delta('frames_dropped')} "
                f"samples_dropped=+{delta('samples_dropped')} queue={snap['queue_depth']} "
                f"reconnects={snap.get('reconnects', 0)}")
        if voice:  # a microphone and a speaker: no radio, and the speaker's session is a play session
            line += f" play={snap['tx']}" if "tx" in snap else ""
            line += "".join(f" {k}=+{delta(k)}" for k in VOICE_COUNTERS if k in snap)
            line += "".join(f" {k}={snap[k]:g}" for k in VOICE_GAUGES if isinstance(snap.get(k), (int, float)))
            levels = snap.get("levels") if isinstance(snap.get("levels"), dict) else {}
            line += "".join(f" {k}={v:g}" for k, v in levels.items() if isinstance(v, (int, float)))
        else:
            line += f" sdr_overflows={snap.get('sdr_overflows', 0)}"
            if "tx" in snap:
                line += (f" tx={snap['tx']} tx_played=+{delta('tx_samples_played')} "
                         f"tx_underruns=+{delta('tx_underruns')} tx_late_frames=+{delta('tx_late_frames')}")
        self._last = snap
        return line


class HealthServer:
    """GET /health: 200 while connected to the hub, 503 when not; the same JSON body either way."""

    def __init__(self, host, port, sink, tx_stream=None, voice=None):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/health":
                    self.send_error(404, "only /health is served here")
                    return
                snap = snapshot(owner.sink, owner.tx_stream, owner.voice)
                body = json.dumps(snap).encode()
                self.send_response(200 if snap["state"] == "connected" else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # probes every few seconds must not flood the agent's log
                pass

        self.sink = sink
        self.tx_stream = tx_stream
        self.voice = voice
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="ria-health", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._server.shutdown()
        self._server.server_close()
