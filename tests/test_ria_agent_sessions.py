"""Our hub's sessions with the existing RIA agent (ria-toolkit-oss 0.1.7, a peer we did not write): it answers
no idle stop, ignores a start while it streams, and sends no stream_info."""

import json
import os
import re
import shutil

import pytest

from gnuradio.ria.hub.client import HubError
from processes import REPO, Process

RIA_AGENT = os.path.join(REPO, ".venv-ria-agent", "bin", "ria-agent")
pytestmark = pytest.mark.skipif(not os.path.exists(RIA_AGENT), reason="scripts/test.sh installs ria-toolkit-oss 0.1.7")


@pytest.fixture
def ria_agent(lab, tmp_path):
    """A registered, online RIA agent process: its agent id."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    _, key = lab.create_key()
    register = Process([RIA_AGENT, "register", "--hub", lab.url, "--api-key", key, "--name", "legacy"], env=env)
    assert register.proc.wait(60) == 0, register.output
    agent_id = re.search(r"Registered agent: (agent-\w+)", register.output).group(1)
    lab.processes.append(Process([RIA_AGENT, "stream"], env=env))
    lab.wait_agent(agent_id, lambda a: a["online"], timeout=60)
    yield agent_id
    shutil.rmtree(home, ignore_errors=True)


def test_idle_stop_answers_and_a_start_while_streaming_is_refused(lab, ria_agent):
    assert lab.api.stop(ria_agent)["status"] == "idle"  # the old hub waited for a reply that never comes: 504
    lab.api.start(ria_agent, {"device": "mock", "center_frequency": 100e6, "sample_rate": 1e6, "buffer_size": 4096})
    lab.wait_agent(ria_agent, lambda a: (a["stream"] or {}).get("frames", 0) > 5)
    with pytest.raises(HubError) as refused:
        lab.api.start(ria_agent, {"device": "mock", "center_frequency": 433e6, "sample_rate": 1e6})
    assert refused.value.status == 409 and "stop it first" in str(refused.value)
    assert lab.api.agent(ria_agent)["stream"]["center_frequency"] == 100e6  # not relabelled
    assert lab.api.stop(ria_agent)["status"] == "idle"


def test_a_recording_follows_a_configure_of_an_agent_without_stream_info(lab, ria_agent):
    lab.api.start(ria_agent, {"device": "mock", "center_frequency": 100e6, "sample_rate": 1e6, "buffer_size": 4096},
                  record=True)
    lab.wait_agent(ria_agent, lambda a: (a["stream"] or {}).get("frames", 0) > 5)
    assert lab.api.configure(ria_agent, {"center_frequency": 101e6, "sample_rate": 2e6})["error"] is None
    frames = lab.api.agent(ria_agent)["stream"]["frames"]
    lab.wait_agent(ria_agent, lambda a: a["stream"]["frames"] > frames + 5)
    files = lab.api.record(ria_agent, False)["files"]
    metas = [json.load(open(f)) for f in files]
    assert [m["global"]["core:sample_rate"] for m in metas] == [1e6, 2e6]
    assert [c["core:frequency"] for m in metas for c in m["captures"]] == [100e6, 101e6]
    lab.api.stop(ria_agent)
