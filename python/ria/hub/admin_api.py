"""The hub's JSON API for the teacher: agents, sessions (start / stop / configure), spectra, recordings, keys,
access tokens.

Every /api route needs `Authorization: Bearer <token>`: the admin token (in the hub's data folder) or an access
token whose role (roles.py) allows the route for the agent it names; otherwise 401 (no such token) or 403 (the
reason it is not allowed).
"""

import itertools
import json
import os

from aiohttp import web

from ..wire import devices, protocol
from . import credentials, limits, roles, spectrum as spectrum_meter
from .store import answer

COMMAND_TIMEOUT = 10.0
_app_ids = itertools.count(1)


def add_routes(app, hub):
    api = AdminApi(hub)
    r = app.router
    r.add_get("/api/agents", api.agents)
    r.add_get("/api/agents/{agent_id}", api.agent)
    r.add_delete("/api/agents/{agent_id}", api.delete_agent)
    r.add_post("/api/agents/{agent_id}/revoke", api.revoke_token)
    r.add_post("/api/agents/{agent_id}/start", api.start)
    r.add_post("/api/agents/{agent_id}/stop", api.stop)
    r.add_post("/api/agents/{agent_id}/configure", api.configure)
    r.add_get("/api/agents/{agent_id}/spectrum", api.spectrum)
    r.add_post("/api/agents/{agent_id}/record", api.record)
    r.add_get("/api/recordings", api.recordings)
    r.add_get("/api/keys", api.keys)
    r.add_post("/api/keys", api.create_key)
    r.add_delete("/api/keys/{key_id}", api.revoke_key)
    r.add_get("/api/me", api.me)
    r.add_get("/api/spectra", api.spectra)
    r.add_get("/api/tokens", api.tokens)
    r.add_post("/api/tokens", api.create_token)
    r.add_delete("/api/tokens/{token_id}", api.revoke_access_token)


def _json(data, status=200):
    return web.json_response(data, status=status, dumps=limits.dumps)


def _error(status, message):
    return _json({"error": message}, status)


def _failure(exception_class, message):
    """An aiohttp HTTP exception with a JSON body, for raising out of helpers."""
    return exception_class(text=json.dumps({"error": message}), content_type="application/json")


def _needs(level):
    """A route that needs `level` (roles.LEVELS) for the agent in its path, if it names one."""
    def wrap(handler):
        async def checked(self, request):
            access = roles.access_for(credentials.bearer(request), self.hub.admin_token, self.hub.store)
            if access is None:
                return _error(401, "this API needs 'Authorization: Bearer <token>': the admin token (file "
                                   "admin_token in the hub's data folder) or a token from `ria_hub.py tokens create`")
            refusal = access.refusal(level, request.match_info.get("agent_id"))
            if refusal:
                return _error(403, refusal)
            request["access"] = access
            return await handler(self, request)
        return checked
    return wrap


_admin = _needs("admin")


async def _body(request):
    if not request.can_read_body:
        return {}
    try:
        body = await limits.json_body(request)
    except ValueError as e:
        raise _failure(web.HTTPBadRequest, f"the body is not JSON the hub accepts: {limits.printable(e, 120)}")
    if not isinstance(body, dict):
        raise _failure(web.HTTPBadRequest, "the body must be a JSON object")
    return body


