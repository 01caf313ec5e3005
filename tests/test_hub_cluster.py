"""Hub nodes on a real NATS JetStream (tests/nats_cluster.py): one registry, agents held by any node and commanded
from any node, failover to another node, the recorder as a worker of its own, a node that outlives NATS."""

import concurrent.futures
import glob
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from lab import RATE
from nats_cluster import NATS_SERVER
from processes import AGENT_APP, HUB_APP, Process, python, run_app


def poll(fetch, predicate, timeout=20.0, what="the condition"):
    """fetch() until predicate(value) holds; returns the value (AssertionError with the last value on timeout)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = fetch()
        except Exception as e:  # noqa: BLE001 - a node going away in the middle of a poll
            value = e
        if not isinstance(value, Exception) and value is not None and predicate(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} never held; last: {value}")


def agent_view(node, agent_id):
    return next((a for a in node.api.agents() if a["agent_id"] == agent_id), None)


def register(url, key, name):
    request = urllib.request.Request(url + "/screens/agents/register", method="POST",
                                     data=json.dumps({"name": name}).encode(),
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def raw(node, method, path, body, headers):
    """(status, JSON answer) of a request with exactly these headers."""
    request = urllib.request.Request(node.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metrics(node):
    with urllib.request.urlopen(node.url + "/metrics", timeout=10) as response:
        return response.read().decode()


def ws(node, agent_id):
    return node.url.replace("http://", "ws://") + f"/screens/agent/ws?agent_id={agent_id}"


def start_agent(cluster, tmp_path, register_on, nodes, name="field-1"):
    """A real agent process registered on one node, connecting through `nodes` in turn; (agent_id, Process)."""
    key = register_on.api.request("POST", "/api/keys", {"uses": 1})["key"]
    config = str(tmp_path / f"{name}.json")
    result = run_app(AGENT_APP, "--config", config, "register", "--hub", register_on.url, "--api-key", key,
                     "--name", name)
    assert result.returncode == 0, result.stderr
    agent_id = re.search(r"registered as (agent-\w+)", result.stdout).group(1)
    urls = " ".join(ws(n, agent_id) for n in nodes)
    agent = Process(python(AGENT_APP, "--config", config, "run", "--url", urls, "--heartbeat-interval", "1",
                           "--simulator", "--hardware", "mock"))
    cluster.processes.append(agent)
    return agent_id, agent


def start_rc(serial, freq=100e6):
    return {"device": f"driver=riasim,serial={serial}", "center_frequency": freq, "sample_rate": RATE, "gain": 30,
            "buffer_size": 8192}


def test_fifty_registrations_race_for_a_single_use_key_across_three_nodes(cluster):
    nodes = [cluster.start_node(n) for n in "abc"]
    key = nodes[0].api.request("POST", "/api/keys", {"uses": 1, "label": "race"})
    barrier = threading.Barrier(50)

    def racer(i):
        barrier.wait()
        return register(nodes[i % 3].url, key["key"], f"racer-{i}")
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(racer, range(50)))
    won = [body for status, body in answers if status == 200]
    refused = [body["detail"]["reason"] for status, body in answers if status == 403]
    assert len(won) == 1, answers
    assert refused == ["already_consumed"] * 49, answers
    # every node sees the one agent and the key used once
    for node in nodes:
        keys = poll(lambda: node.api.request("GET", "/api/keys")["keys"],
                    lambda ks: any(k["key_id"] == key["key_id"] and k["uses"] == 1 for k in ks), 5, "the key's use")
        assert [k["state"] for k in keys if k["key_id"] == key["key_id"]] == ["already_consumed"]
        agents = poll(node.api.agents, lambda a: len(a) == 1, 5, "one agent on every node")
        assert agents[0]["agent_id"] == won[0]["agent_id"]
    # and the registry refuses what SQLite refuses
    assert register(nodes[1].url, "ria_reg_nothing", "x") == (401, {"detail": {"reason": "invalid_key"}})
    nodes[2].api.request("DELETE", f"/api/keys/{key['key_id']}")
    assert register(nodes[0].url, key["key"], "x")[1]["detail"]["reason"] == "revoked"
    # the CLI makes and lists the cluster's keys in NATS, as it does SQLite's without --nats
    made = run_app(HUB_APP, "keys", "create", "--uses", "2", "--label", "cli", "--nats", cluster.nats.url)
    assert made.returncode == 0, made.stderr
    cli_key = made.stdout.strip().splitlines()[-1]
    assert register(nodes[2].url, cli_key, "from-cli")[0] == 200
    listed = run_app(HUB_APP, "keys", "list", "--nats", cluster.nats.url)
    assert re.search(r"valid\s+1/2\s+never\s+cli", listed.stdout), listed.stdout


def test_an_access_token_made_on_one_node_works_on_every_node_until_revoked(cluster, tmp_path):
    a, b = cluster.start_node("a"), cluster.start_node("b")
    made = run_app(HUB_APP, "--data-dir", str(tmp_path), "tokens", "create", "--role", "view", "--label", "projector",
                   "--nats", cluster.nats.url, "--json")
    assert made.returncode == 0, made.stderr
    token_id, token = json.loads(made.stdout)["token_id"], json.loads(made.stdout)["token"]
    auth = {"Authorization": f"Bearer {token}"}
    poll(lambda: raw(b, "GET", "/api/agents", None, auth), lambda r: r[0] == 200, what="the token known on node b")
    status, answer = raw(b, "POST", "/api/agents/agent-0123456789ab/stop", b"{}", auth)
    assert status == 403 and "view-only" in answer["error"]
    assert [t["label"] for t in b.api.request("GET", "/api/tokens")["tokens"]] == ["projector"]
    assert a.api.request("DELETE", f"/api/tokens/{token_id}") == {"revoked": token_id}
    poll(lambda: raw(b, "GET", "/api/agents", None, auth), lambda r: r[0] == 401, what="the token refused on b")
    again = run_app(HUB_APP, "tokens", "revoke", token_id, "--nats", cluster.nats.url)
    assert again.returncode == 1 and f"access token {token_id} is already revoked" in again.stderr


def test_register_on_a_stream_through_b_command_from_c_and_fail_over(cluster, tmp_path, serial):
    a, b, c = (cluster.start_node(n) for n in "abc")
    agent_id, agent = start_agent(cluster, tmp_path, a, [b, c])
    view = poll(lambda: agent_view(a, agent_id), lambda v: v["online"], what="the agent online on node a")
    node_b = b.health()["cluster"]["node"]
    assert view["node"] == node_b

    answer = c.api.start(agent_id, start_rc(serial))  # through NATS to node b, and the agent's answer back
    assert answer["acked"] is True and answer["status"] == "streaming" and answer["error"] is None
    view = poll(lambda: c.api.spectrum(agent_id), lambda v: v["stream"]["frames"] > 10, what="frames on b")
    assert view["stream"]["sample_rate"] == RATE
    answer = a.api.configure(agent_id, {"center_frequency": 100.05e6})
    assert answer["acked"] is True and answer["error"] is None
    poll(lambda: a.api.spectrum(agent_id), lambda v: v["stream"]["center_frequency"] == 100.05e6, what="retune")
    with pytest.raises(Exception) as bad:  # the agent's own error comes back through two nodes
        c.api.configure(agent_id, {"center_frequency": 1e12})
    assert getattr(bad.value, "status", None) == 502 and "center_frequency" in str(bad.value)
    assert c.health()["cluster"]["commands_forwarded"] >= 2 and b.health()["cluster"]["commands_served"] >= 3
    # the holding node checks the token of what it is sent: no token, no stop; and a body too big for the bus is
    # refused by name, not cut
    assert raw(c, "POST", f"/api/agents/{agent_id}/stop", b"{}", {})[0] == 401
    status, answer = raw(c, "POST", f"/api/agents/{agent_id}/configure", b" " * (950 * 1024),
                         {"Authorization": f"Bearer {c.api._token}"})
    assert status == 413 and "held by another hub node" in answer["error"]
    assert c.api.spectrum(agent_id)["stream"]["frames"] > 10  # still streaming: nothing was stopped

    frames_before = b.api.spectrum(agent_id)["stream"]["frames"]
    b.process.stop(sig=9)  # node b dies mid-session
    killed = time.monotonic()
    view = poll(lambda: c.api.spectrum(agent_id), lambda v: v["stream"] and v["stream"]["frames"] > 5,
                timeout=30, what="the agent streaming through node c")
    failover_s = time.monotonic() - killed
    print(f"\nfailover: agent streaming through another node {failover_s:.2f} s after its node was killed "
          f"({frames_before} frames through b before)")
    assert view["stream"]["sample_rate"] == RATE and view["stream"]["center_frequency"] == 100.05e6  # stream_info
    node_c = c.health()["cluster"]["node"]
    assert agent_view(c, agent_id)["node"] == node_c  # its own agents too
    poll(lambda: agent_view(a, agent_id), lambda v: v.get("node") == node_c and v["status"] == "streaming",
         what="node a showing the agent on node c")
    assert a.api.stop(agent_id)["status"] == "idle"
    agent.stop()


def test_recorder_worker_writes_every_frame_the_nodes_received(cluster, tmp_path, serial):
    import numpy as np
    import sigmf

    a, b = cluster.start_node("a"), cluster.start_node("b")
    folder = str(tmp_path / "recorded")
    recorder = cluster.start_recorder(folder)
    agent_id, agent = start_agent(cluster, tmp_path, a, [b])
    poll(lambda: agent_view(a, agent_id), lambda v: v["online"], what="the agent online")
    assert a.api.start(agent_id, start_rc(serial), app_id="rec-1")["status"] == "streaming"
    poll(lambda: b.api.spectrum(agent_id), lambda v: v["stream"]["frames"] > 40, what="40 frames")
    assert a.api.configure(agent_id, {"center_frequency": 100.05e6})["error"] is None
    poll(lambda: b.api.spectrum(agent_id), lambda v: v["stream"]["frames"] > 80, what="80 frames")
    assert a.api.stop(agent_id)["status"] == "idle"
    received = b.api.request("GET", f"/api/agents/{agent_id}")["stream"]
    recorder.wait_line(r"recording agent \S+ session rec-1")

    def recorded():
        metas = sorted(glob.glob(os.path.join(folder, f"{agent_id}-*.sigmf-meta")))
        return sum(os.path.getsize(m.replace(".sigmf-meta", ".sigmf-data")) for m in metas) // 8, metas
    poll(recorded, lambda r: r[0] >= received["samples"], 10, "the recorder catching up")
    samples, metas = recorded()
    assert samples == received["samples"] and len(metas) == 1
    handle = sigmf.sigmffile.fromfile(metas[0])  # validates against the SigMF schema
    handle.validate()
    captures = handle.get_captures()
    assert [c["core:frequency"] for c in captures] == [100e6, 100.05e6]
    assert handle.get_global_field("core:sample_rate") == RATE
    data = np.fromfile(metas[0].replace(".sigmf-meta", ".sigmf-data"), np.complex64)
    assert len(data) == received["samples"] and np.all(np.isfinite(data))
    agent.stop()


def test_node_keeps_its_agents_while_nats_is_away_and_catches_up(cluster, nats_server, tmp_path, serial):
    a, b = cluster.start_node("a"), cluster.start_node("b")
    agent_id, agent = start_agent(cluster, tmp_path, a, [b])
    other_id, other = start_agent(cluster, tmp_path, a, [b], name="field-2")
    for each in (agent_id, other_id):
        poll(lambda: agent_view(a, each), lambda v: v["online"], what="the agents online")
    assert a.api.start(agent_id, start_rc(serial))["status"] == "streaming"

    nats_server.stop()
    health = poll(b.health, lambda h: h["status"] == "degraded", 15, "node b saying NATS is away")
    assert health["cluster"]["nats"] == "unreachable" and health["agents_online"] == 2
    assert re.search(r"^ria_hub_nats_connected 0$", metrics(b), re.M) and \
        re.search(r"^ria_hub_nats_outages_total 1$", metrics(b), re.M)
    other.stop()  # an agent that comes back while NATS is away is let in from node b's mirror of the registry
    cluster.processes.append(Process(other.argv))
    poll(b.health, lambda h: h["agents_connected"] == 1, 10, "the agent gone")
    poll(b.health, lambda h: h["agents_online"] == 2, 20, "the agent back on node b without NATS")
    frames = b.api.spectrum(agent_id)["stream"]["frames"]
    poll(lambda: b.api.spectrum(agent_id), lambda v: v["stream"]["frames"] > frames + 20, what="streaming on")
    with pytest.raises(Exception) as refused:  # the registry cannot be written: said, not guessed
        b.api.request("POST", "/api/keys", {"uses": 1})
    assert getattr(refused.value, "status", None) == 503 and "NATS" in str(refused.value)

    nats_server.start()  # the same port and JetStream folder
    poll(b.health, lambda h: h["status"] == "ok", 20, "node b back on NATS")
    assert re.search(r"^ria_hub_nats_connected 1$", metrics(b), re.M)
    poll(lambda: agent_view(a, agent_id), lambda v: v["online"] and v["status"] == "streaming", 20,
         "node a seeing the agent again")
    poll(lambda: agent_view(a, other_id), lambda v: v["online"], 20, "node a seeing the other agent again")
    assert a.api.stop(agent_id)["status"] == "idle"  # commands cross again
    agent.stop()


def test_a_node_that_cannot_reach_nats_at_start_says_so_and_exits(tmp_path):
    with socket.socket() as closed:  # bound, not listening: nothing answers there
        closed.bind(("127.0.0.1", 0))
        result = run_app(HUB_APP, "--data-dir", str(tmp_path / "hub"), "serve", "--port", "0", "--zmq", "",
                         "--nats", f"nats://127.0.0.1:{closed.getsockname()[1]}")
    assert result.returncode == 2
    assert "cannot connect to NATS at nats://127.0.0.1:" in result.stderr and "no server answered" in result.stderr
    plain = Process([NATS_SERVER, "-a", "127.0.0.1", "-p", "-1"])  # no JetStream
    try:
        port = plain.wait_line(r"Listening for client connections on 127\.0\.0\.1:(\d+)").group(1)
        result = run_app(HUB_APP, "--data-dir", str(tmp_path / "hub"), "serve", "--port", "0", "--zmq", "",
                         "--nats", f"nats://127.0.0.1:{port}")
        assert result.returncode == 2 and "is JetStream on? nats-server -js" in result.stderr, result.stderr
    finally:
        plain.stop()
    bad = run_app(HUB_APP, "serve", "--nats", "http://x")
    assert bad.returncode == 2 and "not a nats:// or tls:// URL" in bad.stderr


def test_the_node_left_behind_lets_an_agent_go_when_it_connects_to_another(cluster):
    from scripted_agent import ScriptedAgent

    a, b = cluster.start_node("a"), cluster.start_node("b")
    status, body = register(a.url, a.api.request("POST", "/api/keys", {"uses": 1})["key"], "twice")
    assert status == 200
    agent_id, token = body["agent_id"], body["token"]
    first = ScriptedAgent(a.url, token, agent_id)
    second = None
    try:
        first.heartbeat()
        poll(lambda: agent_view(b, agent_id), lambda v: v["online"], what="the agent online on a, seen from b")
        second = ScriptedAgent(b.url, token, agent_id)  # its old connection to a is not noticed dead yet
        second.heartbeat()
        assert first.closed.wait(10) and first.close_code == 4002
        node_b = b.health()["cluster"]["node"]
        poll(lambda: agent_view(a, agent_id), lambda v: v.get("node") == node_b and v["online"],
             what="node a showing the agent on node b")
    finally:
        first.close()
        if second:
            second.close()


def test_an_agent_registered_with_a_list_of_nodes_uses_a_live_one(cluster, tmp_path):
    a = cluster.start_node("a")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
        config = str(tmp_path / "listed.json")
        key = a.api.request("POST", "/api/keys", {"uses": 1})["key"]
        result = run_app(AGENT_APP, "--config", config, "register", "--hub", f"{dead}, {a.url}", "--api-key", key,
                         "--name", "listed")
        assert result.returncode == 0, result.stderr
        with open(config) as f:
            assert json.load(f)["hub_url"] == f"{dead} {a.url}"
        agent_id = re.search(r"registered as (agent-\w+)", result.stdout).group(1)
        agent = Process(python(AGENT_APP, "--config", config, "run", "--heartbeat-interval", "1", "--simulator",
                               "--hardware", "mock"))  # no --url: both nodes from the config, the dead one first
        cluster.processes.append(agent)
        poll(lambda: agent_view(a, agent_id), lambda v: v["online"], what="the agent online through the live node")


def test_stock_zeromq_sub_source_gets_an_agent_of_another_node_through_the_bridge(cluster, tmp_path, serial,
                                                                                   flowgraphs):
    import numpy as np
    from gnuradio import gr, zeromq

    from helpers import peak_offset_hz, stream_recorder
    from lab import EMITTER

    a, b = cluster.start_node("a"), cluster.start_node("b")
    _, endpoint = cluster.start_bridge()
    agent_id, agent = start_agent(cluster, tmp_path, a, [b])
    poll(lambda: agent_view(a, agent_id), lambda v: v["online"], what="the agent online")
    tb = gr.top_block()
    source = zeromq.sub_source(gr.sizeof_gr_complex, 1, endpoint, 100, False, -1, agent_id)
    recorder = stream_recorder(keep=1 << 18)
    tb.connect(source, recorder)
    tb.python_blocks = (recorder,)
    flowgraphs(tb)
    rc = dict(start_rc(serial), sample_format="cs8")  # republished as cf32 all the same
    assert a.api.start(agent_id, rc)["status"] == "streaming"
    assert recorder.wait_count(1 << 17, 20)
    x = recorder.samples()
    assert abs(peak_offset_hz(x[-65536:], RATE) - (EMITTER - 100e6)) < 200  # the radio's signal, on node b
    assert np.all(np.abs(x.real) <= 1.0)
    assert a.api.stop(agent_id)["status"] == "idle"
    agent.stop()
