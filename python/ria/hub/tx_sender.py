"""Sends a TX session's frames to its agent, in order, from `armed` on (docs/protocol.md §6, flow control).

- credit: the agent said how much it holds (`armed` with `queue_samples`) and reports `tx_progress`; the hub
  keeps sent − played ≤ queue_samples, so the agent's queue never fills and a tx_stop or tx_configure never waits
  behind more than that queue.
- paced: an agent that reports no progress (the RIA agent 0.1.7, which holds 8 frames and drops one after a 2 s
  stall) gets its samples at the TX sample rate, a small lead ahead.

Either way each send is awaited (TCP back-pressure) and the hub holds one frame. A tx_configure goes out between
two frames, so it applies from the first sample of the next one; the hub records that sample's index.
"""

import asyncio
import logging

from ..wire import protocol
from ..wire import tx as wire_tx
from . import limits
from .agent_link import new_command_id
from .tx_sources import SourceStalled

LEAD_S = 0.1  # paced: how far ahead of the sample rate the hub may be
LEAD_FRAMES = (2, 6)  # paced: the lead in frames, at least and at most (the RIA agent's queue holds 8)
DRAIN_MARGIN_S = 1.0  # after the last frame, how long past its play-out time the hub waits before tx_stop


class _Pace:
    """When the next sample is due at the TX sample rate: t0 + (sent − s0) / rate, re-based at a rate change."""

    def __init__(self, now, rate):
        self.t0, self.s0, self.rate = now, 0, rate

    def due(self, sent):
        return self.t0 + (sent - self.s0) / self.rate

    def change_rate(self, sent, rate):
        self.t0, self.s0, self.rate = self.due(sent), sent, rate


async def run_sender(session):
    loop = asyncio.get_running_loop()
    pace = _Pace(loop.time(), session.rate)
    frame = session.frame_samples
    lead = min(LEAD_FRAMES[1] * frame, max(LEAD_FRAMES[0] * frame, round(LEAD_S * session.rate)))
    try:
        while True:
            await _send_controls(session, pace)
            room = await _room(session, loop, pace, lead, frame)
            if room is None:
                continue  # woken by a configure
            frames = await _read(session.source, room)
            await _send_controls(session, pace)  # one that came during the read goes ahead of this frame
            if not frames:
                break
            for payload, samples in frames:
                await session.link.ws.send_bytes(payload)
                session.counted(samples)
            await asyncio.sleep(0)  # a fast agent never pauses the transport: let the hub's other work run
        session.source_done = True
        session.all_sent.set()
        await _drain(session, loop, pace)
        await session.stop("the source ended")
    except SourceStalled as e:
        await session.stop(str(e))
    except ConnectionError:
        pass  # the link is closing, and its close ends the session
    except Exception as e:  # noqa: BLE001 - whatever failed, the radio must not be left transmitting
        session.link.log(logging.ERROR, "agent %s: TX sender failed: %s", session.link.agent_id,
                         limits.printable(repr(e), 200))
        await session.stop(f"the hub's sender failed: {limits.printable(e, 200)}")


async def _read(source, room):
    """[(payload, samples)]: IQ sources give cf32 bytes, audio sources (audio_sources.py) encoded frames."""
    if hasattr(source, "read_frames"):
        return await source.read_frames(room)
    data = await source.read(room)
    return [(data, len(data) // wire_tx.BYTES_PER_SAMPLE)] if data else []


async def _room(session, loop, pace, lead, frame):
    """Samples the next frame may carry, once there is room for a whole frame; None when woken by a control."""
    session.wake.clear()
    if session.controls:
        return None
    if session.flow == "credit":
        room = session.queue_samples - (session.sent - (session.played or 0))
        if room >= frame:
            return frame
        await session.wake.wait()
        return None
    wait = pace.due(session.sent - lead) - loop.time()
    if wait <= 0:
        return frame
    try:
        await asyncio.wait_for(session.wake.wait(), wait)
    except asyncio.TimeoutError:
        pass
    return None


async def _send_controls(session, pace):
    while session.controls:
        radio_config, sent = session.controls.popleft()
        if sent.done():
            continue
        msg = dict(wire_tx.tx_configure(session.app_id, radio_config), id=new_command_id())
        await session.link.ws.send_str(protocol.encode(msg))
        session.record_configure(radio_config)
        if "tx_sample_rate" in radio_config:
            pace.change_rate(session.sent, float(radio_config["tx_sample_rate"]))
            session.rate = pace.rate
        if not sent.done():
            sent.set_result(session.sent)


async def _drain(session, loop, pace):
    """Waits until the agent has played what was sent (credit), or until it is due to have (paced)."""
    if session.flow == "credit":
        deadline = loop.time() + (session.sent - (session.played or 0)) / session.rate + DRAIN_MARGIN_S
        while (session.played or 0) < session.sent and not session.ended.is_set():
            session.wake.clear()
            try:
                await asyncio.wait_for(session.wake.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return
    else:
        wait = pace.due(session.sent) + 0.1 - loop.time()
        if wait > 0:
            try:
                await asyncio.wait_for(session.ended.wait(), wait)
            except asyncio.TimeoutError:
                pass

