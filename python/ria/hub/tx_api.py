"""The hub's TX API (docs/protocol.md §6), with the same admin token as the rest of /api:

  POST /api/agents/{id}/tx            start: {app_id?, radio_config: {tx_sample_rate, tx_center_frequency, tx_gain,
                                      device?, underrun_policy?, buffer_size?, ...}, source: {kind, ...}};
                                      answers once the agent armed (or refused)
  POST /api/agents/{id}/tx/upload     the IQ of a session whose source is an upload: raw cf32_le in the body
                                      (chunked is fine), ?app_id=...; answers when the body was sent or the session ended
  POST /api/agents/{id}/tx/configure  {radio_config: {tx_center_frequency?, tx_gain?, ...}}
  POST /api/agents/{id}/tx/stop       {}

A request that breaks what the agent advertises (TX not offered, gain above its cap, frequency outside its ranges,
a source longer than its maximum duration) is refused here with 409 naming the key; the agent checks again.
"""

import asyncio
import itertools

from ..wire import protocol
from ..wire import tx as wire_tx
from . import limits
from .admin_api import AdminApi, _body, _error, _json, _needs
from .agent_link import new_command_id
from .tx_session import TxSession
from .tx_sources import SourceError, SourceStalled, Upload, make_source

START_KEYS = ("app_id", "radio_config", "source")
_app_ids = itertools.count(1)


def add_routes(app, hub):
    api = TxApi(hub)
    r = app.router
    r.add_post("/api/agents/{agent_id}/tx", api.start)
    r.add_post("/api/agents/{agent_id}/tx/upload", api.upload)
    r.add_post("/api/agents/{agent_id}/tx/configure", api.configure)
    r.add_post("/api/agents/{agent_id}/tx/stop", api.stop)


def _unknown(body, known, what):
    unknown = sorted(limits.printable(k, 40) for k in body if k not in known)[:10]
    return f"unknown {what} keys: {', '.join(unknown)} (known: {', '.join(known)})" if unknown else None


def _check_radio_config(rc, kind):
    """The hub's reading of a tx_start / tx_configure radio_config; a list of errors naming keys."""
    if not isinstance(rc, dict) or not rc:
        return [f"radio_config must be a non-empty object, e.g. {{\"tx_center_frequency\": 433.92e6}}"]
    errors, names = [], ("device", "identifier") if kind == "tx_start" else ()
    for key in names:  # the agent's names: the hub checks only that they are names
        if key in rc and not limits.is_printable_name(rc[key], 200):
            errors.append(f"radio_config.{key} must be printable text of 1 to 200 characters")
    _, more = wire_tx.normalize({k: v for k, v in rc.items() if k not in names}, kind)
    errors += [e if "radio_config" in e else f"radio_config.{e}" for e in more]
    size = rc.get("buffer_size")
    if "buffer_size" in rc and not isinstance(size, bool) and isinstance(size, int) and \
            not limits.TX_MIN_FRAME <= size <= limits.TX_MAX_FRAME:
        errors.append(f"radio_config.buffer_size must be {limits.TX_MIN_FRAME} to {limits.TX_MAX_FRAME} samples "
                      f"(a frame is at most 1 MiB), got {size}")
    return errors


def _caps_refusal(link, rc, duration_s=None):
    """Why the agent's advertised caps refuse these settings, or None."""
    if link.tx_caps_error:
        return f"the TX caps agent {link.agent_id} advertises cannot be read ({link.tx_caps_error}); the hub " \
               "does not transmit with an agent whose interlocks it cannot read"
    caps = link.tx_caps
    if not caps.enabled:
        return f"agent {link.agent_id} does not offer TX (tx_enabled is false): its operator must opt in " \
               "(ria_agent.py run --allow-tx, or ria-agent stream --allow-tx)"
    errors = caps.errors(rc) + wire_tx.duration_errors(caps, duration_s)
    if errors:
        return "refused by the hub from the agent's advertised caps: " + "; ".join(errors)
    return None


