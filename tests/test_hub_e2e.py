"""The lab hub and agents as separate processes: register, stream, retune, stop, survive restarts and unplugging."""

import json
import time
import urllib.request

import pytest

from gnuradio.ria.hub.client import HubError
from lab import BIN, EMITTER, RATE, Lab, peak_near, start_session
from processes import AGENT_APP, run_app


def test_register_stream_retune_stop(lab, serial):
    agent_id, agent = lab.start_agent("bench-1")
    online = lab.wait_agent(agent_id, lambda a: a["online"])
    assert online["hardware"] == ["mock"] and online["status"] == "idle"
    answer = start_session(lab, agent_id, serial)
    assert answer["acked"] is True and answer["status"] == "streaming" and answer["error"] is None
    view = lab.wait_spectrum(agent_id, lambda v: v["stream"]["frames"] > 20)
    # The hub found the emitter at +100 kHz from the center: the IQ that arrived is the radio's.
    assert peak_near(view, EMITTER), view["spectrum"]["peak_frequency"]
    assert view["stream"]["center_frequency"] == 100e6 and view["stream"]["sample_rate"] == RATE

    answer = lab.api.configure(agent_id, {"center_frequency": 100.05e6})
    assert answer["acked"] is True and answer["error"] is None
    view = lab.wait_spectrum(agent_id, lambda v: v["stream"]["center_frequency"] == 100.05e6
                             and v["spectrum"]["center_frequency"] == 100.05e6)
    offset = view["spectrum"]["peak_frequency"] - view["stream"]["center_frequency"]
    assert abs(offset - 50e3) <= 2 * BIN  # moved by exactly the retune step (from +100 kHz to +50 kHz)

    with pytest.raises(HubError) as bad:
        lab.api.configure(agent_id, {"center_frequency": 1e12})
    assert bad.value.status == 502 and "center_frequency" in str(bad.value)  # the agent names it
    frames = lab.api.spectrum(agent_id)["stream"]["frames"]
    lab.wait_agent(agent_id, lambda a: a["stream"]["frames"] > frames + 5)  # and the stream goes on

    answer = lab.api.stop(agent_id)
    assert answer["status"] == "idle"
    assert lab.wait_agent(agent_id, lambda a: a["status"] == "idle")
    assert agent.stop() == 0
    assert "stopped" in agent.output


def test_agent_comes_back_after_hub_restart_and_describes_its_session(lab, serial):
    agent_id, agent = lab.start_agent("bench-2")
    lab.wait_agent(agent_id, lambda a: a["online"])
    start_session(lab, agent_id, serial)
    port = lab.url.rsplit(":", 1)[1]
    assert lab.stop_hub() == 0
    lab.start_hub(port=int(port))
    view = lab.wait_agent(agent_id, lambda a: a["online"], timeout=30)
    assert view["status"] == "streaming"
    # the new hub learns rate and frequency from a fresh stream_info, and measures the emitter again
    view = lab.wait_spectrum(agent_id, lambda v: v["stream"]["sample_rate"] == RATE)
    assert peak_near(view, EMITTER)
    # The new hub's commands are new to the agent: a hub that counted its ids from 1 again had its first
    # commands acknowledged and dropped as repeats (a stop that timed out while the agent kept streaming).
    assert lab.api.stop(agent_id)["status"] == "idle"
    assert start_session(lab, agent_id, serial, freq=100.05e6)["status"] == "streaming"
    assert lab.wait_agent(agent_id, lambda a: a["stream"]["center_frequency"] == 100.05e6)


