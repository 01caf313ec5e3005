"""Every JSON value a hub can send, over a real WebSocket into the whole agent: a value the agent cannot use
gets an error naming its key, the connection stays up, and the next good command works."""

import pytest

from helpers import AGENT_TONE, running_agent

WAIT = 10.0
BIG = "9" * 400


@pytest.fixture
def streaming(hub, serial, flowgraphs):
    agent = running_agent(hub, serial, flowgraphs, heartbeat_interval=1.0)
    hub.send({"type": "start", "app_id": "app-1", "radio_config": {
        "device": f"driver=riasim,serial={serial},{AGENT_TONE}", "sample_rate": 1e6, "center_frequency": 100e6}})
    assert hub.wait_text("status") == {"type": "status", "status": "streaming", "app_id": "app-1"}
    assert hub.wait_text("stream_info")
    return agent


def still_up(hub, agent):
    """Heartbeats go on, on the one connection, and frames still flow."""
    beats, frames = len(hub.texts("heartbeat")), len(hub.binary())
    assert hub.wait_for(lambda s: len(s.texts("heartbeat")) > beats and len(s.binary()) > frames + 3, WAIT)
    assert hub.connections == 1 and agent.source.state() == "streaming"


@pytest.mark.parametrize("gain,says", [
    ('"\\ud800"', 'gain must be a finite number, got "\\ud800"'),  # a lone surrogate
    ("1e400", "gain must be a finite number, got 1e400"),  # beyond a double
    ("-" + BIG, "gain must be a finite number, got -" + "9" * 63 + "..."),
    ("18446744073709551616", "gain 1.84467e+19 dB is outside the device range 0 to 70 dB"),  # beyond 64 bits
    ("-9223372036854775809", "gain -9.22337e+18 dB is outside the device range 0 to 70 dB"),
])
def test_a_configure_value_the_agent_cannot_use_is_refused_by_name_and_the_rest_applies(hub, streaming, gain, says):
    hub.send('{"type": "configure", "app_id": "app-1", "id": "c1", "radio_config": {"gain": ' + gain +
             ', "center_frequency": 100.1e6}}')
    assert hub.wait_text("ack") == {"type": "ack", "id": "c1"}
    assert hub.wait_text("error") == {"type": "error", "app_id": "app-1", "message": says}
    assert hub.wait_text("stream_info", count=2)["center_frequency"] == 100.1e6  # the good key applied
    still_up(hub, streaming)


def test_a_key_with_a_lone_surrogate_is_an_unknown_key(hub, streaming):
    hub.send('{"type": "configure", "app_id": "app-1", "id": "c2", "radio_config": {"\\ud800": 1}}')
    assert hub.wait_text("ack") == {"type": "ack", "id": "c2"}
    assert hub.wait_text("error")["message"].startswith("unknown radio_config key '\\\\ud800'")
    still_up(hub, streaming)


def test_a_start_with_a_value_the_agent_cannot_use_is_refused(hub, streaming):
    hub.send('{"type": "start", "app_id": "app-2", "id": "s2", "radio_config": {"device": "\\udfff"}}')
    assert hub.wait_text("error") == {"type": "error", "app_id": "app-2",
                                      "message": 'device must be a non-empty string, got "\\udfff"'}
    hub.send({"type": "configure", "app_id": "app-1", "radio_config": {"center_frequency": 100.1e6}})
    assert hub.wait_text("stream_info", count=2)["app_id"] == "app-1"  # the session that ran goes on
    still_up(hub, streaming)


def test_an_app_id_of_64_bits_is_echoed_exactly(hub, serial, flowgraphs):
    """An integer app_id beyond int64 (but within uint64) used to end the control handler's thread: acked, and
    never answered again."""
    agent = running_agent(hub, serial, flowgraphs, heartbeat_interval=1.0)
    big = 18446744073709551615
    hub.send('{"type": "start", "app_id": %d, "radio_config": {"device": "driver=riasim,serial=%s"}}' % (big, serial))
    assert hub.wait_text("status") == {"type": "status", "status": "streaming", "app_id": big}
    assert hub.wait_text("stream_info")["app_id"] == big
    hub.send('{"type": "stop", "app_id": %d}' % big)
    assert hub.wait_text("status", count=2) == {"type": "status", "status": "idle", "app_id": big}
    hub.send({"type": "start", "app_id": "next", "radio_config": {"device": f"driver=riasim,serial={serial}"}})
    assert hub.wait_text("status", count=3) == {"type": "status", "status": "streaming", "app_id": "next"}
    still_up(hub, agent)
