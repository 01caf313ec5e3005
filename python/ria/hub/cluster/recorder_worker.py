"""The recorder of a hub cluster as a worker of its own (`ria_hub.py recorder --nats URL`): it records every
session it sees on the data bus (ria.data.<agent>.iq/.ev) as SigMF, with the hub's own recorder (recorder.py),
so the files are the ones a single hub writes: a capture per segment, gaps annotated, a new file when the
format or rate changes. It joins a session at its next segment event (a session start, a retune, a gap, or the
fresh stream_info after an agent moved to another node)."""

import asyncio
import json
import logging
import time

from .. import limits
from ..recorder import SigmfRecorder
from ...wire.protocol import BYTES_PER_SAMPLE, SAMPLE_FORMATS
from .data_bus import INTEREST, INTEREST_TTL_S
from .nats_link import NatsLink

SUBJECTS = "ria.data.*.>"
FLUSH_PERIOD_S = 1.0
MAX_AGENTS = 10000


def _segment_fields(ev):
    """(app_id, name, format, rate, frequency, index) from a segment event, or ValueError naming what is wrong."""
    fmt, rate, freq, index = ev.get("sample_format"), limits.finite(ev.get("sample_rate")), \
        limits.finite(ev.get("center_frequency")), ev.get("sample_index")
    if fmt not in SAMPLE_FORMATS or rate is None or rate <= 0 or freq is None or isinstance(index, bool) \
            or not isinstance(index, int) or not 0 <= index < 2 ** 63:
        raise ValueError("a segment event without a known format, a positive rate, a frequency and an index")
    return (limits.printable(ev.get("app_id", ""), 100), limits.printable(ev.get("name", ""), 100), fmt, rate, freq,
            index)


class RecorderWorker:
    def __init__(self, nats_urls, folder, log=None):
        self.folder = folder
        self.log = log or logging.getLogger("ria_hub")
        self.link = NatsLink(nats_urls, "ria-hub recorder", self.log)
        self.recorders = {}  # agent_id -> (SigmfRecorder, sample_format)
        self.files = []
        self.frames = self.samples = self.refused = 0

    async def run(self, ready=None):
        await self.link.connect()
        await self.link.nc.subscribe(SUBJECTS, cb=self._on_message)
        await self._want()
        if ready:
            ready(self)
        next_interest = 0.0
        while True:
            if time.monotonic() >= next_interest:  # the nodes publish frames while someone wants them
                await self._want()
                next_interest = time.monotonic() + INTEREST_TTL_S / 3
            await asyncio.sleep(FLUSH_PERIOD_S)
            for recorder, _ in list(self.recorders.values()):
                self._io(recorder.flush_meta)

    async def _want(self):
        try:
            await self.link.nc.publish(INTEREST, b"*")
            await self.link.nc.flush(2)
        except Exception as e:  # noqa: BLE001 - NATS away: said again when it is back
            self.log.debug("recorder: interest not sent (%s)", type(e).__name__)

    async def _on_message(self, msg):
        parts = msg.subject.split(".")
        if len(parts) != 4:
            return
        agent_id, kind = parts[2], parts[3]
        try:
            if kind == "iq":
                self._frame(agent_id, msg.data)
            elif kind == "ev" and len(msg.data) <= limits.MAX_AGENT_TEXT:
                self._event(agent_id, json.loads(msg.data))
        except (ValueError, TypeError, AttributeError) as e:
            self.refused += 1
            self.log.warning("recorder: refused a message about %s: %s", limits.printable(agent_id, 100),
                             limits.printable(e, 120))

    def _frame(self, agent_id, payload):
        held = self.recorders.get(agent_id)
        if held is None:
            return
        recorder, fmt = held
        if not payload or len(payload) % BYTES_PER_SAMPLE[fmt]:
            raise ValueError(f"a frame of {len(payload)} bytes (not whole {fmt} samples)")
        self._io(recorder.write, payload)
        self.frames += 1
        self.samples += len(payload) // BYTES_PER_SAMPLE[fmt]

    def _event(self, agent_id, ev):
        kind = ev.get("event")
        if kind == "segment":
            app_id, name, fmt, rate, freq, index = _segment_fields(ev)
            held = self.recorders.get(agent_id)
            if held is None or held[0].app_id != app_id:
                self._close(agent_id)
                if len(self.recorders) >= MAX_AGENTS:
                    raise ValueError(f"more than {MAX_AGENTS} sessions at once; not recorded")
                recorder = SigmfRecorder(self.folder, agent_id, name, app_id)
                self.log.info("recording agent %s session %s", agent_id, app_id)
            else:
                recorder = held[0]
            self.recorders[agent_id] = (recorder, fmt)
            if not self._io(recorder.segment, fmt, rate, freq, index):
                self.log.warning("agent %s: segments come too fast; recording ended", agent_id)
                self._close(agent_id)
        elif kind == "gap" and agent_id in self.recorders:
            dropped = ev.get("dropped_samples")
            dropped = dropped if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped >= 0 else 0
            self.recorders[agent_id][0].gap(dropped, limits.printable(ev.get("reason", "?"), 40))
        elif kind == "end":
            self._close(agent_id)

    def _io(self, call, *args):
        try:
            return call(*args)
        except OSError as e:
            self.log.error("recorder: %s", e)
            return False

    def _close(self, agent_id):
        held = self.recorders.pop(agent_id, None)
        if held:
            self._io(held[0].close)
            self.files.extend(held[0].files)
            self.files = self.files[-10000:]

    async def close(self):
        for agent_id in list(self.recorders):
            self._close(agent_id)
        await self.link.close()


async def serve(nats_urls, folder, ready=None, log=None):
    worker = RecorderWorker(nats_urls, folder, log)
    started = time.time()
    try:
        await worker.run(ready)
    finally:
        await worker.close()
        (log or logging.getLogger("ria_hub")).info("recorder stopped after %.0f s: %d frames, %d samples",
                                                   time.time() - started, worker.frames, worker.samples)
