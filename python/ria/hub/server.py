"""The lab hub's aiohttp application: registration, the agent endpoint, the JSON API, the page, health, metrics."""

import asyncio
import logging
import os
import time

from aiohttp import WSMsgType, web

from ..wire import protocol
from . import admin_api, credentials, limits, twin_connections, tx_api, voice_api
from .agent_link import MISSED_HEARTBEATS, AgentLink
from .access_log import RedactingAccessLogger
from .listener import ConnectionLimits, GuardedListener, client_address, raise_descriptor_limit
from .ratelimit import RateLimiter
from .republisher import Republisher
from .store import RegistrationRefused, Store, answer

STATIC = os.path.join(os.path.dirname(__file__), "static")
MAX_FRAME_BYTES = protocol.MAX_BUFFER_SIZE * 8 + 1024
LIVENESS_PERIOD = 1.0
SAVE_PERIOD = 5.0


class HubConfig:
    def __init__(self, data_dir, host="127.0.0.1", port=8600, zmq_endpoint="", register_limit=20,
                 register_window=60.0, connection_limits=None, idle_timeout_s=30.0,
                 tx_answer_timeout_s=limits.TX_ANSWER_TIMEOUT_S, nats_urls=()):
        self.data_dir = os.path.abspath(os.path.expanduser(data_dir))
        self.host, self.port = host, port
        self.zmq_endpoint = zmq_endpoint
        self.register_limit, self.register_window = register_limit, register_window
        self.limits = connection_limits or ConnectionLimits()
        self.idle_timeout_s = idle_timeout_s  # a kept-alive HTTP connection with no request
        self.tx_answer_timeout_s = tx_answer_timeout_s  # armed after tx_start, done after tx_stop, tx_info
        self.nats_urls = tuple(nats_urls)  # cluster mode (hub/cluster/): the registry and the buses on NATS

    @property
    def db_path(self):
        return os.path.join(self.data_dir, "hub.sqlite")

    @property
    def recordings_dir(self):
        return os.path.join(self.data_dir, "recordings")

    @property
    def admin_token_path(self):
        return os.path.join(self.data_dir, "admin_token")


