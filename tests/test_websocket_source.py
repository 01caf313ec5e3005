"""ria.websocket_source on a real WebSocket hub endpoint: what the hub sends in a TX session comes out of the
flowgraph sample for sample, with its tags at exact samples, bounded in memory, and each underrun policy.

The tests play the control handler's part by posting the source's `cmd` messages themselves; the n-th tx_*
message on a connection has "_seq" n."""

import json
import threading

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import ria
from helpers import wait_until
from hub_server import TOKEN

RATE = 100e3
WAIT = 10.0


class Player:
    """websocket_source -> throttle (the radio's pace) -> vector sink, with the source's status collected."""

    def __init__(self, hub, flowgraphs, queue_seconds=0.5, underrun_timeout=0.1, rate=RATE):
        self.tb = gr.top_block()
        self.src = ria.websocket_source(url=hub.url(), token=TOKEN, output_type="complex",
                                        queue_seconds=queue_seconds, sample_rate=rate,
                                        underrun_timeout=underrun_timeout)
        self.pace = blocks.throttle(gr.sizeof_gr_complex, rate)
        self.out = blocks.vector_sink_c()
        self.status = ria.message_collector()
        self.tb.connect(self.src, self.pace, self.out)
        self.tb.msg_connect(self.src, "status", self.status, "in")
        self.tb.keep = (self.src, self.status)
        flowgraphs(self.tb)
        assert hub.wait_for(lambda s: s.connections >= 1, WAIT)

    def cmd(self, **cmd):
        self.src._post(pmt.intern("cmd"), pmt.to_pmt(cmd))

    def arm(self, seq, policy="pause", **settings):
        self.cmd(arm=seq, app_id="t1", sample_rate=RATE, underrun_policy=policy, **settings)
        return self.event("armed")

    def event(self, name, timeout=WAIT):
        return self.status.wait_for(lambda m: m.get("event") == name, timeout)

    def samples(self):
        return np.array(self.out.data(), dtype=np.complex64)

    def wait_samples(self, n, timeout=WAIT):
        return wait_until(lambda: len(self.out.data()) >= n, timeout)

    def tags(self):
        return [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in self.out.tags()]


def tone(n, start=0, hz=5e3):
    k = np.arange(start, start + n)
    return (0.5 * np.exp(2j * np.pi * hz * k / RATE)).astype(np.complex64)


def seen(hub, msg):
    """Sends msg and waits until the agent's transport has handled it (the ack of a ping behind it)."""
    hub.send(msg)
    marker = f"after-{json.dumps(msg)[:40]}-{len(hub.texts())}"
    hub.send({"type": "ping", "id": marker})
    assert hub.wait_for(lambda s: any(a.get("id") == marker for a in s.texts("ack")), WAIT)


def test_frames_play_in_order_with_burst_and_setting_tags_at_exact_samples(hub, flowgraphs):
    p = Player(hub, flowgraphs, underrun_timeout=5.0)
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    armed = p.arm(1, center_frequency=433.5e6, gain=10.0)
    assert armed["queue_samples"] == int(0.5 * RATE)
    first = tone(3000)
    for k in range(3):
        hub.send_bytes(first[k * 1000:(k + 1) * 1000].tobytes())
    seen(hub, {"type": "tx_configure", "app_id": "t1", "radio_config": {"tx_center_frequency": 434e6}})
    p.cmd(configure=2, tags={"tx_freq": 434e6, "tx_gain": 5.0})
    second = tone(1500, 3000, hz=-7e3)
    hub.send_bytes(second.tobytes())
    assert p.wait_samples(4500)
    assert np.array_equal(p.samples()[:4500], np.concatenate([first, second]))
    tags = p.tags()
    assert (0, "tx_sob", True) in tags and (0, "tx_freq", 433.5e6) in tags and (0, "tx_rate", RATE) in tags
    assert (0, "tx_gain", 10.0) in tags
    assert (3000, "tx_freq", 434e6) in tags and (3000, "tx_gain", 5.0) in tags
    assert not [t for t in tags if t[1] == "tx_eob"]
    assert p.event("transmitting")["app_id"] == "t1"
    assert hub.wait_for(lambda s: any(m["played"] == 4500 for m in s.texts("tx_progress")), WAIT)
    progress = hub.texts("tx_progress")
    assert all(m["app_id"] == "t1" and m["played"] <= m["received"] for m in progress)
    assert [m["played"] for m in progress] == sorted(m["played"] for m in progress)


def test_an_underrun_with_policy_pause_ends_the_burst_on_a_tagged_zero(hub, flowgraphs):
    p = Player(hub, flowgraphs)
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    p.arm(1)
    hub.send_bytes(tone(1000).tobytes())
    event = p.event("underrun")
    assert event["played"] == 1000 and event["app_id"] == "t1"
    assert p.wait_samples(1001)
    out = p.samples()
    assert len(out) == 1001 and out[1000] == 0
    assert (1000, "tx_eob", True) in p.tags()
    assert json.loads(json.dumps(p.src.stats()))["underruns"] == 1
    assert p.src.state() == "idle"
    # what the hub sends after the session ended is late, and it is told so
    hub.send_bytes(tone(100).tobytes())
    error = hub.wait_text("error")
    assert "outside a TX session" in error["message"]
    assert wait_until(lambda: p.src.stats()["late_frames"] == 1, WAIT)