class AdminApi:
    def __init__(self, hub):
        self.hub = hub

    def _link(self, request):
        agent_id = request.match_info["agent_id"]
        link = self.hub.links.get(agent_id)
        if link is None:
            if self.hub.store.agent_exists(agent_id):
                raise _failure(web.HTTPConflict, f"agent {agent_id} is offline")
            raise _failure(web.HTTPNotFound, f"no agent {agent_id}")
        return link

    # ---------------------------------------------------------------- agents

    @_needs("view")
    async def agents(self, request):
        out = []
        access = request["access"]
        for row in self.hub.store.list_agents():
            if not access.sees(row["agent_id"]):
                continue
            link = self.hub.links.get(row["agent_id"])
            remote = None if link or not self.hub.cluster else self.hub.cluster.remote_summary(row["agent_id"])
            if link:
                out.append(dict(link.summary(), node=self.hub.cluster.node_id) if self.hub.cluster else link.summary())
            elif remote:  # held by another hub node of the cluster
                out.append(remote)
            else:
                out.append({"agent_id": row["agent_id"], "name": row["name"], "online": False,
                            "status": "revoked" if row["token_revoked"] else "offline",
                            "hardware": row["hardware"], "last_heartbeat": row["last_seen"], "stream": None})
        return _json({"agents": out})

    @_needs("view")
    async def agent(self, request):
        link = self._link(request)
        return _json(dict(link.summary(), errors=link.errors, recordings=link.recordings))

    async def _lock_out(self, request, change, done, reason):
        agent_id = request.match_info["agent_id"]
        try:
            await answer(change(agent_id))
        except KeyError as e:
            return _error(404, e.args[0])
        await self.hub.disconnect(agent_id, reason)
        self.hub.log.info("agent %s: %s", agent_id, reason)
        return _json({done: agent_id})

    @_admin
    async def delete_agent(self, request):
        return await self._lock_out(request, self.hub.store.delete_agent, "deleted",
                                    "agent deleted by the hub's operator")

    @_admin
    async def revoke_token(self, request):
        return await self._lock_out(request, self.hub.store.revoke_token, "revoked",
                                    "token revoked by the hub's operator")

    async def _command(self, link, msg, record_to=None):
        self.hub.counters["commands"] += 1
        result = await link.command(msg, COMMAND_TIMEOUT, record_to)
        status = 502 if result["error"] else 200
        if result["acked"] is False or (msg["type"] in ("start", "stop") and result["status"] is None
                                         and not result["error"]):
            status = 504
            result["error"] = f"agent {link.agent_id} did not answer {msg['type']} within {COMMAND_TIMEOUT:.0f} s"
        return _json(result, status)

    @staticmethod
    def _default_device(link):
        """The device a start without one opens: the first real radio the agent reports, the simulator
        only when it is all there is, and none (the agent's own choice) when the agent reports nothing."""
        real = [name for name in link.hardware if name not in devices.SIMULATOR_NAMES]
        return (real or link.hardware or [None])[0]

    @_needs("control")
    async def start(self, request):
        link = self._link(request)
        body = await _body(request)
        if not isinstance(body.get("radio_config") or {}, dict):
            return _error(400, "radio_config must be an object")
        app_id = body.get("app_id") or f"lab-{next(_app_ids)}"
        if not limits.is_printable_name(app_id):
            return _error(400, f"app_id must be printable text of 1 to {limits.MAX_NAME_CHARS} characters")
        rc = dict(body.get("radio_config") or {})
        if "device" not in rc:
            device = self._default_device(link)
            if device:
                rc["device"] = device
        record_to = self.hub.config.recordings_dir if body.get("record") else None
        async with link.busy:  # one command at a time per agent: overlapping starts cannot cross
            if link.status == "streaming":
                return _error(409, f"agent {link.agent_id} is streaming session "
                                   f"{link.stream.app_id if link.stream else '?'}; stop it first "
                                   f"(ria_hub.py stop {link.agent_id}), then start the new session")
            return await self._command(link, {"type": "start", "app_id": app_id, "radio_config": rc}, record_to)

    @_needs("control")
    async def stop(self, request):
        link = self._link(request)
        async with link.busy:
            app_id = link.stream.app_id if link.stream else ""
            if link.status != "streaming" and not link.acknowledges:
                # The RIA agent does not answer a stop while idle; there is nothing to wait for.
                await link.ws.send_str(protocol.encode({"type": "stop", "app_id": app_id}))
                return _json({"id": None, "acked": None, "status": "idle", "error": None})
            return await self._command(link, {"type": "stop", "app_id": app_id})

    @_needs("control")
    async def configure(self, request):
        link = self._link(request)
        body = await _body(request)
        rc = body.get("radio_config")
        if not isinstance(rc, dict) or not rc:
            return _error(400, "configure needs a non-empty radio_config object, e.g. {\"center_frequency\": 101e6}")
        unknown = sorted(set(rc) - set(protocol.RADIO_CONFIG_KEYS) - set(protocol.KEY_ALIASES))
        if unknown:
            return _error(400, f"unknown radio_config keys: {', '.join(unknown)}")
        async with link.busy:
            app_id = link.stream.app_id if link.stream else str(body.get("app_id", ""))
            return await self._command(link, {"type": "configure", "app_id": app_id, "radio_config": rc})

    @_needs("view")
    async def spectrum(self, request):
        link = self._link(request)
        s = link.stream
        snap = link.meter.snapshot(s.sample_rate, s.center_frequency) if s else None
        return _json({"agent_id": link.agent_id, "spectrum": snap,
                                  "stream": s.as_dict() if s else None})

    # ---------------------------------------------------------------- recordings

    @_needs("teacher")
    async def record(self, request):
        link = self._link(request)
        body = await _body(request)
        if body.get("on", True):
            try:
                recorder = link.start_recording(self.hub.config.recordings_dir)
            except ValueError as e:
                return _error(409, str(e))
            wav = getattr(recorder, "wav_path", None)  # a voice agent's stream: WAV and a JSON sidecar
            return _json({"recording": wav or recorder.meta_path, **({"sidecar": recorder.meta_path} if wav else {})})
        return _json({"files": link.stop_recording()})

    @_needs("teacher")
    async def recordings(self, _request):
        folder = self.hub.config.recordings_dir
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        return _json({"folder": folder, "files": [n for n in names if n.endswith(".sigmf-meta")],
                      "audio": [n for n in names if n.endswith(".wav")]})

    # ---------------------------------------------------------------- registration keys

    @_admin
    async def keys(self, _request):
        rows = [{k: v for k, v in row.items() if k != "digest"} for row in self.hub.store.list_keys()]
        return _json({"keys": rows})

    @_admin
    async def create_key(self, request):
        body = await _body(request)
        try:
            key_id, key = await answer(self.hub.store.create_key(uses=body.get("uses", 1), ttl_s=body.get("ttl_s"),
                                                                 label=body.get("label", "")))
        except ValueError as e:
            return _error(400, str(e))
        return _json({"key_id": key_id, "key": key})

    @_admin
    async def revoke_key(self, request):
        try:
            await answer(self.hub.store.revoke_key(request.match_info["key_id"]))
        except KeyError as e:
            return _error(404, e.args[0])
        return _json({"revoked": request.match_info["key_id"]})

    # ---------------------------------------------------------------- roles and the page's overview

    @_needs("view")
    async def me(self, request):
        return _json(request["access"].as_dict())

    @_needs("view")
    async def spectra(self, request):
        """Every visible streaming agent's spectrum at once, reduced to `bins` (peak-preserving): the overview."""
        try:
            bins = int(request.query.get("bins", "128"))
        except ValueError:
            bins = 0
        if bins not in spectrum_meter.REDUCED_SIZES:
            return _error(400, f"bins must be one of {', '.join(map(str, spectrum_meter.REDUCED_SIZES))}")
        access, out = request["access"], {}
        for agent_id, link in self.hub.links.items():
            s = link.stream
            if access.sees(agent_id) and s is not None:
                snap = link.meter.reduced(bins, s.sample_rate, s.center_frequency)
                if snap:
                    out[agent_id] = snap
        return _json({"spectra": out})

    @_admin
    async def tokens(self, _request):
        return _json({"tokens": self.hub.store.list_access_tokens()})

    @_admin
    async def create_token(self, request):
        body = await _body(request)
        try:
            token_id, token = await answer(self.hub.store.create_access_token(body.get("role"), body.get("agent_id"),
                                                                               body.get("label", "")))
        except ValueError as e:
            return _error(400, str(e))
        return _json({"token_id": token_id, "token": token, "role": body["role"], "agent_id": body.get("agent_id")})

    @_admin
    async def revoke_access_token(self, request):
        try:
            await answer(self.hub.store.revoke_access_token(request.match_info["token_id"]))
        except KeyError as e:
            return _error(404, e.args[0])
        return _json({"revoked": request.match_info["token_id"]})
