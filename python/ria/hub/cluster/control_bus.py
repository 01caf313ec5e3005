"""Commands to an agent held by another node: the API request goes, as it came, over NATS request/reply on the
agent's subject (ria.ctl.<agent_id>), which only the node that holds the agent's connection subscribes to; that
node runs it through its own API (over its loopback listener, so every check and lock applies as for a request
of its own) and the answer (the agent's ack, status or error) comes back as the reply."""

import asyncio
import logging
import re

import aiohttp
import nats.errors
from aiohttp import web

from .. import limits
from .nats_link import NatsUnavailable

SUBJECT = "ria.ctl.{}"
FORWARDED = "X-Ria-Forwarded"  # a request that came over the bus is never sent on again
MAX_FORWARD_BODY = 900 * 1024  # under NATS's default 1 MiB message limit
FORWARD_TIMEOUT_S = 30.0  # longer than any command's own answer timeout
AGENT_ROUTE = re.compile(r"^/api/agents/([A-Za-z0-9_-]{1,100})(/[a-z/_-]*)?$")
PASSED_HEADERS = ("Authorization", "Content-Type")


def _json_error(status, message):
    return web.json_response({"error": message}, status=status)


class ControlBus:
    def __init__(self, link, hub, log=None):
        self._link, self._hub = link, hub
        self.local_url = ""  # set once the node listens
        self._subs = {}  # agent_id -> subscription
        self._lock = asyncio.Lock()
        self._session = None
        self.forwarded = self.served = 0
        self.log = log or logging.getLogger("ria_hub")

    async def sync(self, agent_id):
        """Subscribes to the agent's subject while this node holds it, and only then."""
        async with self._lock:
            held = agent_id in self._hub.links
            sub = self._subs.get(agent_id)
            if held and sub is None:
                self._subs[agent_id] = await self._link.nc.subscribe(SUBJECT.format(agent_id), cb=self._serve)
            elif not held and sub is not None:
                del self._subs[agent_id]
                await sub.unsubscribe()

    @web.middleware
    async def middleware(self, request, handler):
        try:
            m = AGENT_ROUTE.match(request.path)
            if m and m.group(1) not in self._hub.links and FORWARDED not in request.headers:
                answer = await self._forward(request, m.group(1))
                if answer is not None:
                    return answer
            return await handler(request)
        except NatsUnavailable as e:
            return _json_error(503, str(e))

    async def _forward(self, request, agent_id):
        """The holding node's answer, or None when no node holds the agent (this node answers: offline)."""
        if not self._link.connected:
            return None
        try:
            body = await asyncio.wait_for(request.read(), limits.BODY_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError):
            return _json_error(400, f"the body did not arrive within {limits.BODY_TIMEOUT_S:g} s")
        if len(body) > MAX_FORWARD_BODY:
            return _json_error(413, f"agent {agent_id} is held by another hub node and this request's body is over "
                                    f"{MAX_FORWARD_BODY} bytes: send it to that node")
        headers = {"Ria-Method": request.method, "Ria-Path": request.path_qs}
        headers.update({h: request.headers[h] for h in PASSED_HEADERS if h in request.headers})
        try:
            reply = await self._link.nc.request(SUBJECT.format(agent_id), body, timeout=FORWARD_TIMEOUT_S,
                                                headers=headers)
        except nats.errors.NoRespondersError:
            return None
        except nats.errors.TimeoutError:
            return _json_error(504, f"the hub node holding agent {agent_id} did not answer within "
                                    f"{FORWARD_TIMEOUT_S:.0f} s")
        except Exception as e:  # noqa: BLE001 - NATS went away during the request
            return _json_error(503, f"cannot reach the hub node holding agent {agent_id}: {type(e).__name__}")
        self.forwarded += 1
        status = (reply.headers or {}).get("Ria-Status", "502")
        return web.Response(body=reply.data, status=int(status) if status.isdigit() else 502,
                            content_type=(reply.headers or {}).get("Ria-Content-Type", "application/json"))

    async def _serve(self, msg):
        asyncio.get_running_loop().create_task(self._run_forwarded(msg))

    async def _run_forwarded(self, msg):
        headers = msg.headers or {}
        method, path = headers.get("Ria-Method", ""), headers.get("Ria-Path", "")
        if method not in ("GET", "POST", "DELETE", "PUT") or not AGENT_ROUTE.match(path.split("?")[0]):
            return await self._reply(msg, 400, b'{"error": "not an agent route"}', "application/json")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S - 1))
        sent = {h: headers[h] for h in PASSED_HEADERS if h in headers}
        sent[FORWARDED] = "1"
        try:
            async with self._session.request(method, self.local_url + path, data=msg.data or None,
                                             headers=sent) as response:
                body = await response.read()
                await self._reply(msg, response.status, body, response.content_type)
                self.served += 1
        except Exception as e:  # noqa: BLE001 - our own listener did not answer
            await self._reply(msg, 502, f'{{"error": "the node holding the agent failed: {type(e).__name__}"}}'
                              .encode(), "application/json")

    async def _reply(self, msg, status, body, content_type):
        try:
            await self._link.nc.publish(msg.reply, body, headers={"Ria-Status": str(status),
                                                                  "Ria-Content-Type": content_type})
        except Exception:  # noqa: BLE001 - NATS went away: the asking node times out and says so
            pass

    async def close(self):
        if self._session is not None:
            await self._session.close()
