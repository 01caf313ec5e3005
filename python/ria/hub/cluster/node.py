"""One hub node of a cluster: the registry in JetStream key-value buckets, presence, control and data on NATS.
server.Hub uses it when it is given NATS URLs; everything else in the hub is the same as a single process."""

import asyncio
import json
import os

import nats.js.errors

from .. import credentials
from .control_bus import ControlBus
from .data_bus import DataBus
from .kv_store import KvStore
from .nats_link import NatsLink, NatsUnavailable
from .presence import Presence

TAKEN = "ria.taken.{}"  # an agent connected to a node: any other node still holding it holds a dead connection


class ClusterNode:
    def __init__(self, hub, nats_urls, log=None):
        self.hub = hub
        self.node_id = credentials.new_id("node-")
        self.log = log or hub.log
        self.link = NatsLink(nats_urls, f"ria-hub {self.node_id}", self.log)
        self.store = KvStore(self.link)
        self.presence = Presence(self.link, self.node_id, hub, self.log)
        self.control = ControlBus(self.link, hub, self.log)
        self.data = None
        self._tasks = []

    async def start(self):
        """Connects and loads the registry (NatsUnavailable when NATS does not answer); hub.store becomes it."""
        await self.link.connect()
        try:
            await self.store.start()
            await self._share_admin_token()
            await self.presence.start()
        except NatsUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - a JetStream that is off or full: say so at start
            raise NatsUnavailable(f"NATS at {', '.join(self.link.urls)} did not load the hub's buckets: "
                                  f"{str(e) or type(e).__name__}") from None
        self.hub.store = self.store
        self.data = DataBus(self.link, self.log)
        await self.data.start()
        await self.link.nc.subscribe(TAKEN.format("*"), cb=self._on_taken)
        self.link.on_reconnect.append(self._catch_up)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.presence.run()), loop.create_task(self.data.run())]

    def listening(self, url):
        host_url = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
        self.control.local_url = host_url
        self.presence.node_url = url

    async def _share_admin_token(self):
        """Every node answers to the same admin token: the first node's, which the others take on."""
        kv = self.link.kv["ria_config"]
        try:
            await kv.create("admin_token", json.dumps(self.hub.admin_token).encode())
            return
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        shared = json.loads((await kv.get("admin_token")).value)
        if shared != self.hub.admin_token:
            path = self.hub.config.admin_token_path
            tmp = path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(shared + "\n")
            os.replace(tmp, path)
            self.hub.admin_token = shared
            self.log.info("took on the cluster's admin token (written to %s)", path)

    # ---------------------------------------------------------------- agents this node holds

    def agent_connected(self, link):
        asyncio.get_running_loop().create_task(self._held(link))

    def agent_disconnected(self, link):
        asyncio.get_running_loop().create_task(self._released(link.agent_id))

    async def _held(self, link):
        try:
            await self.link.nc.publish(TAKEN.format(link.agent_id), json.dumps(
                {"node": self.node_id, "connected_at": link.connected_at}).encode())
            await self.control.sync(link.agent_id)
            await self.presence.put(link)
        except Exception as e:  # noqa: BLE001 - NATS away: the reconnect catches up
            self.log.warning("agent %s: could not announce it on NATS (%s)", link.agent_id, type(e).__name__)

    async def _on_taken(self, msg):
        """Another node has the agent's new connection: ours is an old one that has not been noticed dead yet
        (it would answer commands for an agent that no longer listens on it)."""
        agent_id = msg.subject[len(TAKEN.format("")):]
        link = self.hub.links.get(agent_id)
        try:
            taker = json.loads(msg.data)
            node, since = str(taker["node"])[:40], float(taker["connected_at"])
        except (ValueError, TypeError, KeyError):
            return
        if link is not None and node != self.node_id and link.connected_at < since:
            self.log.info("agent %s connected to node %s since; closing its old connection here", agent_id, node)
            await link.ws.close(code=4002, message=b"the agent connected to another hub node")

    async def _released(self, agent_id):
        try:
            await self.control.sync(agent_id)
            if agent_id not in self.hub.links:
                await self.presence.drop(agent_id)
        except Exception as e:  # noqa: BLE001 - as above; the presence entry then expires by itself
            self.log.warning("agent %s: could not withdraw it on NATS (%s)", agent_id, type(e).__name__)

    async def _catch_up(self):
        for link in list(self.hub.links.values()):
            await self._held(link)
        self.hub._save_seen()

    def remote_summary(self, agent_id):
        entry = self.presence.remote(agent_id)
        return entry["summary"] if entry else None

    # ---------------------------------------------------------------- health, shutdown

    def health(self):
        return dict(self.link.state(), node=self.node_id, agents_elsewhere=self.presence.online_elsewhere(),
                    data_published=self.data.published if self.data else 0,
                    data_dropped=self.data.dropped if self.data else 0,
                    commands_forwarded=self.control.forwarded, commands_served=self.control.served)

    def metrics(self):
        """(name, kind, help, value) for the hub's /metrics."""
        data = self.data
        return [("nats_connected", "gauge", "1 while this node is connected to NATS.", int(self.link.connected)),
                ("nats_outages_total", "counter", "Times this node lost NATS.", self.link.outages),
                ("agents_elsewhere", "gauge", "Agents online on other nodes of the cluster.",
                 self.presence.online_elsewhere()),
                ("commands_forwarded_total", "counter", "API requests sent to the node holding their agent.",
                 self.control.forwarded),
                ("commands_served_total", "counter", "API requests run for other nodes.", self.control.served),
                ("bus_messages_total", "counter", "Frames and events published on the data bus.",
                 data.published if data else 0),
                ("bus_dropped_total", "counter", "Frames and events not published (NATS away, or its queue full).",
                 data.dropped if data else 0)]

    async def close(self):
        for task in self._tasks:
            task.cancel()
        for agent_id in list(self.hub.links):
            try:
                await asyncio.wait_for(self.presence.drop(agent_id), 1)
            except Exception:  # noqa: BLE001 - the entry expires by itself
                pass
        await self.control.close()
        await self.store.close()
        await self.link.close()