@pytest.mark.parametrize("policy", ["zero", "repeat"])
def test_zero_and_repeat_fill_an_underrun_and_the_session_goes_on(hub, flowgraphs, policy):
    p = Player(hub, flowgraphs)
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    p.arm(1, policy=policy)
    a = tone(2000)
    hub.send_bytes(a.tobytes())
    assert wait_until(lambda: p.src.stats()["underruns"] >= 1, WAIT)
    b = tone(1000, hz=-11e3)
    hub.send_bytes(b.tobytes())
    assert wait_until(lambda: p.src.stats()["played"] == 3000, WAIT)

    def where_b():  # (the fill before it is as long as the underrun lasted)
        out = p.samples()
        starts = np.flatnonzero(out[2000:len(out) - 999] == b[0]) + 2000
        return next((k for k in starts if np.array_equal(out[k:k + 1000], b)), None)

    assert wait_until(lambda: where_b() is not None, WAIT)
    start_b = where_b()
    out = p.samples()
    assert np.array_equal(out[:2000], a)
    fill = out[2000:start_b]
    assert len(fill) > 0
    if policy == "zero":
        assert not np.any(fill)
    else:  # the last piece played, again and again
        assert np.array_equal(fill[:1000], a[-1000:]) or np.array_equal(fill[:len(a)], a[:len(fill[:len(a)])])
        assert np.any(fill)
    assert p.src.state() == "transmitting"
    assert not [t for t in p.tags() if t[1] == "tx_eob"]


def test_a_hub_that_sends_faster_than_real_time_is_held_back_and_nothing_is_lost(hub, flowgraphs):
    rate = 1e6
    # (a sender starved of CPU for 0.1 s is not what this is about: the underrun clock allows 2 s)
    p = Player(hub, flowgraphs, queue_seconds=0.1, rate=rate, underrun_timeout=2.0)  # 100000 samples
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    p.cmd(arm=1, app_id="t1", sample_rate=rate, underrun_policy="pause")
    assert p.event("armed")["queue_samples"] == 100_000
    signal = np.tile(tone(10_000), 250)  # 2.5 s: far more than the socket buffers hold
    frame = 10_000
    sender = threading.Thread(target=lambda: [hub.send_bytes(signal[k:k + frame].tobytes(), timeout=30)
                                              for k in range(0, len(signal), frame)], daemon=True)
    sender.start()
    most_queued = 0
    while len(p.out.data()) < len(signal) and (sender.is_alive() or p.src.stats()["queued"]):
        most_queued = max(most_queued, p.src.stats()["queued"])
        sender.join(0.005)
    sender.join()
    assert p.wait_samples(len(signal), timeout=30)
    assert np.array_equal(p.samples()[:len(signal)], signal)
    assert most_queued <= 100_000 + frame  # the queue, plus the frame that filled it
    assert most_queued >= 50_000  # (it was full: the hub was held back, not merely slow)
    assert p.src.stats()["underruns"] == 0


def test_stop_ends_the_burst_and_what_was_queued_is_dropped(hub, flowgraphs):
    p = Player(hub, flowgraphs, queue_seconds=5.0, rate=10e3)
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    p.cmd(arm=1, app_id="t1", sample_rate=10e3)
    p.event("armed")
    hub.send_bytes(tone(30_000).tobytes())  # 3 s at 10 kS/s, more than the flowgraph's buffers hold
    p.event("transmitting")
    seen(hub, {"type": "tx_stop", "app_id": "t1"})
    p.cmd(stop=True)
    ended = p.event("ended")
    assert ended["reason"] == "stopped" and 0 < ended["played"] < 30_000
    assert p.src.stats()["queued"] == 0
    assert wait_until(lambda: any(t[1] == "tx_eob" for t in p.tags()), WAIT)
    eob = [t[0] for t in p.tags() if t[1] == "tx_eob"][0]
    assert eob == ended["played"] and p.wait_samples(eob + 1) and p.samples()[eob] == 0


def test_an_arm_after_the_hub_stopped_is_stale_and_bad_frames_are_refused(hub, flowgraphs):
    p = Player(hub, flowgraphs)
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    hub.send_bytes(tone(500).tobytes())
    seen(hub, {"type": "tx_stop", "app_id": "t1"})
    p.cmd(arm=1, app_id="t1", sample_rate=RATE)
    assert p.event("stale")["seq"] == 1
    assert p.src.state() == "idle" and len(p.out.data()) == 0
    seen(hub, {"type": "tx_start", "app_id": "t2", "radio_config": {}})
    hub.send_bytes(b"\x00" * 12)  # a sample and a half
    error = hub.wait_text("error")
    assert "12 bytes is not a whole number of 8-byte samples" in error["message"]
    assert p.src.stats()["bad_frames"] == 1


def test_a_lost_hub_connection_ends_the_session_whatever_the_policy(hub, flowgraphs):
    p = Player(hub, flowgraphs)
    seen(hub, {"type": "tx_start", "app_id": "t1", "radio_config": {}})
    p.arm(1, policy="repeat")  # would play on by itself
    hub.send_bytes(tone(2000).tobytes())
    p.event("transmitting")
    hub.drop_connection()
    # however soon the agent is back, the session it had is over
    assert hub.wait_for(lambda s: s.connections >= 2, WAIT)
    ended = p.event("ended")
    assert ended["reason"] == "hub connection lost"
    assert wait_until(lambda: any(t[1] == "tx_eob" for t in p.tags()), WAIT)
    assert p.src.state() == "idle"
