"""Each agent's IQ frames and stream events on NATS subjects, for the recorder worker, or a page, spectrum or
ZeroMQ bridge on any machine: ria.data.<agent_id>.iq (the raw frames, in the agent's sample format) and
ria.data.<agent_id>.ev (JSON: segment, gap, end). One subscription to ria.data.<agent_id>.> gets both in order.

The hub's receive loop only appends to a bounded queue; one task publishes. While NATS is away, or when the
queue is full, frames are dropped and counted (the agents the node holds are served as before)."""

import asyncio
import collections
import json
import logging

MAX_QUEUED_BYTES = 64 << 20
SUBJECT = "ria.data.{}.{}"


class DataBus:
    def __init__(self, link, log=None):
        self._link = link
        self._queue = collections.deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self.published = self.dropped = 0
        self.log = log or logging.getLogger("ria_hub")

    def frame(self, agent_id, payload):
        """A frame larger than the server's message limit goes as several messages of whole samples (a multiple
        of 8 bytes is whole samples in every format), which a subscriber appends as they come."""
        subject = SUBJECT.format(agent_id, "iq")
        limit = (self._link.nc.max_payload if self._link.nc else 1 << 20) - 1024
        limit -= limit % 8
        if len(payload) <= limit:
            self._put(subject, payload)
            return
        view = memoryview(payload)
        for start in range(0, len(payload), limit):
            self._put(subject, bytes(view[start:start + limit]))

    def event(self, agent_id, kind, **fields):
        self._put(SUBJECT.format(agent_id, "ev"), json.dumps(dict(fields, event=kind)).encode())

    def _put(self, subject, payload):
        if not self._link.connected or self._bytes + len(payload) > MAX_QUEUED_BYTES:
            self.dropped += 1
            return
        self._queue.append((subject, payload))
        self._bytes += len(payload)
        self._wake.set()

    async def run(self):
        nc = self._link.nc
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                subject, payload = self._queue.popleft()
                self._bytes -= len(payload)
                try:
                    await nc.publish(subject, payload)
                    self.published += 1
                except Exception:  # noqa: BLE001 - NATS went away under us: counted as dropped
                    self.dropped += 1
