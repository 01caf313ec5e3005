"""Every agent of a hub cluster on one ZeroMQ PUB socket (`ria_hub.py bridge --nats URL --zmq ENDPOINT`), as a
single hub republishes its own agents (republisher.py: cf32, topic = agent id), for GNU Radio's zeromq.sub_source
on any machine. It takes the frames from the data bus (asking the nodes for them, like the recorder worker) and
learns each agent's sample format from its segment events; frames of an agent whose format it has not seen yet
(it started mid-session) wait for that agent's next segment."""

import asyncio
import json
import logging

from ...wire.protocol import BYTES_PER_SAMPLE, SAMPLE_FORMATS
from .. import limits
from ..republisher import Republisher
from .data_bus import INTEREST, INTEREST_TTL_S
from .nats_link import NatsLink
from .recorder_worker import SUBJECTS

MAX_AGENTS = 10000


class ZmqBridge:
    def __init__(self, nats_urls, endpoint, log=None):
        self.log = log or logging.getLogger("ria_hub")
        self.link = NatsLink(nats_urls, "ria-hub zmq bridge", self.log)
        self.republisher = Republisher(endpoint)  # ValueError naming an endpoint it cannot bind
        self.formats = {}  # agent_id -> sample format of its current segment
        self.frames = 0

    async def run(self, ready=None):
        await self.link.connect()
        await self.link.nc.subscribe(SUBJECTS, cb=self._on_message)
        while True:
            try:
                await self.link.nc.publish(INTEREST, b"*")
            except Exception as e:  # noqa: BLE001 - NATS away: asked again when it is back
                self.log.debug("bridge: interest not sent (%s)", type(e).__name__)
            if ready:
                ready(self)
                ready = None
            await asyncio.sleep(INTEREST_TTL_S / 3)

    async def _on_message(self, msg):
        parts = msg.subject.split(".")
        if len(parts) != 4:
            return
        agent_id, kind = parts[2], parts[3]
        if kind == "iq":
            fmt = self.formats.get(agent_id)
            if fmt and msg.data and len(msg.data) % BYTES_PER_SAMPLE[fmt] == 0:
                self.republisher.publish(agent_id, msg.data, fmt)
                self.frames += 1
        elif kind == "ev" and len(msg.data) <= limits.MAX_AGENT_TEXT:
            try:
                ev = json.loads(msg.data)
            except ValueError:
                return
            if not isinstance(ev, dict):
                return
            if ev.get("event") == "segment" and ev.get("sample_format") in SAMPLE_FORMATS and \
                    (agent_id in self.formats or len(self.formats) < MAX_AGENTS):
                self.formats[agent_id] = ev["sample_format"]
            elif ev.get("event") == "end":
                self.formats.pop(agent_id, None)

    async def close(self):
        self.republisher.close()
        await self.link.close()


async def serve(nats_urls, endpoint, ready=None, log=None):
    bridge = ZmqBridge(nats_urls, endpoint, log)
    try:
        await bridge.run(ready)
    finally:
        await bridge.close()
