"""The agent transport under ria.websocket_iq_sink: dead links, the order after a reconnect, typed ids, deadlines."""

import socket
import time

import pmt
from gnuradio import blocks, gr, ria

from blackhole_proxy import BlackholeProxy
from helpers import wait_until
from hub_server import TOKEN, HubServer
from test_websocket_iq_sink import WAIT, connected_sink_with_ctrl, idle_sink_flowgraph, make_sink

HEARTBEAT = 2.0
DEAD_AFTER = min(2 * HEARTBEAT, 15.0)  # the contract: two heartbeat intervals or 15 s, whichever is less
MARGIN = 2.0


def live_flowgraph(flowgraphs, url, rate=200e3, **kwargs):
    """A sink streaming a paced signal, as from a radio (drop policy)."""
    tb = gr.top_block()
    sink = make_sink(url, autostart=True, app_id="live", overflow="drop", buffer_size=1000,
                     heartbeat_interval=HEARTBEAT, **kwargs)
    tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, rate), sink)
    flowgraphs(tb)
    return sink


def items_after(received, start):
    """(kind, item) pairs from index `start` on, without heartbeats and acks."""
    return [(k, m) for k, m in received[start:] if k == "binary" or m["type"] not in ("heartbeat", "ack", "pong")]


def assert_contiguous(items, first_index):
    """Gaps and frames follow each other without a hole or an overlap, from first_index on."""
    index = first_index
    for kind, item in items:
        if kind == "binary":
            index += len(item) // 8
        elif item["type"] == "gap":
            assert item["sample_index"] == index, (item, index)
            index += item["dropped_samples"]
        elif item["type"] == "stream_info":
            assert item["sample_index"] == index, (item, index)
    return index


def test_a_blackholed_link_is_declared_dead_and_healed(flowgraphs):
    hub = HubServer(token=TOKEN).start()
    proxy = BlackholeProxy(hub.port)
    try:
        sink = live_flowgraph(flowgraphs, f"ws://127.0.0.1:{proxy.port}/screens/agent/ws?agent_id=a1")
        assert hub.wait_for(lambda s: len(s.binary()) >= 20, WAIT)
        assert sink.connected()

        proxy.freeze()
        frozen_at = time.monotonic()
        assert wait_until(lambda: not sink.connected(), DEAD_AFTER + MARGIN), "the dead link was never noticed"
        noticed = time.monotonic() - frozen_at
        assert noticed >= DEAD_AFTER / 2 - 0.5  # pings go out at half the timeout; nothing counts earlier
        assert "the link is dead" in sink.last_error()
        sent_when_dead = sink.frames_sent()
        # Frames keep coming from the radio: they queue, then drop as "disconnected" gaps, never as sent.
        assert wait_until(lambda: sink.samples_dropped() > 0, WAIT)
        assert sink.frames_sent() == sent_when_dead

        proxy.thaw()
        thawed_at = time.monotonic()
        assert hub.wait_for(lambda s: s.connections >= 2, DEAD_AFTER + 15.0), "no reconnect after the link healed"
        assert wait_until(lambda: sink.connected(), WAIT)
        healed = time.monotonic() - thawed_at
        assert sink.reconnects() >= 1 and sink.last_error() == ""
        assert wait_until(lambda: sink.frames_sent() > sent_when_dead + 10, WAIT)
        print(f"dead link noticed after {noticed:.1f} s, reconnected {healed:.1f} s after it healed")
    finally:
        proxy.close()
        hub.stop()


def test_after_a_hub_restart_a_fresh_stream_info_goes_before_any_frame(flowgraphs):
    hub = HubServer(token=TOKEN).start()
    try:
        sink = live_flowgraph(flowgraphs, hub.url())
        assert hub.wait_for(lambda s: len(s.binary()) >= 20, WAIT)
        hub.stop()
        mark = len(hub.received)  # what the new hub process receives starts here
        binary_before = len(hub.binary())
        hub.restart()  # the same port: the agent's queue holds frames of the session the new hub never saw
        assert hub.wait_for(lambda s: s.connections >= 2, WAIT)
        assert hub.wait_for(lambda s: len(s.binary()) >= binary_before + 10, WAIT)
        kinds = [("binary" if k == "binary" else m["type"]) for k, m in hub.received[mark:]]
        assert kinds[0] == "heartbeat", "the first frame on every connection is a heartbeat"
        after = items_after(hub.received, mark + 1)
        assert after[0][0] == "text" and after[0][1]["type"] == "stream_info", kinds[:5]
        info = after[0][1]
        assert info["app_id"] == "live" and info["sample_format"] == "cf32"
        assert info["sample_index"] > 0  # the session goes on where it was, not from 0
        assert_contiguous(after, info["sample_index"])
        assert sink.reconnects() == 1
    finally:
        hub.stop()


def test_message_ids_keep_their_json_types(hub, flowgraphs):
    sink, ctrl = connected_sink_with_ctrl(hub, flowgraphs)
    hub.send({"type": "configure", "app_id": "a", "radio_config": {"gain": 1}, "id": 7})
    hub.send({"type": "configure", "app_id": "a", "radio_config": {"gain": 2}, "id": "7"})
    hub.send({"type": "configure", "app_id": "a", "radio_config": {"gain": 3}, "id": 7})  # a repeat: acked only
    hub.send({"type": "ping", "id": False})
    hub.send({"type": "ping", "id": 1.5})
    assert hub.wait_text("ack", count=3)
    assert [a["id"] for a in hub.texts("ack")] == [7, "7", 7]
    errors = [hub.wait_text("error", count=i) for i in (1, 2)]
    assert all("message id must be a string or integer" in e["message"] for e in errors)
    hub.send({"type": "ping", "id": "after"})
    assert hub.wait_for(lambda s: any(m.get("id") == "after" for m in s.texts("pong")), WAIT)
    gains = [m["radio_config"]["gain"] for m in ctrl.messages if m.get("type") == "configure"]
    assert gains == [1, 2]
    assert [type(m["id"]) for m in ctrl.messages if m.get("type") == "configure"] == [int, str]


