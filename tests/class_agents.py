"""A class of streaming agents for the page tests and the class-overview lab: many ScriptedAgents (real
WebSockets to a real hub) that each stream a tone in noise, driven from one thread so 30 cost little.

Each agent answers a configure like an agent that sends stream_info: an ack, then a stream_info at the
new centre frequency, and its tone stays where it was in the air (it moves in the baseband).
"""

import threading
import time

import numpy as np

from scripted_agent import ScriptedAgent

FRAME = 8192  # samples per binary frame: one frame is a whole update of the hub's spectrum meter
PERIOD = 0.25  # seconds between frames of one agent
RATE = 1.024e6


class StreamingAgent:
    def __init__(self, lab, name, key, center, tone_hz, seed):
        self.agent_id, token = lab.register_api(name, key)
        self.name, self.center, self.tone_hz = name, center, tone_hz
        self.app_id = f"class-{name}"
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.agent = ScriptedAgent(lab.url, token, self.agent_id, on_message=self._on_message)
        self.agent.heartbeat(status="streaming", app_id=self.app_id, agent={"name": "class", "version": "0"})
        self.agent.send({"type": "status", "status": "streaming", "app_id": self.app_id})
        self._stream_info()

    def _stream_info(self):
        self.agent.send({"type": "stream_info", "app_id": self.app_id, "sample_rate": RATE,
                         "center_frequency": self.center, "gain": 30.0, "sample_format": "cf32", "sample_index": 0})

    def _on_message(self, msg):
        if not isinstance(msg, dict):
            return
        if msg.get("id") is not None:
            self.agent.send({"type": "ack", "id": msg["id"]})
        if msg.get("type") == "configure":
            freq = (msg.get("radio_config") or {}).get("center_frequency")
            if isinstance(freq, (int, float)):
                with self.lock:
                    self.center = float(freq)
                self._stream_info()

    def frame(self):
        with self.lock:
            offset = self.tone_hz - self.center
        n = np.arange(FRAME)
        tone = 0.3 * np.exp(2j * np.pi * offset / RATE * n)
        noise = 0.01 * (self.rng.standard_normal(FRAME) + 1j * self.rng.standard_normal(FRAME))
        return (tone + noise).astype(np.complex64).tobytes()

    def close(self):
        self.agent.close()


class ClassOfAgents:
    """n streaming agents registered with one key; each has its own centre and a tone 50 to 400 kHz above it."""

    def __init__(self, lab, n, name="bench", base=100e6):
        key = lab.create_key("--uses", str(n))[1]
        self.agents = []
        self._stop = threading.Event()
        try:
            for i in range(n):
                center = base + i * 1e6
                self.agents.append(StreamingAgent(lab, f"{name}-{i + 1:02d}", key, center,
                                                  center + 50e3 + (i % 8) * 50e3, seed=i))
        except Exception:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        beat = time.monotonic()
        while not self._stop.wait(PERIOD):
            heartbeat = time.monotonic() - beat > 5
            for a in self.agents:
                try:
                    a.agent.send(a.frame())
                    if heartbeat:
                        a.agent.heartbeat(status="streaming", app_id=a.app_id)
                except Exception:  # noqa: BLE001 - closed under us at the end of a test
                    return
            if heartbeat:
                beat = time.monotonic()

    def close(self):
        self._stop.set()
        if getattr(self, "_thread", None):
            self._thread.join(10)
        for a in self.agents:
            a.close()
