"""The hub's session is what the agent confirmed: a hub process and an agent scripted over a real WebSocket
that speaks only the base protocol (no acks, no stream_info: what the RIA agent 0.1.7 speaks)."""

import json
import os
import threading

import pytest

from gnuradio.ria.hub.client import HubError

FRAME = bytes(4096 * 8)  # one cf32 frame of 4096 samples


def answer_in_background(agent, kind, reply, count=1):
    """Answers the count-th `kind` message from the hub with reply(msg) (a message or a list of them)."""
    def run():
        msg = agent.wait_message(kind, count=count)
        if msg is not None:
            for out in reply(msg) if callable(reply) else reply:
                agent.send(out)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def streaming(msg):
    return [{"type": "status", "status": "streaming", "app_id": msg["app_id"]}]


def test_a_refused_start_leaves_the_session_and_the_recordings_as_they_were(lab, peer):
    agent_id, agent, _ = peer
    answer_in_background(agent, "start", lambda m: [{"type": "error", "app_id": m["app_id"],
                                                     "message": "sample_rate 2.048 S/s is outside the device range"}])
    with pytest.raises(HubError) as refused:
        lab.api.start(agent_id, {"device": "mock", "sample_rate": 2.048, "center_frequency": 100e6}, record=True)
    assert refused.value.status == 502 and "outside the device range" in str(refused.value)
    view = lab.api.agent(agent_id)
    assert view["status"] == "idle" and view["stream"] is None and view["recording"] is None
    folder = os.path.join(lab.data_dir, "recordings")
    assert not os.path.isdir(folder) or os.listdir(folder) == []


def test_a_start_without_device_picks_a_real_radio_before_the_simulator(lab, peer):
    agent_id, agent, _ = peer
    for count, (hardware, expected) in enumerate(((["mock", "rtlsdr"], "rtlsdr"), (["mock"], "mock"), ([], None)), 1):
        agent.heartbeat(hardware=hardware)
        lab.wait_agent(agent_id, lambda a: a["hardware"] == hardware)
        answer_in_background(agent, "start", streaming, count=count)
        assert lab.api.start(agent_id, {"center_frequency": 100e6})["status"] == "streaming"
        assert agent.wait_message("start", count=count)["radio_config"].get("device") == expected
        answer_in_background(agent, "stop", lambda m: [{"type": "status", "status": "idle", "app_id": m["app_id"]}],
                             count=count)
        assert lab.api.stop(agent_id)["status"] == "idle"


def test_stopping_an_idle_agent_that_does_not_answer_idle_stops_returns_at_once(lab, peer):
    agent_id, agent, _ = peer
    answer = lab.api.stop(agent_id)  # the old hub waited 10 s for a reply that never came, then said 504
    assert answer["status"] == "idle" and answer["error"] is None
    assert agent.wait_message("stop") is not None  # the agent was still told


def test_a_start_while_streaming_is_refused_and_the_session_keeps_its_settings(lab, peer):
    agent_id, agent, _ = peer
    answer_in_background(agent, "start", streaming)
    lab.api.start(agent_id, {"device": "mock", "center_frequency": 100e6, "sample_rate": 1e6})
    with pytest.raises(HubError) as refused:
        lab.api.start(agent_id, {"device": "mock", "center_frequency": 433e6, "sample_rate": 1e6})
    assert refused.value.status == 409 and "stop it first" in str(refused.value)
    assert agent.wait_message("start", count=2, timeout=0.5) is None  # nothing went to the agent
    stream = lab.api.agent(agent_id)["stream"]
    assert stream["center_frequency"] == 100e6


def test_a_configure_starts_a_new_capture_even_without_stream_info(lab, peer):
    agent_id, agent, _ = peer
    answer_in_background(agent, "start", streaming)
    lab.api.start(agent_id, {"device": "mock", "center_frequency": 100e6, "sample_rate": 1e6}, record=True)
    for _ in range(3):
        agent.send(FRAME)
    lab.wait_agent(agent_id, lambda a: a["stream"]["frames"] == 3)
    assert lab.api.configure(agent_id, {"center_frequency": 101e6, "sample_rate": 2e6})["error"] is None
    for _ in range(2):
        agent.send(FRAME)
    lab.wait_agent(agent_id, lambda a: a["stream"]["frames"] == 5)
    files = lab.api.record(agent_id, False)["files"]
    assert len(files) == 2  # SigMF: a new rate is a new file
    first, second = (json.load(open(f)) for f in files)
    assert first["global"]["core:sample_rate"] == 1e6 and second["global"]["core:sample_rate"] == 2e6
    assert [c["core:frequency"] for c in first["captures"] + second["captures"]] == [100e6, 101e6]
    assert second["captures"][0]["core:global_index"] == 3 * 4096
    assert os.path.getsize(files[1].replace("-meta", "-data")) == 2 * len(FRAME)


def test_a_radio_that_is_back_clears_the_error(lab, peer):
    agent_id, agent, _ = peer
    answer_in_background(agent, "start", streaming)
    lab.api.start(agent_id, {"device": "mock", "center_frequency": 100e6, "sample_rate": 1e6})
    agent.send({"type": "error", "app_id": "x", "message": "SDR disconnected: the device is gone"})
    lab.wait_agent(agent_id, lambda a: a["last_error"] is not None)
    agent.send({"type": "status", "status": "streaming", "app_id": lab.api.agent(agent_id)["stream"]["app_id"]})
    lab.wait_agent(agent_id, lambda a: a["last_error"] is None)