def test_several_hub_urls_are_tried_in_turn(flowgraphs):
    hub = HubServer(token=TOKEN).start()
    with socket.socket() as closed:  # bound, not listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{closed.getsockname()[1]}/screens/agent/ws"
        try:
            sink = live_flowgraph(flowgraphs, f"{dead}, {hub.url('a1')}")
            assert hub.wait_for(lambda s: len(s.binary()) >= 5, WAIT)  # the second node of the list
            assert sink.connected()
        finally:
            hub.stop()


def test_a_server_that_never_answers_the_handshake_is_given_up_on(flowgraphs):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP (the kernel does), says nothing
        port = silent.getsockname()[1]
        tb, sink = idle_sink_flowgraph(f"ws://127.0.0.1:{port}/screens/agent/ws", heartbeat_interval=HEARTBEAT)
        flowgraphs(tb)
        assert wait_until(lambda: "no answer from the hub" in sink.last_error(), DEAD_AFTER + MARGIN)
        assert "WebSocket handshake" in sink.last_error()
        assert not sink.connected()


def test_a_session_that_outlives_a_flowgraph_restart_is_described_again(hub):
    tb = gr.top_block()
    sink = make_sink(hub.url(), overflow="drop", buffer_size=1000)
    tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, 200e3), sink)
    tb.start()
    try:
        sink._post(pmt.intern("cmd"), pmt.to_pmt({"stream": True, "app_id": "s1", "sample_rate": 200e3}))
        assert hub.wait_for(lambda s: len(s.binary()) >= 5, WAIT)
        tb.stop()
        tb.wait()
        # the first connection's last frames may still be on their way: the hub reads them all before it
        # sees that connection close
        assert hub.wait_for(lambda s: s.disconnections >= 1, WAIT)
        mark = len(hub.received)
        tb.start()  # the session is still on: the new connection must say what the frames are
        assert hub.wait_for(lambda s: sum(k == "binary" for k, _ in s.received[mark:]) >= 5, WAIT)
        after = items_after(hub.received, mark)
        assert after[0][0] == "text" and after[0][1]["type"] == "stream_info"
        assert after[0][1]["app_id"] == "s1" and after[0][1]["sample_rate"] == 200e3
        assert_contiguous(after, after[0][1]["sample_index"])
    finally:
        tb.stop()
        tb.wait()
    assert sink.samples_sent() + sink.samples_dropped() == sink.samples_produced() > 0  # of the second run


def test_blocks_of_one_agent_share_one_connection_and_each_hears_the_hub(hub, flowgraphs):
    tb = gr.top_block()
    sinks, collectors = [], []
    for _ in range(2):
        sink = make_sink(hub.url())
        ctrl = ria.message_collector()
        tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, 1e5), sink)
        tb.msg_connect(sink, "ctrl", ctrl, "in")
        sinks.append(sink)
        collectors.append(ctrl)
    tb.python_blocks = tuple(collectors)
    flowgraphs(tb)
    assert hub.wait_text("heartbeat")
    hub.send({"type": "configure", "app_id": "a", "radio_config": {"gain": 5}})
    for ctrl in collectors:
        assert ctrl.wait_for(lambda m: m.get("type") == "configure", WAIT)
    assert hub.connections == 1 and all(s.connected() for s in sinks)


def test_a_block_that_verifies_tls_never_rides_on_an_insecure_connection(hub, flowgraphs):
    tb = gr.top_block()
    for kwargs in ({}, {"insecure": True}):
        tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, 1e5),
                   make_sink(hub.url(), **kwargs))
    flowgraphs(tb)
    assert hub.wait_for(lambda s: s.connections == 2, WAIT)  # two settings, two connections


def test_a_slow_link_that_delivers_is_not_taken_for_dead(flowgraphs):
    """A frame that takes longer than the dead-link timeout to cross a slow uplink still arrives: Beast's
    keep-alive ping goes out between the frame's fragments, and the socket's send queue keeps moving."""
    hub = HubServer(token=TOKEN).start()
    proxy = BlackholeProxy(hub.port, rate=150_000)  # 150 kB/s; a 512 KiB frame takes 3.5 s, the timeout is 4 s
    try:
        tb = gr.top_block()
        sink = make_sink(f"ws://127.0.0.1:{proxy.port}/screens/agent/ws", autostart=True, app_id="slow",
                         overflow="block", buffer_size=65536, heartbeat_interval=HEARTBEAT / 2)  # timeout 2 s
        tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, 20e3), sink)
        flowgraphs(tb)
        assert hub.wait_for(lambda s: len(s.binary()) >= 2, 30), sink.last_error()
        assert [len(b) for b in hub.binary()[:2]] == [65536 * 8] * 2
        assert hub.connections == 1 and sink.reconnects() == 0, sink.last_error()
    finally:
        proxy.close()
        hub.stop()
