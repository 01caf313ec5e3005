"""One TX session of one agent as the hub sees it (docs/protocol.md §6).

Its state is what the agent answered (tx_status armed / transmitting / underrun / done / error), never what
the hub asked for; the hub adds only what it knows itself: what it sent, and why it sent a tx_stop. A start the
agent does not answer in time, an agent that does not confirm a stop, and a lost connection end the session as
`error` with the reason.
"""

import asyncio
import collections
import logging
import time

from ..wire import audio as wire_audio
from ..wire import protocol
from ..wire import tx as wire_tx
from . import limits
from .agent_link import new_command_id
from .tx_sender import run_sender


class TxSession:
    def __init__(self, link, app_id, radio_config, source, timeout_s):
        self.link, self.app_id, self.radio_config, self.source = link, app_id, radio_config, source
        self.timeout_s = timeout_s
        self.rate = float(radio_config["tx_sample_rate"])
        self.audio = wire_audio.is_audio(radio_config)  # a play session to a voice agent's speaker (§8)
        self.state = "waiting"  # the hub's own until tx_start goes out (an upload waits for its data); then
        # "pending" until the agent answers
        self.message = None  # the agent's words with its last state, or the hub's reason for an error
        self.flow = None  # "credit" (the agent reports tx_progress) or "paced" (at the sample rate), once armed
        self.queue_samples = None
        self.frame_samples = radio_config.get("buffer_size", 4096)
        self.settings = {}  # what the radio took, from armed (or what was asked, for an agent that does not say)
        self.sent = self.frames = 0
        self.received = self.played = self.queued = None  # from tx_progress
        self.max_in_flight = 0
        self.samples_played = None  # from done / underrun
        self.infos = []  # tx_info answers, newest last
        self.configures = []  # what the hub sent and at which sample
        self.source_done = False
        self.stop_reason = None  # why the hub sent tx_stop
        self.started, self.armed_at, self.ended_at = time.time(), None, None
        loop = asyncio.get_running_loop()
        self.answer = loop.create_future()  # armed, or the state that ended a start
        self.ended = asyncio.Event()
        self.all_sent = asyncio.Event()  # the source is exhausted and every frame went out
        self.wake = asyncio.Event()  # progress, a configure or a stop for the sender
        self.controls = collections.deque()  # (radio_config, future) for the sender to send between frames
        self.sender = None

    # ---------------------------------------------------------------- commands

    async def start(self):
        """Sends tx_start and waits for the first answer; returns the session state then."""
        self.state = "pending"
        msg = dict(wire_tx.tx_start(self.app_id, self.radio_config), id=new_command_id())
        await self.link.ws.send_str(protocol.encode(msg))
        try:
            await asyncio.wait_for(asyncio.shield(self.answer), self.timeout_s)
        except asyncio.TimeoutError:
            await self.stop(f"the agent did not answer tx_start within {self.timeout_s:g} s", as_error=True)
        return self.state

    async def stop(self, reason, as_error=False):
        """Stops sending at once, sends tx_stop, and waits for the agent to end the session."""
        if self.ended.is_set():
            return
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.state == "waiting":  # nothing went to the agent
            self._end("done" if not as_error else "error", f"{reason} (before anything was sent to the agent)")
            return
        if self.sender and self.sender is not asyncio.current_task():
            self.sender.cancel()
        await self._send_stop()
        if as_error:  # the agent never said it had a session: the hub's word is all there is
            self._end("error", reason)
            return
        try:
            await asyncio.wait_for(self.ended.wait(), self.timeout_s)
        except asyncio.TimeoutError:
            self._end("error", f"the agent did not confirm tx_stop within {self.timeout_s:g} s")

    async def stop_now(self, reason):
        """tx_stop without waiting for the agent's answer (the hub is going away)."""
        if not self.ended.is_set() and self.state != "waiting":
            self.stop_reason = self.stop_reason or reason
            if self.sender and self.sender is not asyncio.current_task():
                self.sender.cancel()
            await self._send_stop()

    async def _send_stop(self):
        try:
            await self.link.ws.send_str(protocol.encode(dict(wire_tx.tx_stop(self.app_id), id=new_command_id())))
        except ConnectionError:
            pass  # the link's close ends the session

    async def configure(self, radio_config):
        """Queues a tx_configure for the sender (between two frames); returns (sample_index, tx_info or None,
        error or None) once the agent confirmed it, refused it, or (an agent that confirms nothing) it was sent."""
        sent = asyncio.get_running_loop().create_future()  # the sample index it landed at, once sent
        waiters = []
        if self.link.acknowledges:  # waiting before it is sent, so that no answer can come first
            waiters = [self.link.expect(lambda m: m.get("type") == "error" and
                                        limits.printable(m.get("app_id", "")) == self.app_id),
                       self.link.expect(lambda m: m.get("type") == "tx_info" and m.get("app_id") == self.app_id and
                                        sent.done() and m.get("sample_index") == sent.result())]
        ended = asyncio.ensure_future(self.ended.wait())
        self.controls.append((radio_config, sent))
        self.wake.set()
        try:
            done, _ = await asyncio.wait([sent, ended], timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if sent not in done:
                return None, None, "the session ended before the change was sent" if ended in done else \
                    f"tx_configure could not be sent within {self.timeout_s:g} s (the source delivered nothing)"
            if not waiters:
                return sent.result(), None, None
            refused, applied = waiters
            done, _ = await asyncio.wait([refused, applied, ended], timeout=self.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.link.forget(*waiters)
            ended.cancel()
        index = sent.result()
        if applied in done:
            info = wire_tx.parse_tx_info(applied.result())  # read before it woke us: it parses
            return index, {k: v for k, v in info.items() if k != "app_id"}, None
        if refused in done:
            return index, None, limits.printable(refused.result().get("message", "error"), limits.MAX_ERROR_CHARS)
        if ended in done:
            return index, None, f"the session ended ({self.state}) before the change applied"
        return index, None, f"the agent did not confirm tx_configure within {self.timeout_s:g} s"

    def record_configure(self, radio_config):
        self.configures = (self.configures + [{"sample_index": self.sent, "radio_config": radio_config}])[
            -limits.TX_KEPT:]

    # ---------------------------------------------------------------- what the agent says

    def on_status(self, status):
        if self.ended.is_set() or self.state == "waiting":
            return
        state = status["state"]
        if "message" in status:
            self.message = limits.printable(status["message"], limits.MAX_ERROR_CHARS)
        if state == "armed":
            if self.state != "pending":
                return
            self.state, self.armed_at = "armed", time.time()
            queue = status.get("queue_samples")
            if queue and queue < 2 ** 40:
                self.flow, self.queue_samples = "credit", queue
                if not self.audio:  # audio frames are 20 ms, Opus packets cannot be cut
                    self.frame_samples = max(1, min(self.frame_samples, queue // 4))
            else:
                self.flow = "paced"
            keys = ("tx_sample_rate", "sample_format", "tx_gain", "media") if self.audio else \
                ("tx_sample_rate", "tx_center_frequency", "tx_gain")
            self.settings = {k: status.get(k, self.radio_config.get(k)) for k in keys}
            if not self.audio and (status.get("tx_sample_rate") or 0) > 0:  # audio is encoded at the asked rate
                self.rate = status["tx_sample_rate"]
            if self.stop_reason is None:  # armed after the hub's tx_stop went out: nothing more to send
                self.sender = asyncio.create_task(run_sender(self))
            self._answer()
        elif state == "transmitting":
            if self.state in ("pending", "armed"):
                self.state = "transmitting"
        else:
            if status.get("samples_played") is not None:
                self.samples_played = min(status["samples_played"], self.sent)
            if state == "done" and self.stop_reason is None:
                # A done the hub did not ask for ("max duration reached"): the RIA agent 0.1.7 then still holds
                # the session and refuses the next tx_start as "already active" until it gets a tx_stop.
                self.stop_reason = "the agent ended the session"
                asyncio.ensure_future(self._send_stop())
            self._end(state, self.message)

    def on_progress(self, progress):
        if self.ended.is_set() or self.flow is None:
            return
        for key in ("received", "played"):  # never more than the hub sent, never backwards
            value = min(progress[key], self.sent)
            setattr(self, key, max(value, getattr(self, key) or 0))
        self.queued = min(progress["queued"], self.sent)
        self.wake.set()

    def on_info(self, info):
        self.infos = (self.infos + [{k: v for k, v in info.items() if k != "app_id"}])[-limits.TX_KEPT:]
        if (info.get("tx_sample_rate") or 0) > 0:
            self.rate = info["tx_sample_rate"]

    def counted(self, samples):
        self.sent += samples
        self.frames += 1
        self.link.hub.counters["tx_frames"] += 1
        self.link.hub.counters["tx_samples"] += samples
        if self.audio:
            self.link.hub.counters["audio_frames_sent"] += 1
            self.link.hub.counters["audio_samples_sent"] += samples
        if self.flow == "credit":
            self.max_in_flight = max(self.max_in_flight, self.sent - (self.played or 0))

    def closed(self):
        self._end("error", "the agent disconnected")

    # ---------------------------------------------------------------- the end

    def _answer(self):
        if not self.answer.done():
            self.answer.set_result(self.state)

    def _end(self, state, message):
        if self.ended.is_set():
            return
        self.state, self.message, self.ended_at = state, message, time.time()
        self.ended.set()
        self.wake.set()
        self._answer()
        if self.sender and self.sender is not asyncio.current_task():
            self.sender.cancel()
        for _, future in self.controls:
            if not future.done():
                future.set_exception(RuntimeError(f"the TX session ended ({state})"))
        self.controls.clear()
        self.source.close()
        self.link.tx_ended(self)
        self.link.log(logging.INFO, "agent %s: TX session %s %s%s (%d samples sent)", self.link.agent_id,
                      self.app_id, state, f": {message}" if message else "", self.sent)

    # ---------------------------------------------------------------- view

    def as_dict(self):
        in_flight = None if self.played is None else self.sent - self.played
        return {"app_id": self.app_id, "media": "audio" if self.audio else "iq", "state": self.state, "message": self.message, "flow": self.flow,
                "queue_samples": self.queue_samples, "frame_samples": self.frame_samples,
                "settings": self.settings, "source": self.source.description, "sent_samples": self.sent,
                "frames_sent": self.frames, "received": self.received, "played": self.played, "queued": self.queued,
                "in_flight": in_flight, "max_in_flight": self.max_in_flight if self.flow == "credit" else None,
                "samples_played": self.samples_played, "underruns": self.link.stats.get("tx_underruns"),
                "source_done": self.source_done, "stop_reason": self.stop_reason,
                "tx_info": self.infos[-1] if self.infos else None, "tx_infos": self.infos,
                "configures": self.configures, "started": self.started, "armed_at": self.armed_at,
                "ended_at": self.ended_at, "note": getattr(self.source, "note", None)}
