"""One bad agent, or anyone on the class network, cannot take the hub down: hostile input over real sockets
to a real hub process, and the hub still answers, in bounded memory and log, with strict JSON."""

import json
import math
import os
import socket
import urllib.error
import urllib.request

import pytest

from gnuradio.ria.hub.client import HubError
from lab import Lab
from processes import HUB_APP, run_app
from scripted_agent import ScriptedAgent


def strict_json(raw):
    """json.loads that refuses NaN and Infinity, as a browser's JSON.parse does."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(raw, parse_constant=refuse)


def raw_get(url, path, token=None, scheme="Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=10) as response:
        return response.status, response.read()


def post(url, path, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def closed_by_peer(sock):
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:  # the hub aborts a connection that never sent its headers
        return True


def admin_token(lab):
    with open(os.path.join(lab.data_dir, "admin_token")) as f:
        return f.read().strip()


def test_an_agent_flooding_huge_errors_cannot_grow_the_log_or_the_memory(lab, peer):
    agent_id, agent, _ = peer
    lines_before, rss_before = lab.hub.line_count(), lab.hub.rss_mib()
    big = "x" * (60 * 1024)  # under the message limit: stored and logged cut short
    for i in range(300):
        agent.send({"type": "error", "app_id": "a", "message": f"{i}\n{big}"})
    agent.send({"type": "error", "app_id": "a", "message": "y" * (2 << 20)})  # over the message limit: refused
    agent.heartbeat()  # in order after the flood: once it is seen, the flood was handled
    lab.wait_agent(agent_id, lambda a: (a["last_error"] or {}).get("message", "").startswith("299"))
    view = lab.api.agent(agent_id)
    assert len(view["last_error"]["message"]) <= 500 and "\n" not in view["last_error"]["message"]
    assert len(view["errors"]) <= 20
    new_lines = [line for line in lab.hub.output.splitlines()[lines_before:] if agent_id in line]
    assert len(new_lines) <= 12 and sum(len(line) for line in new_lines) < 12 * 700
    assert lab.hub.rss_mib() - rss_before < 64
    status, _ = raw_get(lab.url, "/health")
    assert status == 200


def test_hostile_heartbeats_are_cut_down_and_the_api_stays_strict_json(lab, peer):
    agent_id, agent, _ = peer
    agent.heartbeat(hardware=[f"radio-{i}" for i in range(4000)] + ["\x1b[31mred"],
                    stats={"frames_sent": float("nan"), "bytes_sent": float("inf"), "ok": 7,
                           **{f"k{i}": i for i in range(100)}},
                    agent={"name": "evil\r\n2026-11-22 ria_hub: agent forged", "version": "1\x00"})
    view = lab.wait_agent(agent_id, lambda a: a["hardware"] and a["hardware"][0] == "radio-0")
    assert len(view["hardware"]) == 32
    assert "frames_sent" not in view["stats"] and "bytes_sent" not in view["stats"] and len(view["stats"]) <= 64
    assert "\n" not in view["agent"]["name"] and "\x00" not in view["agent"]["version"]
    # A stream_info with NaN is refused; the last good values stay, and the whole API is strict JSON.
    agent.send('{"type":"status","status":"streaming","app_id":"s"}')
    agent.send('{"type":"stream_info","app_id":"s","sample_rate":NaN,"center_frequency":Infinity,"gain":1,'
               '"sample_format":"cf32","sample_index":0}')
    agent.heartbeat(status="streaming", app_id="s")
    lab.wait_agent(agent_id, lambda a: a["status"] == "streaming")
    token = admin_token(lab)
    for path in ("/api/agents", f"/api/agents/{agent_id}", f"/api/agents/{agent_id}/spectrum"):
        status, raw = raw_get(lab.url, path, token)
        strict_json(raw)
        assert status == 200 and len(raw) < 64 * 1024, path
    stream = lab.api.agent(agent_id)["stream"]
    assert all(math.isfinite(stream[k]) for k in ("sample_rate", "center_frequency"))
    listing = lab.hub_cli("agents")
    assert listing.returncode == 0 and "\x1b" not in listing.stdout and "forged" not in listing.stdout


def test_rate_changes_while_recording_are_limited_and_the_hub_stays_responsive(lab, peer):
    agent_id, agent, _ = peer
    agent.send('{"type":"status","status":"streaming","app_id":"s"}')
    lab.wait_agent(agent_id, lambda a: a["status"] == "streaming")
    lab.api.record(agent_id, True)
    frame = bytes(64 * 8)
    for i in range(2000):
        agent.send({"type": "stream_info", "app_id": "s", "sample_rate": 1e6 + (i % 2), "center_frequency": 1e8,
                    "gain": 0, "sample_format": "cf32", "sample_index": i * 64})
        agent.send(frame)
        if i % 3 == 0:
            agent.send({"type": "gap", "app_id": "s", "sample_index": i * 64, "dropped_samples": 1, "reason": "x"})
    agent.heartbeat(status="streaming", app_id="s")
    view = lab.wait_agent(agent_id, lambda a: a["recording_ended"] is not None)
    assert "changed settings more than" in view["recording_ended"] and view["recording"] is None
    files = os.listdir(os.path.join(lab.data_dir, "recordings"))
    assert len(files) <= 2 * 60  # a burst of 50 segments (and the seconds it took): not 4000 files
    assert raw_get(lab.url, "/health")[0] == 200


def test_half_sent_requests_cannot_exhaust_the_hub(tmp_path):
    lab = Lab(str(tmp_path), serve_flags=["--max-per-client", "20", "--max-connections", "30",
                                          "--header-timeout", "2", "--idle-timeout", "2"])
    port = int(lab.url.rsplit(":", 1)[1])
    held = []
    try:
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            # never the blank line; or only blank lines, which come before a request line and end no headers
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"\r\n\r\n\r\n")
            held.append(s)
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert extra.recv(200).startswith(b"HTTP/1.1 503")  # one address holds at most 20
        extra.close()
        # Another address still gets in: the cap is per client.
        s2 = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
        s2.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert s2.recv(200).startswith(b"HTTP/1.1 200")
        s2.close()
        for s in held:  # the header deadline closes every half-sent request
            assert closed_by_peer(s)
        assert raw_get(lab.url, "/health")[0] == 200
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)  # one request, then silence
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := idle.recv(4096):  # the answer, then the close when the idle timeout ends
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        idle.close()
        status, raw = raw_get(lab.url, "/metrics")
        assert b"ria_hub_header_timeouts_total 20" in raw and b"ria_hub_connections_refused_total 1" in raw
    finally:
        for s in held:
            s.close()
        lab.close()


def test_malformed_bodies_get_400_and_a_key_is_used_only_by_a_registration_that_succeeds(lab):
    token = admin_token(lab)
    auth = {"Authorization": f"Bearer {token}"}
    deep = b"[" * 100000 + b"]" * 100000
    assert post(lab.url, "/api/keys", deep, auth)[0] == 400
    _, key = lab.create_key()  # single use
    for body in (deep, {"name": "\ud800"}, {"name": "bad\x1bname"}, {"name": "x" * 101}, {"name": 7}):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()  # json.dumps escapes the surrogate
        status, answer = post(lab.url, "/screens/agents/register", data, {"X-API-Key": key})
        assert status == 400, (body if isinstance(body, dict) else "deep", answer)
    status, answer = post(lab.url, "/screens/agents/register", {"name": "student-1"}, {"X-API-Key": key})
    assert status == 200 and answer["agent_id"].startswith("agent-")  # the key was not burnt by the bad ones


@pytest.mark.parametrize("params", [{"uses": float("nan")}, {"uses": 1.5}, {"uses": True}, {"uses": "3"},
                                    {"uses": 10 ** 9}, {"ttl_s": float("nan")}, {"ttl_s": float("inf")},
                                    {"ttl_s": -5}, {"ttl_s": "2h"}, {"label": "a\nb"}])
def test_key_parameters_are_checked(lab, params):
    status, answer = post(lab.url, "/api/keys", json.dumps(params).encode(),
                          {"Authorization": f"Bearer {admin_token(lab)}"})
    assert status == 400 and next(iter(params)) in answer["error"]


def test_the_bearer_scheme_is_case_insensitive(lab):
    assert raw_get(lab.url, "/api/agents", admin_token(lab), scheme="bearer")[0] == 200
    assert raw_get(lab.url, "/api/agents", admin_token(lab), scheme="BEARER")[0] == 200


def test_deleting_or_revoking_an_agent_closes_its_live_connection(lab):
    deleted_id, deleted_token = lab.register_api("to-delete")
    revoked_id, revoked_token = lab.register_api("to-revoke")
    deleted, revoked = ScriptedAgent(lab.url, deleted_token), ScriptedAgent(lab.url, revoked_token)
    try:
        deleted.heartbeat(), revoked.heartbeat()
        lab.wait_agent(revoked_id, lambda a: a["online"])
        result = lab.hub_cli("delete-agent", deleted_id)
        assert result.returncode == 0 and "live connection closed" in result.stdout
        assert deleted.closed.wait(10) and deleted.close_code == 4001
        assert lab.api.request("POST", f"/api/agents/{revoked_id}/revoke", {}) == {"revoked": revoked_id}
        assert revoked.closed.wait(10) and revoked.close_code == 4001
        for token in (deleted_token, revoked_token):
            with pytest.raises(Exception, match="401"):
                ScriptedAgent(lab.url, token)
        states = {a["agent_id"]: a["status"] for a in lab.api.agents()}
        assert deleted_id not in states and states[revoked_id] == "revoked"
        assert "revoked" in lab.hub_cli("agents").stdout
        with pytest.raises(HubError) as missing:
            lab.api.request("DELETE", f"/api/agents/{deleted_id}")
        assert missing.value.status == 404
    finally:
        deleted.close(), revoked.close()


def test_two_processes_on_one_agents_token_are_told_and_shown(lab):
    agent_id, token = lab.register_api("twice")
    first = ScriptedAgent(lab.url, token)
    first.heartbeat()
    lab.wait_agent(agent_id, lambda a: a["online"])
    second = ScriptedAgent(lab.url, token)  # once: an agent back before the hub noticed its old connection die
    try:
        assert first.closed.wait(10) and first.close_code == 4009
        assert "replaced by another connection with this agent's token (from 127.0.0.1)" in first.close_reason
        second.heartbeat()
        assert lab.wait_agent(agent_id, lambda a: a["online"])["twin_connections"] is None
        third = ScriptedAgent(lab.url, token)  # again within the minute: two processes fight over it
        third.heartbeat()
        assert second.closed.wait(10) and second.close_code == 4009
        twin = lab.wait_agent(agent_id, lambda a: a["online"] and a["twin_connections"])["twin_connections"]
        assert twin == {"last_minute": 2, "addresses": ["127.0.0.1"]}
        listing = lab.hub_cli("agents")
        assert f"warning: agent {agent_id}: 2 connections replaced in the last minute, from 127.0.0.1: is it " \
               "running twice?" in listing.stdout, listing.stdout
        third.close()
    finally:
        first.close(), second.close()


def test_revoking_without_a_running_hub_changes_the_database(tmp_path):
    lab = Lab(str(tmp_path))
    try:
        agent_id, token = lab.register_api("offline-one")
        assert lab.stop_hub() == 0
        result = run_app(HUB_APP, "--data-dir", lab.data_dir, "--hub", lab.url, "revoke-token", agent_id)
        assert result.returncode == 0 and "no hub answered" in result.stdout
        lab.start_hub()
        with pytest.raises(Exception, match="401"):
            ScriptedAgent(lab.url, token)
    finally:
        lab.close()


def test_a_trusted_proxy_gives_each_student_their_own_registration_limit(tmp_path):
    lab = Lab(str(tmp_path), register_limit=2, serve_flags=["--trusted-proxy", "127.0.0.1"])
    try:
        def register(forwarded, source="127.0.0.1"):
            key = lab.create_key()[1]
            s = socket.create_connection(("127.0.0.1", int(lab.url.rsplit(":", 1)[1])), timeout=10,
                                         source_address=(source, 0))
            body = b'{"name": "s"}'
            s.sendall(b"POST /screens/agents/register HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nX-API-Key: " + key.encode() +
                      b"\r\nX-Forwarded-For: " + forwarded.encode() +
                      b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
            s.close()
            return int(answer.split()[1])

        assert [register("10.0.0.1") for _ in range(3)] == [200, 200, 429]
        assert register("10.0.0.2") == 200  # another student behind the same proxy
        # From an address that is not a trusted proxy, X-Forwarded-For is ignored: a forged one does not help.
        assert [register(f"10.9.9.{i}", source="127.0.0.2") for i in range(3)] == [200, 200, 429]
    finally:
        lab.close()


def test_at_the_connection_cap_a_slow_header_makes_room_for_a_working_client(tmp_path):
    lab = Lab(str(tmp_path), serve_flags=["--max-connections", "10", "--header-timeout", "60"])
    port = int(lab.url.rsplit(":", 1)[1])
    held = []
    try:
        for i in range(10):  # from many addresses, so the per-address cap does not apply
            s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(f"127.0.3.{i + 1}", 0))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        assert raw_get(lab.url, "/health")[0] == 200  # the hub is full of slow headers, and still answers
        assert closed_by_peer(held[0])  # the oldest of them made room
        assert b"ria_hub_header_evictions_total 1\n" in raw_get(lab.url, "/metrics")[1]
    finally:
        for s in held:
            s.close()
        lab.close()


def test_frames_that_are_not_whole_samples_are_refused_and_the_agent_stays(lab, peer):
    agent_id, agent, _ = peer
    agent.send('{"type":"status","status":"streaming","app_id":"s"}')
    for _ in range(30):
        agent.send(b"")
        agent.send(bytes(7))
    agent.send(bytes(8 * 16))
    agent.heartbeat(status="streaming", app_id="s")
    view = lab.wait_agent(agent_id, lambda a: (a["stream"] or {}).get("frames") == 1)
    assert view["online"] and view["stream"]["samples"] == 16
    assert b"ria_hub_agent_messages_refused_total 60" in raw_get(lab.url, "/metrics")[1]
