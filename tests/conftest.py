import os
import uuid

import pytest


@pytest.fixture
def serial(tmp_path, monkeypatch):
    """A riasim serial of this test's own, with its own fault control directory."""
    monkeypatch.setenv("RIASIM_CONTROL_DIR", str(tmp_path / "riasim"))
    monkeypatch.setenv("RIASIM_AIR", str(tmp_path / "riasim-air"))  # what this test transmits, only it hears
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def flowgraphs():
    """Starts top blocks for a test and always stops them, whatever the test did."""
    started = []

    def start(tb):
        tb.start()
        started.append(tb)
        return tb

    yield start
    for tb in started:
        tb.stop()
        tb.wait()


@pytest.fixture
def hub():
    """A real hub endpoint on 127.0.0.1 (tests/hub_server.py), token hub_server.TOKEN."""
    from hub_server import HubServer

    server = HubServer().start()
    yield server
    server.stop()


@pytest.fixture
def lab(tmp_path):
    """A lab hub process in tmp_path; agents started through it are stopped with it."""
    from lab import Lab

    lab = Lab(str(tmp_path))
    yield lab
    lab.close()


@pytest.fixture
def class_lab(tmp_path):
    """A lab hub that lets a whole class register at once (40 registrations a minute from 127.0.0.1)."""
    from lab import Lab

    lab = Lab(str(tmp_path), register_limit=40)
    yield lab
    lab.close()


@pytest.fixture
def peer(lab):
    """An agent scripted over a real WebSocket (tests/scripted_agent.py), registered with the lab hub and
    online: (agent_id, ScriptedAgent, token)."""
    from scripted_agent import ScriptedAgent

    agent_id, token = lab.register_api("peer-1")
    agent = ScriptedAgent(lab.url, token, agent_id)
    agent.heartbeat()
    lab.wait_agent(agent_id, lambda a: a["online"])
    yield agent_id, agent, token
    agent.close()


@pytest.fixture(scope="session")
def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def nats_server(tmp_path):
    """A real nats-server with JetStream in tmp_path, on a free port of 127.0.0.1, stopped at teardown."""
    from nats_cluster import NatsServer

    server = NatsServer(str(tmp_path / "nats")).start()
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path, nats_server):
    """Hub nodes on nats_server (start them with cluster.start_node(name)); all stopped at teardown."""
    from nats_cluster import Cluster

    cluster = Cluster(str(tmp_path), nats_server)
    yield cluster
    cluster.close()
