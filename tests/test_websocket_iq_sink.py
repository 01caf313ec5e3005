"""ria.websocket_iq_sink against a real WebSocket server on 127.0.0.1."""

import time

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr, ria

from gnuradio.ria.wire.framing import convert
from helpers import wait_until
from hub_server import TOKEN, HubServer

WAIT = 10.0


def make_sink(url, token=TOKEN, **kwargs):
    kwargs.setdefault("hardware_names", "mock")
    kwargs.setdefault("heartbeat_interval", 30.0)
    return ria.websocket_iq_sink(url=url, token=token, **kwargs)


def idle_sink_flowgraph(url, **kwargs):
    """A sink fed at a gentle 100 kS/s that is not streaming: only the connection works."""
    tb = gr.top_block()
    sink = make_sink(url, **kwargs)
    tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, 1e5), sink)
    return tb, sink


def known_samples(n, seed=7):
    rng = np.random.default_rng(seed)
    return ((rng.uniform(-1, 1, n) + 1j * rng.uniform(-1, 1, n)) * 0.9).astype(np.complex64)


def run_vector(hub, data, tags=(), **sink_kwargs):
    """Streams data through the sink (autostart) until the flowgraph ends and the hub has read every
    sample (the sink's drain ends when the socket took them, not when the hub read them); returns the sink."""
    tb = gr.top_block()
    src = blocks.vector_source_c(data.tolist(), False, 1, list(tags))
    sink = make_sink(hub.url(), autostart=True, app_id="app-1", overflow="block", **sink_kwargs)
    tb.connect(src, sink)
    tb.run()
    size = {"cf32": 8, "cs16": 4, "cs8": 2}[sink_kwargs.get("sample_format", "cf32")]
    assert hub.wait_for(lambda s: s.binary_bytes() >= len(data) * size, WAIT)
    return sink


def frame_payloads(hub):
    return hub.binary()


@pytest.mark.parametrize("query", [False, True])
def test_auth_both_ways_and_heartbeat_first(hub, query):
    sink = run_vector(hub, known_samples(100), token_in_query=query)
    assert hub.auth_seen == ["query" if query else "header"]
    first = hub.received[0]
    assert first[0] == "text" and first[1]["type"] == "heartbeat"
    hb = first[1]
    assert hb["hardware"] == ["mock"] and hb["capabilities"] == ["rx"] and hb["tx_enabled"] is False
    assert hb["agent"]["name"] == "gr-ria" and set(hb["stats"]) >= {"frames_sent", "frames_dropped", "reconnects"}
    assert sink.stats()["frames_sent"] >= 1 and sink.frames_sent() >= 1


@pytest.mark.parametrize("query", [False, True])
def test_wrong_token_is_rejected_retried_and_never_logged(hub, flowgraphs, capfd, query):
    tb, sink = idle_sink_flowgraph(hub.url(), token="tok-DO-NOT-LOG-4711", token_in_query=query)
    flowgraphs(tb)
    assert hub.wait_for(lambda s: s.rejected >= 1, WAIT)
    assert hub.connections == 0
    refused = "the hub refused the agent token (HTTP 401); register again"
    assert wait_until(lambda: sink.last_error() == refused, WAIT)
    assert hub.wait_for(lambda s: s.rejected >= 2, WAIT), "the agent must keep retrying"
    tb.stop()
    tb.wait()
    out, err = capfd.readouterr()
    assert "refused the agent token" in out + err and "tok-DO-NOT-LOG-4711" not in out + err


@pytest.mark.parametrize("fmt", ["cf32", "cs16", "cs8"])
def test_frames_are_bit_exact_in_each_format(hub, fmt):
    data = known_samples(10_000)
    run_vector(hub, data, buffer_size=1024, sample_format=fmt)
    frames = frame_payloads(hub)
    assert [len(f) for f in frames[:-1]] == [1024 * {"cf32": 8, "cs16": 4, "cs8": 2}[fmt]] * 9
    assert b"".join(frames) == convert(data, fmt)
    info = hub.texts("stream_info")[0]
    assert info["sample_format"] == fmt and info["sample_index"] == 0 and info["app_id"] == "app-1"