def test_unplug_shows_the_error_and_streaming_resumes(lab, serial):
    from gnuradio.ria import riasim_control

    agent_id, _ = lab.start_agent("bench-3")
    lab.wait_agent(agent_id, lambda a: a["online"])
    start_session(lab, agent_id, serial)
    lab.wait_agent(agent_id, lambda a: (a["stream"] or {}).get("frames", 0) > 10)
    riasim_control.unplug(serial, style="nodev")
    view = lab.wait_agent(agent_id, lambda a: a["last_error"] is not None)
    assert view["last_error"]["message"].startswith("SDR disconnected")
    frames = view["stream"]["frames"]
    riasim_control.replug(serial)
    lab.wait_agent(agent_id, lambda a: a["stream"]["frames"] > frames + 20)
    lab.wait_agent(agent_id, lambda a: a["last_error"] is None)  # the agent said the radio is back
    assert lab.wait_spectrum(agent_id, lambda v: peak_near(v, EMITTER))


def test_registration_refusals_say_why(lab):
    key_id, key = lab.create_key()
    _, first = lab.register("student-1", key)
    assert first.returncode == 0, first.stderr
    _, again = lab.register("student-2", key)
    assert again.returncode == 1 and "has been used" in again.stderr

    key_id, key = lab.create_key("--uses", "5")
    assert lab.hub_cli("keys", "revoke", key_id).returncode == 0
    _, revoked = lab.register("student-3", key)
    assert revoked.returncode == 1 and "revoked" in revoked.stderr

    from gnuradio.ria.hub.store import Store
    store = Store(lab.data_dir + "/hub.sqlite")
    _, expired_key = store.create_key(ttl_s=60, now=0.0)  # made long ago: expired
    store.close()
    _, expired = lab.register("student-4", expired_key)
    assert expired.returncode == 1 and "expired" in expired.stderr

    _, invalid = lab.register("student-5", "ria_reg_not-a-key")
    assert invalid.returncode == 1 and "does not know this registration key" in invalid.stderr

    listing = lab.hub_cli("keys", "list").stdout
    assert "already_consumed" in listing and "revoked" in listing and "expired" in listing

    # protocol reasons on the wire
    for key, status, reason in ((expired_key, 403, "expired"), ("nope", 401, "invalid_key")):
        request = urllib.request.Request(lab.url + "/screens/agents/register", data=b'{"name": "x"}',
                                         headers={"X-API-Key": key, "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == status and json.load(refused.value) == {"detail": {"reason": reason}}


def test_registration_is_rate_limited(tmp_path):
    lab = Lab(str(tmp_path), register_limit=3)
    try:
        outcomes = [lab.register(f"s{i}", "ria_reg_wrong")[1] for i in range(4)]
        assert all(o.returncode == 1 for o in outcomes)
        assert "limiting registrations" not in outcomes[2].stderr
        assert "limiting registrations" in outcomes[3].stderr
    finally:
        lab.close()


def test_bad_agent_tokens_are_refused(lab):
    import websockets.sync.client as ws_client
    from websockets.exceptions import InvalidStatus

    ws_url = lab.url.replace("http://", "ws://") + "/screens/agent/ws"
    for headers, url in (({"Authorization": "Bearer ria_agt_forged"}, ws_url), ({}, ws_url + "?token=forged"),
                         ({}, ws_url)):
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(url, additional_headers=headers, open_timeout=10).close()
        assert refused.value.response.status_code == 401


def test_api_needs_the_admin_token_and_names_unknown_agents(lab):
    from gnuradio.ria.hub.client import HubClient

    with pytest.raises(HubError) as refused:
        HubClient(lab.url, "wrong").agents()
    assert refused.value.status == 401 and "admin token" in str(refused.value)
    with pytest.raises(HubError) as missing:
        lab.api.start("agent-nobody", {})
    assert missing.value.status == 404 and "agent-nobody" in str(missing.value)


def test_agent_health_endpoint_and_metrics_line(lab):
    agent_id, agent = lab.start_agent("bench-4", "--health-port", "0", "--metrics-interval", "0.5")
    port = int(agent.wait_line(r"health endpoint on http://127.0.0.1:(\d+)/health").group(1))
    lab.wait_agent(agent_id, lambda a: a["online"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        body = json.load(response)
        assert response.status == 200 and body["state"] == "connected" and body["session"] == "idle"
    agent.wait_line(r"metrics: state=connected session=idle frames_sent=\+0 frames_dropped=\+0")
    lab.stop_hub()
    agent.wait_line(r"metrics: state=disconnected")
    with pytest.raises(urllib.error.HTTPError) as down:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10)
    assert down.value.code == 503 and json.load(down.value)["state"] == "disconnected"
    assert "ria_agt_" not in agent.output  # the token never reaches the log


def test_hub_health_and_metrics(lab):
    agent_id, _ = lab.start_agent("bench-5")
    lab.wait_agent(agent_id, lambda a: a["online"])
    with urllib.request.urlopen(lab.url + "/health", timeout=10) as response:
        health = json.load(response)
    assert health["status"] == "ok" and health["agents_online"] == 1
    with urllib.request.urlopen(lab.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "ria_hub_agents_online 1" in text and 'ria_hub_registrations_total{result="ok"} 1' in text
    assert "ria_hub_ws_connections_total 1" in text


def test_agent_run_without_registration_says_what_to_do(tmp_path):
    result = run_app(AGENT_APP, "--config", str(tmp_path / "none.json"), "run")
    assert result.returncode == 78 and "ria_agent.py register" in result.stderr


def test_silent_agent_goes_offline_after_three_missed_heartbeats(lab):
    import websockets.sync.client as ws_client
    from websockets.exceptions import ConnectionClosed

    config_file, result = lab.register("silent-1")
    assert result.returncode == 0
    with open(config_file) as f:
        saved = json.load(f)
    url = lab.url.replace("http://", "ws://") + f"/screens/agent/ws?agent_id={saved['agent_id']}&token={saved['token']}"
    beat = json.dumps({"type": "heartbeat", "hardware": ["mock"], "status": "idle", "capabilities": ["rx"],
                       "tx_enabled": False})
    with ws_client.connect(url, open_timeout=10) as ws:
        ws.send(beat)
        lab.wait_agent(saved["agent_id"], lambda a: a["online"])
        time.sleep(0.3)  # not a wait: this is the simulated agent's heartbeat interval
        ws.send(beat)
        lab.wait_agent(saved["agent_id"], lambda a: a["interval"] < 5)
        view = lab.wait_agent(saved["agent_id"], lambda a: not a["online"], timeout=30)
        assert view["status"] == "offline" and view["last_heartbeat"] is not None
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # the hub dropped the dead connection


def test_hub_cli_lists_starts_retunes_and_stops(lab, serial):
    agent_id, _ = lab.start_agent("cli-1")
    lab.wait_agent(agent_id, lambda a: a["online"])
    listing = lab.hub_cli("agents")
    assert listing.returncode == 0 and f"{agent_id}" in listing.stdout and "idle" in listing.stdout
    started = lab.hub_cli("start", agent_id, "--device", f"driver=riasim,serial={serial}", "--freq", "100e6",
                          "--rate", str(RATE), "--sample-format", "cs16", "--json")
    assert started.returncode == 0 and json.loads(started.stdout)["status"] == "streaming"
    retuned = lab.hub_cli("configure", agent_id, "--freq", "100.02e6", "--json")
    assert retuned.returncode == 0 and json.loads(retuned.stdout)["acked"] is True
    view = lab.wait_spectrum(agent_id, lambda v: v["spectrum"]["center_frequency"] == 100.02e6)
    assert peak_near(view, EMITTER) and view["stream"]["sample_format"] == "cs16"
    refused = lab.hub_cli("configure", agent_id, "--rate", "1e12")
    assert refused.returncode == 1 and "sample_rate" in refused.stderr
    stopped = lab.hub_cli("--json", "stop", agent_id)
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["status"] == "idle"
    offline = lab.hub_cli("start", "agent-missing")
    assert offline.returncode == 1 and "no agent agent-missing" in offline.stderr
