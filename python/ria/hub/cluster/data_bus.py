"""Each agent's IQ frames and stream events on NATS subjects, for the recorder worker, or a page, spectrum or
ZeroMQ bridge on any machine: ria.data.<agent_id>.iq (the raw frames, in the agent's sample format) and
ria.data.<agent_id>.ev (JSON: segment, gap, end). One subscription to ria.data.<agent_id>.> gets both in order.

Frames go out only while a consumer wants them: a consumer (the recorder worker, anything else) says so on
ria.data.interest (the payload: an agent id, or "*" for all) at least every INTEREST_TTL_S / 3 seconds. Nobody
listening costs the nodes nothing then; events always go out (they are few), so a consumer that arrives
mid-session still learns of the next segment.

The hub's receive loop only appends to a bounded queue; one task publishes. While NATS is away, or when the
queue is full, frames are dropped and counted (the agents the node holds are served as before)."""

import asyncio
import collections
import json
import logging
import time

MAX_QUEUED_BYTES = 64 << 20
SUBJECT = "ria.data.{}.{}"
INTEREST = "ria.data.interest"
INTEREST_TTL_S = 6.0
MAX_INTERESTS = 10000


class DataBus:
    def __init__(self, link, log=None):
        self._link = link
        self._queue = collections.deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self.published = self.dropped = 0
        self._wanted = {}  # agent id or "*" -> time.monotonic() until which a consumer wants its frames
        self.log = log or logging.getLogger("ria_hub")

    async def start(self):
        await self._link.nc.subscribe(INTEREST, cb=self._on_interest)

    async def _on_interest(self, msg):
        who = msg.data.decode("ascii", "replace")[:100]
        now = time.monotonic()
        if who not in self._wanted and len(self._wanted) >= MAX_INTERESTS:
            self._wanted = {k: t for k, t in self._wanted.items() if t > now}
            if len(self._wanted) >= MAX_INTERESTS:
                return
        self._wanted[who] = now + INTEREST_TTL_S

    def wanted(self, agent_id):
        now = time.monotonic()
        return self._wanted.get("*", 0) > now or self._wanted.get(agent_id, 0) > now

    def frame(self, agent_id, payload):
        """A frame larger than the server's message limit goes as several messages of whole samples (a multiple
        of 8 bytes is whole samples in every format), which a subscriber appends as they come."""
        if not self.wanted(agent_id):
            return
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
