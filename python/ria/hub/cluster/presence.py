"""Which node holds which agent: an entry per connected agent in the ria_presence bucket (its node, the node's URL
and the agent's summary), refreshed by the holding node and forgotten PRESENCE_TTL_S after its last refresh, so a
node that dies takes its agents offline everywhere within that time, or sooner when they reconnect elsewhere."""

import asyncio
import json
import logging
import time

import nats.js.errors

from .. import limits
from .mirror import BucketMirror
from .nats_link import PRESENCE_BUCKET, PRESENCE_TTL_S

REFRESH_PERIOD_S = 2.0


class Presence:
    def __init__(self, link, node_id, hub, log=None):
        self._link, self.node_id, self._hub = link, node_id, hub
        self.node_url = ""
        self.mirror = BucketMirror(link, PRESENCE_BUCKET)
        self.log = log or logging.getLogger("ria_hub")

    async def start(self):
        await self.mirror.start()
        self._link.on_reconnect.append(self.refresh)

    def _entry(self, agent_link):
        summary = json.loads(limits.dumps(dict(agent_link.summary(), node=self.node_id)))
        return {"node": self.node_id, "url": self.node_url, "summary": summary, "at": time.time()}

    async def put(self, agent_link):
        if self._link.connected:
            entry = limits.dumps(self._entry(agent_link)).encode()
            await self._link.kv[PRESENCE_BUCKET].put(agent_link.agent_id, entry)

    async def drop(self, agent_id):
        """Forgets an agent this node no longer holds, unless another node has taken it meanwhile."""
        if not self._link.connected:
            return
        kv = self._link.kv[PRESENCE_BUCKET]
        try:
            entry = await kv.get(agent_id)
        except nats.js.errors.KeyNotFoundError:
            return
        if json.loads(entry.value).get("node") == self.node_id:
            try:
                await kv.delete(agent_id, last=entry.revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                pass  # another node wrote it after our read

    async def refresh(self):
        """Every agent this node holds, now (periodically, and when NATS is back)."""
        links = list(self._hub.links.values())
        if links and self._link.connected:
            await asyncio.gather(*(self.put(link) for link in links), return_exceptions=True)

    async def run(self):
        while True:
            await asyncio.sleep(REFRESH_PERIOD_S)
            try:
                await self.refresh()
            except Exception as e:  # noqa: BLE001 - the loop outlives one failed round
                self.log.warning("presence refresh failed: %s", type(e).__name__)

    def remote(self, agent_id):
        """The presence entry of an agent held by another node and refreshed within the TTL, or None."""
        entry = self.mirror.get(agent_id, max_age=PRESENCE_TTL_S)
        if not isinstance(entry, dict) or not isinstance(entry.get("summary"), dict):
            return None
        return entry if entry.get("node") != self.node_id else None

    def online_elsewhere(self):
        return sum(1 for key in list(self.mirror.entries) if self.remote(key) is not None)