def admin_token(config):
    """The hub's admin token, made on first use and kept in the data folder (mode 0600)."""
    os.makedirs(config.data_dir, mode=0o700, exist_ok=True)
    try:
        with open(config.admin_token_path) as f:
            return f.read().strip()
    except FileNotFoundError:
        token = credentials.new_secret(credentials.ADMIN_PREFIX)
        fd = os.open(config.admin_token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token


def json_error(status, detail):
    return web.json_response({"detail": detail}, status=status)


class Hub:
    def __init__(self, config, log=None):
        self.config = config
        self.log = log or logging.getLogger("ria_hub")
        os.makedirs(config.data_dir, mode=0o700, exist_ok=True)
        self.admin_token = admin_token(config)
        self.cluster = self.data_bus = None
        if config.nats_urls:
            from .cluster.node import ClusterNode
            self.cluster = ClusterNode(self, config.nats_urls, self.log)
            self.store = None  # the cluster's, once it has connected (serve())
        else:
            self.store = Store(config.db_path)
        self.links = {}
        self.twins = twin_connections.TwinConnections()
        self.republisher = Republisher(config.zmq_endpoint) if config.zmq_endpoint else None
        self.limiter = RateLimiter(config.register_limit, config.register_window)
        self.started = time.time()
        self.counters = {"registrations_ok": 0, "registrations_refused": 0, "registrations_limited": 0,
                         "ws_connections": 0, "ws_rejected": 0, "heartbeat_timeouts": 0, "commands": 0,
                         "iq_frames": 0, "iq_bytes": 0, "agent_messages_refused": 0, "connections_refused": 0,
                         "header_timeouts": 0, "header_evictions": 0, "bad_requests": 0, "tx_frames": 0,
                         "tx_samples": 0, "audio_frames_received": 0, "audio_frames_concealed": 0,
                         "audio_decode_errors": 0, "audio_frames_sent": 0, "audio_samples_sent": 0}
        self._tasks = []
        self.listener = None  # set by serve()
        self._agent_logs = {}

    # ---------------------------------------------------------------- application

    def app(self):
        app = web.Application(client_max_size=1 << 20)
        if self.cluster:
            app.middlewares.append(self.cluster.control.middleware)
        app.router.add_post("/screens/agents/register", self.register)
        app.router.add_get("/screens/agent/ws", self.agent_ws)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/", self.page)
        app.router.add_static("/static/", STATIC)
        admin_api.add_routes(app, self)
        tx_api.add_routes(app, self)
        voice_api.add_routes(app, self)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app):
        self._tasks = [asyncio.create_task(self._watch_liveness())]

    async def _on_shutdown(self, _app):
        for task in self._tasks:
            task.cancel()
        for link in list(self.links.values()):
            if link.tx:  # a radio must not go on transmitting zeros or a repeated frame for a hub that is gone
                await link.tx.stop_now("the hub is shutting down")
            await link.ws.close(code=1001, message=b"hub shutting down")
        self._save_seen()
        if self.republisher:
            self.republisher.close()
        if self.cluster:
            await self.cluster.close()
        else:
            self.store.close()

    async def page(self, _request):
        return web.FileResponse(os.path.join(STATIC, "index.html"))

    # ---------------------------------------------------------------- registration

    async def register(self, request):
        client = client_address(request, self.config.limits)
        wait = self.limiter.attempt(client)
        if wait:
            self.counters["registrations_limited"] += 1
            return json_error(429, f"too many registration attempts from {client}; try again in {wait:.0f} s")
        if not request.headers.get("X-API-Key"):  # refused before the body is waited for
            self.counters["registrations_refused"] += 1
            return web.json_response({"detail": {"reason": "invalid_key"}}, status=401)
        try:
            body = await limits.json_body(request)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.counters["bad_requests"] += 1
            return json_error(400, "the body must be a JSON object such as {\"name\": \"bench-3\"}")
        name = body.get("name") or "agent"
        if not limits.is_printable_name(name):
            self.counters["bad_requests"] += 1
            return json_error(400, f"name must be printable text of 1 to {limits.MAX_NAME_CHARS} characters")
        try:
            agent_id, token = await answer(self.store.register(request.headers.get("X-API-Key", ""), name))
        except RegistrationRefused as refused:
            self.counters["registrations_refused"] += 1
            status = 401 if refused.reason == "invalid_key" else 403
            self.log.info("registration refused from %s: %s", client, refused.reason)
            return web.json_response({"detail": {"reason": refused.reason}}, status=status)
        self.counters["registrations_ok"] += 1
        self.log.info("registered agent %s (%s) from %s", agent_id, name, client)
        return web.json_response({"agent_id": agent_id, "token": token})

    # ---------------------------------------------------------------- the agent endpoint

    async def agent_ws(self, request):
        agent = await answer(self.store.agent_for_token(credentials.bearer(request) or request.query.get("token", "")))
        claimed = request.query.get("agent_id")
        if agent is None or (claimed and claimed != agent["agent_id"]):
            self.counters["ws_rejected"] += 1
            reason = "unknown or missing agent token" if agent is None else "the token belongs to another agent_id"
            self.log.info("agent connection refused from %s: %s", client_address(request, self.config.limits),
                          reason)
            return json_error(401, reason)
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_FRAME_BYTES, autoping=True)
        await ws.prepare(request)
        agent_id = agent["agent_id"]
        log = self.agent_log(agent_id)
        link = AgentLink(agent_id, agent["name"], ws, self, log=log)
        link.address = client_address(request, self.config.limits)
        old, self.links[agent_id] = self.links.get(agent_id), link
        self.counters["ws_connections"] += 1
        log(logging.INFO, "agent %s (%s) connected from %s", agent_id, limits.printable(agent["name"]), link.address)
        if self.cluster:
            self.cluster.agent_connected(link)
        if old is not None:  # the agent came back before we noticed its old connection die, or it runs twice
            warning = self.twins.replaced(agent_id, old.address, link.address)
            if warning:
                log(logging.WARNING, "%s", warning)
            await old.ws.close(code=twin_connections.CLOSE_CODE, message=twin_connections.close_reason(link.address))
        counters = self.counters
        try:
            async for msg in ws:
                try:
                    if msg.type == WSMsgType.BINARY:
                        counters["iq_frames"] += 1
                        counters["iq_bytes"] += len(msg.data)
                        link.on_binary(msg.data)
                    elif msg.type == WSMsgType.TEXT:
                        link.on_text(msg.data)
                except Exception as e:  # a bug meeting odd input must not drop the agent or flood the log
                    counters["agent_messages_refused"] += 1
                    log(logging.ERROR, "agent %s: a message failed: %s", agent_id, limits.printable(repr(e), 200))
                if link.refused_messages > limits.MAX_REFUSED_MESSAGES:
                    log(logging.WARNING, "agent %s: over %d refused messages; closing its connection", agent_id,
                        limits.MAX_REFUSED_MESSAGES)
                    await ws.close(code=1008, message=b"too many refused messages")
        finally:
            link.closed()
            if self.links.get(agent_id) is link:
                del self.links[agent_id]
                self.store.save_seen({agent_id: (link.last_heartbeat or time.time(), link.hardware)})
                if self.cluster:
                    self.cluster.agent_disconnected(link)
            log(logging.INFO, "agent %s disconnected", agent_id)
        return ws

    def agent_log(self, agent_id):
        """One log limiter per agent id, kept across its reconnects (bounded: ids come from the database)."""
        limiter = self._agent_logs.get(agent_id)
        if limiter is None:
            if len(self._agent_logs) > 10000:
                self._agent_logs.clear()
            limiter = self._agent_logs[agent_id] = limits.LogLimiter(self.log, time.monotonic)
        return limiter

    async def _watch_liveness(self):
        next_save = time.monotonic() + SAVE_PERIOD
        while True:
            await asyncio.sleep(LIVENESS_PERIOD)
            try:
                await self._check_links()
            except Exception:  # the watcher must outlive anything one link does
                self.log.exception("liveness check failed; it goes on")
            if time.monotonic() >= next_save:
                self._save_seen()
                next_save = time.monotonic() + SAVE_PERIOD

    async def _check_links(self):
        for link in list(self.links.values()):
            if link.heartbeat_overdue():
                self.counters["heartbeat_timeouts"] += 1
                link.log(logging.INFO, "agent %s missed %d heartbeats; dropping its connection", link.agent_id,
                         MISSED_HEARTBEATS)
                link.online = False
                await link.ws.close(code=1001, message=b"missed heartbeats")
            link.flush_recording()

    async def disconnect(self, agent_id, reason):
        """Closes an agent's live connection at once (its token or record is gone)."""
        link = self.links.get(agent_id)
        if link is not None:
            await link.ws.close(code=4001, message=reason.encode()[:120])

    def _save_seen(self):
        self.store.save_seen({a: (link.last_heartbeat, link.hardware) for a, link in self.links.items()
                              if link.last_heartbeat})

    # ---------------------------------------------------------------- the hub's own health

    def connections_open(self):
        return self.listener.open if self.listener else 0

    def online_count(self):
        return sum(1 for link in self.links.values() if link.online)

    async def health(self, _request):
        body = {"status": "ok", "uptime_s": round(time.time() - self.started, 1),
                "agents_connected": len(self.links), "agents_online": self.online_count(),
                "streaming": sum(1 for link in self.links.values() if link.status == "streaming")}
        if self.cluster:  # a node without NATS still serves the agents it holds: degraded, not down
            body["cluster"] = self.cluster.health()
            body["status"] = "ok" if self.cluster.link.connected else "degraded"
        return web.json_response(body)

    async def metrics(self, _request):
        c = self.counters
        lines = []

        def metric(name, kind, help_text, samples):
            lines.append(f"# HELP ria_hub_{name} {help_text}")
            lines.append(f"# TYPE ria_hub_{name} {kind}")
            for labels, value in samples:
                lines.append(f"ria_hub_{name}{labels} {value}")

        metric("agents_connected", "gauge", "Agents with an open WebSocket.", [("", len(self.links))])
        metric("agents_online", "gauge", "Agents whose heartbeats are current.", [("", self.online_count())])
        metric("agents_streaming", "gauge", "Agents in a streaming session.",
               [("", sum(1 for link in self.links.values() if link.status == "streaming"))])
        metric("agents_transmitting", "gauge", "Agents in a TX session (waiting, pending, armed or transmitting).",
               [("", sum(1 for link in self.links.values() if link.tx))])
        metric("tx_frames_total", "counter", "Binary IQ frames sent to agents in TX sessions.", [("", c["tx_frames"])])
        metric("tx_samples_total", "counter", "IQ samples sent to agents in TX sessions.", [("", c["tx_samples"])])
        for name, help_text in (("audio_frames_received", "Audio frames received from voice agents' microphones."),
                                ("audio_frames_concealed", "Audio frames the hub concealed (gaps, undecodable Opus)."),
                                ("audio_decode_errors", "Opus packets from agents that libopus could not decode."),
                                ("audio_frames_sent", "Audio frames sent to voice agents' speakers (say, play)."),
                                ("audio_samples_sent", "Audio samples sent to voice agents' speakers.")):
            metric(name + "_total", "counter", help_text, [("", c[name])])
        voice = [(link.agent_id, link.voice_summary()) for link in self.links.values()]
        voice = [(a, v) for a, v in voice if v]
        metric("voice_level_dbfs", "gauge", "A voice agent's levels: the agent's (speaker, mic, out after the echo "
               "canceller) and what the hub received.",
               [(f'{{agent="{a}",where="{where}"}}', value) for a, v in voice
                for where, value in [*((k[:-5], (v["levels"] or {}).get(k)) for k in
                                       ("speaker_dbfs", "mic_dbfs", "out_dbfs")), ("received", v["received_dbfs"])]
                if value is not None])
        for key, kind in (("erle_db", "gauge"), ("echo_delay_ms", "gauge"), ("audio_frames_concealed", "gauge")):
            metric(f"voice_agent_{key}", kind, f"A voice agent's {key} from its heartbeat.",
                   [(f'{{agent="{a}"}}', v[key]) for a, v in voice if v.get(key) is not None])
        metric("agents_registered", "gauge", "Agents in the database.", [("", self.store.count_agents())])
        metric("registrations_total", "counter", "Registration attempts by result.",
               [('{result="ok"}', c["registrations_ok"]), ('{result="refused"}', c["registrations_refused"]),
                ('{result="rate_limited"}', c["registrations_limited"])])
        metric("ws_connections_total", "counter", "Agent WebSocket connections accepted.", [("", c["ws_connections"])])
        metric("ws_rejected_total", "counter", "Agent WebSocket connections refused.", [("", c["ws_rejected"])])
        metric("heartbeat_timeouts_total", "counter", "Connections dropped for missed heartbeats.",
               [("", c["heartbeat_timeouts"])])
        metric("commands_total", "counter", "Commands sent to agents.", [("", c["commands"])])
        metric("iq_frames_total", "counter", "Binary IQ frames received.", [("", c["iq_frames"])])
        metric("iq_bytes_total", "counter", "IQ bytes received.", [("", c["iq_bytes"])])
        metric("agent_messages_refused_total", "counter", "Agent text messages refused (too big, not JSON, bad values).",
               [("", c["agent_messages_refused"])])
        metric("connections_refused_total", "counter", "Connections answered 503 at the connection caps.",
               [("", c["connections_refused"])])
        metric("header_timeouts_total", "counter", "Connections closed for not sending request headers in time.",
               [("", c["header_timeouts"])])
        metric("header_evictions_total", "counter", "Connections still sending headers closed to make room at the cap.",
               [("", c["header_evictions"])])
        metric("bad_requests_total", "counter", "Registration requests refused as malformed.", [("", c["bad_requests"])])
        metric("connections_open", "gauge", "TCP connections open now.", [("", self.connections_open())])
        metric("uptime_seconds", "gauge", "Seconds since the hub started.", [("", round(time.time() - self.started, 1))])
        for name, kind, help_text, value in self.cluster.metrics() if self.cluster else ():
            metric(name, kind, help_text, [("", value)])
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})


async def serve(config, ready=None, log=None):
    """Runs the hub until cancelled; `ready(hub, url)` is called once it listens."""
    hub = Hub(config, log)
    if hub.cluster:
        from .cluster.nats_link import NatsUnavailable
        try:
            await hub.cluster.start()
        except NatsUnavailable as e:
            await hub.cluster.link.close()
            raise ValueError(str(e)) from None
        hub.data_bus = hub.cluster.data
    # Each connection is one descriptor; leave room for the database, recordings and logs.
    raise_descriptor_limit(config.limits.max_connections + 256)
    runner = web.AppRunner(hub.app(), access_log_class=RedactingAccessLogger, keepalive_timeout=config.idle_timeout_s)
    await runner.setup()
    listener = hub.listener = GuardedListener(runner.server, config.limits, hub.counters)
    try:
        port = await listener.start(config.host, config.port)
        url = f"http://{config.host}:{port}"
        if hub.cluster:
            hub.cluster.listening(url)
        if ready:
            ready(hub, url)
        await asyncio.Event().wait()
    finally:
        listener.stop_listening()
        await runner.cleanup()
        await listener.wait_closed()