def test_cs16_full_scale_and_clipping():
    x = np.array([1 + 1j, -1 - 1j, 2 - 2j, 0.5 + 0j], np.complex64)
    assert np.frombuffer(convert(x, "cs16"), "<i2").tolist() == [32767, 32767, -32767, -32767, 32767, -32767,
                                                                 16384, 0]
    assert np.frombuffer(convert(x, "cs8"), "i1").tolist() == [127, 127, -127, -127, 127, -127, 64, 0]


def test_frame_is_cut_at_a_retune_tag_with_stream_info(hub):
    data = known_samples(5000)
    tag = gr.tag_t()
    tag.offset = 2500
    tag.key = pmt.intern("rx_freq")
    tag.value = pmt.from_double(101.5e6)
    run_vector(hub, data, tags=[tag], buffer_size=1000)
    sizes = []
    for kind, item in hub.received:
        if kind == "binary":
            sizes.append(len(item) // 8)
        elif item["type"] == "stream_info":
            sizes.append(("info", item["center_frequency"], item["sample_index"]))
    assert sizes == [("info", 0.0, 0), 1000, 1000, 500, ("info", 101.5e6, 2500), 1000, 1000, 500]


def test_frame_is_cut_at_a_gain_tag_with_stream_info(hub):
    """A gain change (rx_gain, as ria.sdr_source tags it) is announced where it happens, like a retune."""
    tags = []
    for offset, key, value in ((0, "rx_gain", 10.0), (1800, "rx_gain", 10.0), (2500, "rx_gain", 20.0)):
        tag = gr.tag_t()
        tag.offset, tag.key, tag.value = offset, pmt.intern(key), pmt.from_double(value)
        tags.append(tag)
    run_vector(hub, known_samples(5000), tags=tags, buffer_size=1000)
    sizes = []
    for kind, item in hub.received:
        if kind == "binary":
            sizes.append(len(item) // 8)
        elif item["type"] == "stream_info":
            sizes.append(("info", item["gain"], item["sample_index"]))
    # (the first tag comes before any frame; a tag that repeats the gain cuts nothing)
    assert sizes == [("info", 10.0, 0), 1000, 1000, 500, ("info", 20.0, 2500), 1000, 1000, 500]


def test_drop_policy_accounts_for_every_sample(flowgraphs):
    hub = HubServer(token=TOKEN, read_delay=0.002).start()
    try:
        tb = gr.top_block()
        src = blocks.null_source(gr.sizeof_gr_complex)
        sink = make_sink(hub.url(), autostart=True, app_id="app-1", overflow="drop", buffer_size=4096,
                         queue_seconds=0.016)  # 16384 samples while the rate is unknown: 4 frames
        tb.connect(src, sink)
        flowgraphs(tb)
        assert hub.wait_for(lambda s: any(g["reason"] == "backpressure" for g in s.texts("gap")), WAIT)
        sink._post(pmt.intern("cmd"), pmt.to_pmt({"stream": False}))
        assert wait_until(lambda: not sink.streaming(), WAIT)  # the message is handled in the block's thread
        assert wait_until(lambda: sink.queue_depth() == 0, WAIT)
        produced = sink.samples_produced()
        tb.stop()
        tb.wait()
        sent, dropped = sink.samples_sent(), sink.samples_dropped()
        assert dropped > 0
        assert hub.wait_for(lambda s: s.binary_bytes() == sent * 8
                            and sum(g["dropped_samples"] for g in s.texts("gap")) == dropped, WAIT)
        assert sent + dropped == produced
        reasons = {g["reason"] for g in hub.texts("gap")}
        assert "backpressure" in reasons and reasons <= {"backpressure", "disconnected"}  # (before connecting)
        # gaps sit exactly where the samples would have been
        index = 0
        for kind, item in hub.received:
            if kind == "binary":
                index += len(item) // 8
            elif item["type"] == "gap":
                assert item["sample_index"] == index
                index += item["dropped_samples"]
    finally:
        hub.stop()


def test_block_policy_is_lossless_through_a_slow_hub():
    hub = HubServer(token=TOKEN, read_delay=0.001).start()
    try:
        data = known_samples(200_000)
        sink = run_vector(hub, data, buffer_size=2048, queue_seconds=0.004)  # 4096 samples: 2 frames
        assert sink.samples_dropped() == 0
        assert hub.wait_for(lambda s: s.binary_bytes() == len(data) * 8, WAIT)
        assert b"".join(hub.binary()) == convert(data, "cf32")
        assert hub.texts("gap") == []
    finally:
        hub.stop()


def test_reconnects_after_a_hub_restart_with_a_fresh_heartbeat(hub, flowgraphs):
    tb, sink = idle_sink_flowgraph(hub.url())
    flowgraphs(tb)
    assert hub.wait_text("heartbeat")
    hub.restart()
    assert hub.wait_for(lambda s: s.connections >= 2, WAIT)
    assert hub.wait_text("heartbeat", count=2)
    assert wait_until(lambda: sink.reconnects() == 1, WAIT)


def connected_sink_with_ctrl(hub, flowgraphs):
    """An idle sink connected to the hub, with a collector on its ctrl port."""
    tb, sink = idle_sink_flowgraph(hub.url())
    ctrl = ria.message_collector()
    tb.msg_connect(sink, "ctrl", ctrl, "in")
    tb.python_blocks = (ctrl,)
    flowgraphs(tb)
    assert hub.wait_text("heartbeat")
    return sink, ctrl


def test_ping_ack_dedup_and_bad_messages(hub, flowgraphs):
    sink, ctrl = connected_sink_with_ctrl(hub, flowgraphs)
    hub.send({"type": "ping", "id": "p1"})
    assert hub.wait_text("pong")["id"] == "p1"
    hub.send({"type": "configure", "app_id": "a", "radio_config": {"gain": 10}, "id": 42})
    hub.send({"type": "configure", "app_id": "a", "radio_config": {"gain": 10}, "id": 42})
    assert hub.wait_text("ack", count=3)
    assert ctrl.wait_for(lambda m: m.get("type") == "configure", WAIT)["radio_config"] == {"gain": 10}
    deep = '{"type": "configure", "app_id": "a", "radio_config": {"x": ' + "[" * 30_000 + "]" * 30_000 + "}}"
    for bad in ("{not json", "[1,2]", '{"type": "launch"}', '{"type": "start"}', "x" * 100_000, deep):
        hub.send(bad)
    errors = [hub.wait_text("error", count=i) for i in range(1, 7)]
    assert [e["message"].split(":")[0] for e in errors] == ["bad message from hub"] * 6
    assert "over the limit" in errors[4]["message"]
    assert "nests deeper than 32 levels" in errors[5]["message"]
    hub.send({"type": "ping", "id": "after"})
    assert hub.wait_for(lambda s: any(m.get("id") == "after" for m in s.texts("pong")), WAIT)
    assert len([m for m in ctrl.messages if m.get("type") == "configure"]) == 1
    assert hub.connections == 1


def streaming_flowgraph(flowgraphs, url, **kwargs):
    tb = gr.top_block()
    src = blocks.null_source(gr.sizeof_gr_complex)
    sink = make_sink(url, autostart=True, app_id="a", **kwargs)
    tb.connect(src, sink)
    flowgraphs(tb)
    return tb, sink


@pytest.mark.parametrize("overflow", ["drop", "block"])
def test_stop_returns_promptly_against_a_stalled_hub(flowgraphs, overflow):
    hub = HubServer(token=TOKEN, read_delay=30.0).start()
    try:
        tb, sink = streaming_flowgraph(flowgraphs, hub.url(), overflow=overflow, buffer_size=65536,
                                       queue_seconds=0.131)  # 131072 samples: 2 frames
        assert hub.wait_for(lambda s: s.connections == 1, WAIT)
        assert wait_until(lambda: sink.queue_depth() >= 2, WAIT)  # it really is stuck
        t0 = time.monotonic()
        tb.stop()
        tb.wait()
        assert time.monotonic() - t0 < 3.0
    finally:
        hub.stop()


def test_stop_returns_promptly_against_an_unreachable_hub(flowgraphs):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tb, sink = streaming_flowgraph(flowgraphs, f"ws://127.0.0.1:{port}/screens/agent/ws", overflow="block")
    assert wait_until(lambda: "refused" in sink.last_error(), WAIT)
    t0 = time.monotonic()
    tb.stop()
    tb.wait()
    assert time.monotonic() - t0 < 3.0


@pytest.mark.parametrize("kwargs,named", [
    ({"overflow": "spill"}, "overflow"),
    ({"sample_format": "cu4"}, "sample_format"),
    ({"buffer_size": 0}, "buffer_size"),
    ({"input_type": "bytes"}, "input_type"),
    ({"autostart": True}, "app_id"),
    ({"url": "http://x"}, "ws://"),
    ({"url": "ws://host:99999/x"}, "port"),
    ({"url": "ws://127.0.0.1:9/x, http://y"}, "ws://"),  # every URL of a list is checked
    ({"url": " , "}, "empty"),
    ({"queue_seconds": 0}, "queue_seconds"),
    ({"sample_rate": -1}, "sample_rate"),
    ({"heartbeat_interval": 0}, "heartbeat_interval"),
])
def test_bad_arguments_raise_naming_them(kwargs, named):
    args = {"url": "ws://127.0.0.1:9/x", **kwargs}
    with pytest.raises(ValueError, match=named):
        ria.websocket_iq_sink(token=TOKEN, **args)


def test_float_audio_frames_carry_the_given_sample_rate(hub):
    audio = (np.sin(np.arange(4000) * 0.05) * 0.8).astype(np.float32)
    tb = gr.top_block()
    sink = make_sink(hub.url(), input_type="float", sample_rate=16000, buffer_size=1600, sample_format="cs16",
                     autostart=True, app_id="voice", overflow="block")
    tb.connect(blocks.vector_source_f(audio.tolist(), False), sink)
    tb.run()
    assert hub.wait_for(lambda s: s.binary_bytes() >= len(audio) * 2, WAIT)
    info = hub.texts("stream_info")[0]
    # (cs16 from a .grc saved before audio had its own formats: sent as s16, the same bytes, §8)
    assert info["sample_rate"] == 16000 and info["sample_format"] == "s16" and info["media"] == "audio"
    assert [len(f) for f in hub.binary()] == [3200, 3200, 1600]  # one int16 per audio sample
    assert b"".join(hub.binary()) == convert(audio, "cs16")


def test_an_empty_token_is_taken_from_ria_token(hub, monkeypatch, tmp_path):
    """What a .grc with an empty token parameter does: the hub sees RIA_TOKEN's value."""
    monkeypatch.setenv("RIA_AGENT_CONFIG", str(tmp_path / "no-agent.json"))
    monkeypatch.setenv("RIA_TOKEN", TOKEN)
    run_vector(hub, known_samples(100), token="")
    assert hub.auth_seen == ["header"] and hub.received[0][1]["type"] == "heartbeat"


def test_an_empty_token_is_the_saved_one_only_for_the_saved_hub(hub, monkeypatch, tmp_path):
    from gnuradio.ria.agent import config

    monkeypatch.delenv("RIA_TOKEN", raising=False)
    monkeypatch.setenv("RIA_AGENT_CONFIG", str(tmp_path / "agent.json"))
    base = hub.url().split("/screens/")[0].replace("ws://", "http://")
    config.save({"hub_url": base, "agent_id": "agent-1", "token": TOKEN})
    run_vector(hub, known_samples(100), token="")
    assert hub.auth_seen == ["header"]
    # Another hub never gets the saved token; a given token and RIA_TOKEN come first.
    assert config.hub_connection("ws://other.example:8600/screens/agent/ws", "") == \
        ("ws://other.example:8600/screens/agent/ws", "")
    assert config.hub_connection(hub.url(), "given")[1] == "given"
    monkeypatch.setenv("RIA_TOKEN", "from-env")
    assert config.hub_connection(hub.url(), "")[1] == "from-env"


def test_an_agent_whose_token_another_process_took_says_so_and_lets_it_have_the_connection(lab, flowgraphs):
    agent_id, token = lab.register_api("twice")
    url = lab.url.replace("http://", "ws://") + f"/screens/agent/ws?agent_id={agent_id}"
    # two transports, as two processes would have (a different heartbeat interval keeps them apart in one)
    first_tb, first = idle_sink_flowgraph(url, token=token, heartbeat_interval=20.0)
    flowgraphs(first_tb)
    assert wait_until(first.connected, WAIT)
    second_tb, second = idle_sink_flowgraph(url, token=token, heartbeat_interval=25.0)
    flowgraphs(second_tb)
    assert wait_until(lambda: "is the agent running twice?" in first.last_error(), WAIT), first.last_error()
    assert "replaced by another connection with this agent's token" in first.last_error()
    assert "trying again in 30 s" in first.last_error()
    assert wait_until(second.connected, WAIT)
    # the first stays away: before, it took the connection back within a second, and so on, every second
    assert not wait_until(lambda: first.connected() or not second.connected(), 4.0)
    assert lab.api.agents()[0]["twin_connections"] is None