class TxApi(AdminApi):
    @property
    def timeout_s(self):
        return self.hub.config.tx_answer_timeout_s

    @_needs("teacher")
    async def start(self, request):
        link = self._link(request)
        body = await _body(request)
        problem = _unknown(body, START_KEYS, "body")
        if problem:
            return _error(400, problem)
        rc = body.get("radio_config")
        errors = _check_radio_config(rc, "tx_start")
        if errors:
            return _error(400, "; ".join(errors))
        app_id = body.get("app_id") or f"tx-{next(_app_ids)}"
        if not limits.is_printable_name(app_id):
            return _error(400, f"app_id must be printable text of 1 to {limits.MAX_NAME_CHARS} characters")
        if link.stream and link.stream.app_id == app_id:
            return _error(400, f"app_id {app_id} is the agent's RX session; a TX session needs an app_id of its own")
        rc = dict(rc)
        rc.setdefault("buffer_size", 4096)  # the RIA agent's mock radio takes 4096 samples a call
        try:
            source = make_source(body.get("source"), float(rc["tx_sample_rate"]), self.hub.config.recordings_dir)
        except SourceError as e:
            return _error(400, str(e))
        refusal = _caps_refusal(link, {k: float(v) for k, v in rc.items()
                                       if k in ("tx_gain", "tx_center_frequency")}, source.duration_s)
        if refusal is None and link.tx is not None:
            refusal = f"agent {link.agent_id} has TX session {link.tx.app_id} ({link.tx.state}); stop it first " \
                      f"(ria_hub.py tx-stop {link.agent_id})"
        if refusal:
            source.close()
            return _error(409, refusal)
        if "device" not in rc:
            device = self._default_device(link)
            if device:
                rc["device"] = device
        self.hub.counters["commands"] += 1
        session = link.tx = TxSession(link, app_id, rc, source, self.timeout_s)
        if isinstance(source, Upload):  # tx_start goes out once the data is here: see upload()
            asyncio.get_running_loop().call_later(limits.TX_UPLOAD_WAIT_S, self._upload_overdue, session)
            return _json({"app_id": app_id, "state": session.state, "message": "waiting for the upload",
                          "upload": f"/api/agents/{link.agent_id}/tx/upload?app_id={app_id}",
                          "session": session.as_dict()}, 202)
        return await self._started(session)

    async def _started(self, session):
        try:
            state = await session.start()
        except ConnectionError:
            session.closed()
            state = session.state
        answer = {"app_id": session.app_id, "state": state, "message": session.message,
                  "session": session.as_dict()}
        if state in ("armed", "transmitting"):
            return _json(answer)
        answer["error"] = session.message or f"the agent ended the session ({state})"
        timed_out = session.stop_reason and "did not answer" in session.stop_reason
        return _json(answer, 504 if timed_out else 502)

    @staticmethod
    def _upload_overdue(session):
        if session.state == "waiting" and not session.source.attached:
            asyncio.ensure_future(session.stop(f"no upload arrived within {limits.TX_UPLOAD_WAIT_S:g} s",
                                               as_error=True))

    @_needs("teacher")
    async def upload(self, request):
        """Arms the agent once the first frame of the body is in, sends the rest as the agent takes it, and
        answers when all of it went out (or the session ended): the session's state and counts."""
        link = self._link(request)
        session = link.tx
        app_id = request.query.get("app_id", "")
        if session is None or session.app_id != app_id:
            return _error(409, f"agent {link.agent_id} has no TX session {limits.printable(app_id)} waiting for an "
                               "upload; start one with source {\"kind\": \"upload\", ...} first")
        source = session.source
        if not isinstance(source, Upload) or source.attached:
            return _error(409, f"TX session {session.app_id} takes no upload (its source is "
                               f"{source.description['kind']}, or its upload has begun)")
        source.attach(request.content)
        try:
            empty = not await source.prefetch(session.frame_samples)
        except SourceStalled as e:
            empty, source.note = True, str(e)
        if empty:
            await session.stop(source.note or "the upload was empty", as_error=True)
            return _error(400, f"TX session {session.app_id}: {session.message}")
        started = await self._started(session)
        if started.status != 200:
            return started
        await _first([session.all_sent.wait(), session.ended.wait()])
        return _json({"app_id": session.app_id, "state": session.state, "message": session.message,
                      "received_bytes": source.bytes_received, "sent_samples": session.sent, "note": source.note,
                      "session": session.as_dict()})

    @_needs("teacher")
    async def configure(self, request):
        link = self._link(request)
        body = await _body(request)
        problem = _unknown(body, ("radio_config",), "body")
        rc = body.get("radio_config")
        errors = [problem] if problem else _check_radio_config(rc, "tx_configure")
        if errors:
            return _error(400, "; ".join(errors))
        session = link.tx
        if session is None or session.state not in ("armed", "transmitting"):
            return _error(409, f"agent {link.agent_id} has no TX session under way; start one with ria_hub.py tx")
        if session.audio:
            return _error(409, f"TX session {session.app_id} is a play session (audio): it takes no tx_configure; "
                               "stop it and say or play again")
        if session.source_done:
            return _error(409, f"TX session {session.app_id} has sent its whole source; a change would apply to "
                               "nothing")
        refusal = _caps_refusal(link, {k: float(v) for k, v in rc.items()
                                       if k in ("tx_gain", "tx_center_frequency")})
        if refusal:
            return _error(409, refusal)
        self.hub.counters["commands"] += 1
        index, info, error = await session.configure(dict(rc))
        answer = {"app_id": session.app_id, "sample_index": index, "tx_info": info, "error": error,
                  "confirmed": None if not link.acknowledges else info is not None}
        if error:
            return _json(answer, 504 if "did not confirm" in error or "within" in error else 502)
        return _json(answer)

    @_needs("teacher")
    async def stop(self, request):
        link = self._link(request)
        await _body(request)
        session = link.tx
        self.hub.counters["commands"] += 1
        if session is None:  # nothing of the hub's: the agent may still hold one (after a hub restart)
            app_id = (link.agent_tx or {}).get("app_id") or (link.tx_last.app_id if link.tx_last else "")
            await link.ws.send_str(protocol.encode(dict(wire_tx.tx_stop(app_id), id=new_command_id())))
            return _json({"app_id": app_id, "state": "idle", "message": "no TX session on the hub; tx_stop sent",
                          "session": None})
        await session.stop("stopped by the operator")
        answer = {"app_id": session.app_id, "state": session.state, "message": session.message,
                  "session": session.as_dict()}
        if session.state == "error" and "did not confirm" in (session.message or ""):
            answer["error"] = session.message
            return _json(answer, 504)
        return _json(answer)


async def _first(awaitables):
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
