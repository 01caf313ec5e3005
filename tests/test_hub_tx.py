"""The hub's TX sessions (docs/protocol.md §6) over real sockets to a real hub process: against an agent scripted
like gr-ria's (interlocks, armed with queue_samples, tx_progress, tx_info) and like the RIA agent's (no progress),
with what the hub did measured on the agent's side."""

import json
import math
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from gnuradio.ria.hub.client import HubError
from gnuradio.ria.wire.tx import Interlocks
from lab import Lab
from processes import REPO, Process
from scripted_agent import ScriptedAgent, TxPlayer

RATE = 200e3
FREQ = 433.92e6
CAPS = Interlocks(True, max_gain_db=10, max_duration_s=30, allowed_freq_ranges=[[433.05e6, 434.79e6]])


def rc(**extra):
    return {"tx_sample_rate": RATE, "tx_center_frequency": FREQ, "tx_gain": 0, "device": "mock", **extra}


def tone(seconds=0.5, **extra):
    return {"kind": "tone", "offset_hz": 10e3, "duration_s": seconds, **extra}


@pytest.fixture
def txlab(tmp_path):
    lab = Lab(str(tmp_path), serve_flags=["--tx-timeout", "2"])
    yield lab
    lab.close()


@pytest.fixture
def make_peer(txlab):
    """make_peer(**TxPlayer options) -> (agent_id, player): a scripted TX agent, registered and online."""
    agents = []

    def make(interlocks=CAPS, name="tx-peer", **options):
        agent_id, token = txlab.register_api(name)
        agent = ScriptedAgent(txlab.url, token, agent_id)
        agents.append(agent)
        player = TxPlayer(agent, interlocks, **options)
        player.heartbeat()
        offered = interlocks.enabled or not player.advertise
        txlab.wait_agent(agent_id, lambda a: a["online"] and a["tx"]["caps"]["tx_enabled"] == offered)
        return agent_id, player

    yield make
    for agent in agents:
        agent.close()


def tx_view(lab, agent_id):
    return lab.api.agent(agent_id)["tx"]


def wait_ended(lab, agent_id, app_id):
    view = lab.wait_agent(agent_id, lambda a: (a["tx"]["last"] or {}).get("app_id") == app_id)
    return view["tx"]["last"]


def test_credit_flow_keeps_what_the_agent_holds_within_its_queue(txlab, make_peer):
    agent_id, player = make_peer(queue_samples=20000, play_rate=RATE)
    answer = txlab.api.tx_start(agent_id, rc(), tone(1.0), app_id="credit-1")
    assert answer["state"] == "armed" and answer["session"]["flow"] == "credit"
    assert answer["session"]["queue_samples"] == 20000
    last = wait_ended(txlab, agent_id, "credit-1")
    assert last["state"] in ("done", "underrun") and last["source_done"], last
    assert player.received == last["sent_samples"] == int(RATE * 1.0)
    assert player.max_unplayed <= 20000  # measured by the agent, at every frame
    assert max(player.frames) <= 20000 // 4 and last["max_in_flight"] <= 20000
    assert last["stop_reason"] in (None, "the source ended")
    metrics = urllib.request.urlopen(txlab.url + "/metrics", timeout=10).read().decode()
    assert "ria_hub_tx_samples_total 200000\n" in metrics and "ria_hub_agents_transmitting 0\n" in metrics


def test_an_agent_without_progress_is_paced_at_the_sample_rate(txlab, make_peer):
    agent_id, player = make_peer(progress=False, play_rate=1e9, policy_underrun=False)
    answer = txlab.api.tx_start(agent_id, rc(buffer_size=2000), tone(0.6), app_id="paced-1")
    assert answer["session"]["flow"] == "paced"
    last = wait_ended(txlab, agent_id, "paced-1")
    assert last["state"] == "done" and last["stop_reason"] == "the source ended"
    assert player.received == int(RATE * 0.6)
    lead = 6 * 2000  # the hub's largest lead: six frames
    for seconds, received in player.arrivals:  # never ahead of the sample rate by more than the lead and a frame
        assert received <= RATE * seconds + lead + 2000, (seconds, received)


def test_a_configure_lands_between_frames_at_the_index_the_agent_confirms(txlab, make_peer):
    agent_id, player = make_peer(queue_samples=40000, play_rate=RATE / 4)
    txlab.api.tx_start(agent_id, rc(), tone(3.0), app_id="conf-1")
    txlab.wait_agent(agent_id, lambda a: a["tx"]["session"]["sent_samples"] > 10000)
    answer = txlab.api.tx_configure(agent_id, {"tx_center_frequency": 434e6, "tx_gain": 5})
    with player.lock:
        (index, got), boundaries = player.configures[0], np.cumsum([0] + player.frames)
    assert answer["sample_index"] == index and answer["tx_info"]["sample_index"] == index
    assert index in boundaries  # on a frame boundary: no frame straddles the change
    assert got == {"tx_center_frequency": 434e6, "tx_gain": 5} and answer["confirmed"] is True
    view = tx_view(txlab, agent_id)["session"]
    assert view["configures"][-1]["sample_index"] == index and view["tx_info"]["tx_center_frequency"] == 434e6
    txlab.api.tx_stop(agent_id)


@pytest.mark.parametrize("case", ["disabled", "gain", "frequency", "active"])
def test_an_agent_refusal_leaves_no_session(txlab, make_peer, case):
    # The agent advertises no caps (an older or lying heartbeat), so only the agent's own check refuses.
    locks = Interlocks(case != "disabled", max_gain_db=10, allowed_freq_ranges=[[433.05e6, 434.79e6]])
    agent_id, player = make_peer(interlocks=locks, advertise=False)
    settings = {"gain": rc(tx_gain=20), "frequency": rc(tx_center_frequency=2.4e9)}.get(case, rc())
    if case == "active":
        player.session = "someone-else"  # the agent holds a session the hub does not know of
    expected = {"disabled": "TX is disabled", "gain": "tx_gain 20 dB is above this agent's cap of 10 dB",
                "frequency": "outside this agent's allowed ranges", "active": "TX is already active"}[case]
    with pytest.raises(HubError) as refused:
        txlab.api.tx_start(agent_id, settings, tone(), app_id=f"refused-{case}")
    assert refused.value.status == 502 and expected in str(refused.value)
    view = tx_view(txlab, agent_id)
    assert view["session"] is None and view["last"]["state"] == "error" and expected in view["last"]["message"]
    assert player.received == 0 and player.after_stop == 0  # no frame followed a refused start


@pytest.mark.parametrize("settings, source, key", [
    (rc(tx_gain=20), tone(), "tx_gain"),
    (rc(tx_center_frequency=2.4e9), tone(), "tx_center_frequency"),
    (rc(), tone(60), "tx_max_duration_s"),
])
def test_the_hub_refuses_what_the_advertised_caps_forbid(txlab, make_peer, settings, source, key):
    agent_id, player = make_peer()
    with pytest.raises(HubError) as refused:
        txlab.api.tx_start(agent_id, settings, source)
    assert refused.value.status == 409 and key in str(refused.value) and "advertised caps" in str(refused.value)
    assert player.agent.wait_message("tx_start", timeout=0.3) is None  # nothing reached the agent
    assert tx_view(txlab, agent_id)["session"] is None


def test_an_agent_that_does_not_offer_tx_is_refused_by_the_hub(txlab, make_peer):
    agent_id, player = make_peer(interlocks=Interlocks(False))
    with pytest.raises(HubError) as refused:
        txlab.api.tx_start(agent_id, rc(), tone())
    assert refused.value.status == 409 and "tx_enabled is false" in str(refused.value)
    assert player.agent.wait_message("tx_start", timeout=0.3) is None


def test_stop_answers_within_a_second_and_nothing_follows_it(txlab, make_peer):
    agent_id, player = make_peer(queue_samples=100000, play_rate=RATE)
    txlab.api.tx_start(agent_id, rc(), tone(20), app_id="stop-1")
    txlab.wait_agent(agent_id, lambda a: a["tx"]["session"]["state"] == "transmitting")
    began = time.monotonic()
    answer = txlab.api.tx_stop(agent_id)
    assert time.monotonic() - began < 1.0  # the protocol's deadline
    assert answer["state"] == "done" and answer["session"]["stop_reason"] == "stopped by the operator"
    heartbeat_count = len([m for m in player.agent.received if isinstance(m, dict)])
    player.heartbeat()  # in order after anything the hub might still send
    txlab.wait_agent(agent_id, lambda a: a["tx"]["session"] is None)
    assert player.after_stop == 0 and heartbeat_count >= 1
    assert tx_view(txlab, agent_id)["last"]["state"] == "done"
    # idle: the hub has no session and says so; the agent is told anyway
    assert txlab.api.tx_stop(agent_id)["message"].startswith("no TX session on the hub")


def test_a_start_the_agent_never_answers_times_out_as_an_error(txlab, make_peer):
    agent_id, player = make_peer(answer=False)
    with pytest.raises(HubError) as timed_out:
        txlab.api.tx_start(agent_id, rc(), tone(), app_id="silent-1")
    assert timed_out.value.status == 504 and "did not answer tx_start within 2 s" in str(timed_out.value)
    assert player.agent.wait_message("tx_stop") is not None  # so that a late armed ends at once
    view = tx_view(txlab, agent_id)
    assert view["session"] is None and view["last"]["state"] == "error"
    player.answer = True  # the next start is not refused by a session left behind
    assert txlab.api.tx_start(agent_id, rc(), tone(0.2), app_id="next")["state"] == "armed"


def test_a_stop_the_agent_never_confirms_ends_the_session_as_an_error(txlab, make_peer):
    agent_id, player = make_peer(stop_answer=False)
    txlab.api.tx_start(agent_id, rc(), tone(20), app_id="deaf-1")
    with pytest.raises(HubError) as timed_out:
        txlab.api.tx_stop(agent_id)
    assert timed_out.value.status == 504 and "did not confirm tx_stop" in str(timed_out.value)
    assert tx_view(txlab, agent_id)["session"] is None


def test_rx_and_tx_at_once(txlab, make_peer):
    agent_id, player = make_peer()
    txlab.api.tx_start(agent_id, rc(), tone(20), app_id="tx-both")

    def answer_start():
        msg = player.agent.wait_message("start")
        player.agent.send({"type": "status", "status": "streaming", "app_id": msg["app_id"]})
    threading.Thread(target=answer_start, daemon=True).start()
    assert txlab.api.start(agent_id, {"device": "mock", "center_frequency": 100e6})["status"] == "streaming"
    player.heartbeat(status="streaming", app_id="tx-both", sessions={"tx": {"app_id": "tx-both", "state":
                                                                              "transmitting"}})
    view = txlab.wait_agent(agent_id, lambda a: a["tx"]["agent_session"] is not None)
    assert view["status"] == "streaming" and view["tx"]["session"]["app_id"] == "tx-both"
    assert view["stream"]["app_id"] != "tx-both"
    txlab.api.tx_stop(agent_id)


def test_a_keyed_tone_is_on_off_keyed_at_the_symbol_rate(txlab, make_peer):
    agent_id, player = make_peer(queue_samples=50000, play_rate=1e7)
    txlab.api.tx_start(agent_id, rc(), {"kind": "tone", "offset_hz": 10e3, "amplitude": 0.8, "keying": "1011",
                                         "symbol_rate": 1000}, app_id="keyed-1")
    last = wait_ended(txlab, agent_id, "keyed-1")
    x = player.samples()
    per_symbol = int(RATE / 1000)
    assert last["sent_samples"] == len(x) == 4 * per_symbol
    levels = [float(np.mean(np.abs(x[i * per_symbol:(i + 1) * per_symbol]))) for i in range(4)]
    assert [round(v, 3) for v in levels] == [0.8, 0.0, 0.8, 0.8]
    on = x[:per_symbol]
    freq = np.angle(on[1:] * np.conj(on[:-1])) * RATE / (2 * math.pi)
    assert np.allclose(freq, 10e3, atol=1)


# ---------------------------------------------------------------- the RIA agent 0.1.7 (a peer we did not write)

RIA_AGENT = os.path.join(REPO, ".venv-ria-agent", "bin", "ria-agent")
needs_ria_agent = pytest.mark.skipif(not os.path.exists(RIA_AGENT),
                                     reason="scripts/test.sh installs ria-toolkit-oss 0.1.7")


@pytest.fixture
def ria_tx_agent(txlab, tmp_path):
    """A RIA agent registered with --allow-tx and caps (gain ≤ 10 dB, 433–435 MHz, 3 s), streaming: its id."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    _, key = txlab.create_key()
    register = Process([RIA_AGENT, "register", "--hub", txlab.url, "--api-key", key, "--name", "legacy-tx",
                        "--allow-tx", "--tx-max-gain-db", "10", "--tx-freq-range", "433e6", "435e6",
                        "--tx-max-duration-s", "3"], env=env)
    assert register.proc.wait(60) == 0, register.output
    agent_id = re.search(r"Registered agent: (agent-\w+)", register.output).group(1)
    txlab.processes.append(Process([RIA_AGENT, "stream"], env=env))
    txlab.wait_agent(agent_id, lambda a: a["online"], timeout=60)
    yield agent_id
    shutil.rmtree(home, ignore_errors=True)


@needs_ria_agent
def test_the_ria_agent_arms_transmits_and_stops_under_our_hub(txlab, ria_tx_agent):
    caps = tx_view(txlab, ria_tx_agent)["caps"]
    assert caps == {"tx_enabled": True, "tx_max_gain_db": 10.0, "tx_max_duration_s": 3.0,
                    "tx_allowed_freq_ranges": [[433e6, 435e6]], "error": None}
    answer = txlab.api.tx_start(ria_tx_agent, rc(), tone(2.5), app_id="ria-1")
    assert answer["state"] == "armed" and answer["session"]["flow"] == "paced"
    view = txlab.wait_agent(ria_tx_agent, lambda a: a["tx"]["session"]["state"] == "transmitting")
    assert view["status"] == "idle" and view["stream"] is None  # its heartbeat's "streaming" is the TX session
    began = time.monotonic()
    stopped = txlab.api.tx_stop(ria_tx_agent)
    assert time.monotonic() - began < 1.0 and stopped["state"] == "done"
    assert stopped["session"]["stop_reason"] == "stopped by the operator"


@needs_ria_agent
def test_the_ria_agent_is_done_at_the_end_of_the_source(txlab, ria_tx_agent):
    result = txlab.hub_cli("tx", ria_tx_agent, "--freq", "433.92e6", "--rate", "200e3", "--gain", "0",
                           "--tone", "10e3", "--duration", "0.5", "--policy", "zero", "--device", "mock",
                           "--app-id", "ria-end")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TX ria-end armed on" in result.stdout and "paced at the sample rate" in result.stdout
    assert "TX ria-end done: the source ended — 100000 samples sent (0.50 s)" in result.stdout
    # with the default policy (pause) 0.1.7 runs dry 0.1 s after the last frame and answers underrun
    result = txlab.hub_cli("tx", ria_tx_agent, "--freq", "433.92e6", "--rate", "200e3", "--gain", "0",
                           "--tone", "10e3", "--duration", "0.5", "--device", "mock", "--app-id", "ria-pause")
    assert result.returncode == 0 and re.search(r"TX ria-pause (underrun|done)", result.stdout), result.stdout


@needs_ria_agent
def test_the_ria_agent_max_duration_ends_the_session_and_the_next_start_works(txlab, ria_tx_agent):
    # An upload of unknown length (no "samples"), so that only the agent's 3 s cap can end it; the hub arms the
    # agent once the upload's first frame is in (0.1.7 runs dry 0.1 s after armed without one).
    answer = txlab.api.tx_start(ria_tx_agent, rc(), {"kind": "upload", "datatype": "cf32_le"}, app_id="ria-long")
    assert answer["state"] == "waiting" and answer["upload"].endswith("?app_id=ria-long")
    chunks = (bytes(65536) for _ in range(1000))  # 8 M samples, far more than 3 s at 200 kS/s
    upload = threading.Thread(target=_quietly, args=(lambda: txlab.api.tx_upload(answer["upload"], chunks),),
                              daemon=True)
    upload.start()
    last = wait_ended(txlab, ria_tx_agent, "ria-long")
    assert last["state"] == "done" and last["message"] == "max duration reached"
    assert txlab.api.tx_start(ria_tx_agent, rc(), tone(0.3), app_id="ria-after")["state"] == "armed"
    upload.join(30)


@needs_ria_agent
def test_our_hub_refuses_what_the_ria_agent_advertises_it_forbids(txlab, ria_tx_agent):
    for settings, source, key in ((rc(tx_gain=11), tone(), "tx_gain"), (rc(tx_center_frequency=915e6), tone(),
                                  "tx_center_frequency"), (rc(), tone(5), "tx_max_duration_s")):
        with pytest.raises(HubError) as refused:
            txlab.api.tx_start(ria_tx_agent, settings, source)
        assert refused.value.status == 409 and key in str(refused.value)
    result = txlab.hub_cli("tx", ria_tx_agent, "--freq", "915e6", "--rate", "200e3", "--gain", "0", "--tone", "0",
                           "--duration", "1")
    assert result.returncode == 1 and "TX refused: refused by the hub from the agent's advertised caps" in \
        result.stderr and "outside this agent's allowed ranges" in result.stderr


def _quietly(call):
    try:
        call()
    except HubError:
        pass  # the hub answers when the session ends, while the body is still going up


# ---------------------------------------------------------------- the CLI, files and uploads

def write_sigmf(folder, name, samples, datatype="cf32_le", rate=RATE):
    data = os.path.join(str(folder), f"{name}.sigmf-data")
    samples.astype("<c8").tofile(data)
    with open(data.replace("-data", "-meta"), "w") as f:
        json.dump({"global": {"core:datatype": datatype, "core:sample_rate": rate, "core:version": "1.0.0"},
                   "captures": [{"core:sample_start": 0}], "annotations": []}, f)
    return data


def test_the_cli_streams_a_local_recording_through_the_hub_unchanged(txlab, make_peer, tmp_path):
    agent_id, player = make_peer(queue_samples=30000, play_rate=4 * RATE)
    rng = np.random.default_rng(1)
    iq = (rng.standard_normal(150_001) + 1j * rng.standard_normal(150_001)).astype(np.complex64) * 0.1
    path = write_sigmf(tmp_path, "capture", iq)
    result = txlab.hub_cli("tx", agent_id, "--freq", "433.92e6", "--gain", "0", "--file", path, "--app-id", "up-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uploading capture.sigmf-data (1200008 bytes) through the hub" in result.stdout
    assert "TX up-1 armed on" in result.stdout and "credit flow control, the agent holds 30000 samples" in \
        result.stdout
    assert re.search(r"TX up-1 (done|underrun).* 150001 samples sent", result.stdout), result.stdout
    assert np.array_equal(player.samples(), iq)  # every sample, in order, bit for bit
    assert player.max_unplayed <= 30000


@pytest.mark.parametrize("datatype, rate, flags, message", [
    ("ci16_le", RATE, [], "core:datatype is 'ci16_le'; TX sends cf32_le only"),
    ("cf32_le", RATE, ["--rate", "1e6"], "--rate 1e+06 differs from the recording's 200000 S/s"),
])
def test_the_cli_refuses_a_recording_it_cannot_send_as_it_is(txlab, make_peer, tmp_path, datatype, rate, flags,
                                                            message):
    agent_id, player = make_peer()
    path = write_sigmf(tmp_path, "odd", np.zeros(1000, np.complex64), datatype, rate)
    result = txlab.hub_cli("tx", agent_id, "--freq", "433.92e6", "--gain", "0", "--file", path, *flags)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert player.agent.wait_message("tx_start", timeout=0.2) is None


def test_a_recording_on_the_hub_is_transmitted_by_name(txlab, make_peer):
    agent_id, player = make_peer(play_rate=1e7)
    folder = os.path.join(txlab.data_dir, "recordings")
    os.makedirs(folder, exist_ok=True)
    iq = np.exp(2j * np.pi * 0.05 * np.arange(9000)).astype(np.complex64)
    write_sigmf(folder, "replay", iq)
    result = txlab.hub_cli("tx", agent_id, "--freq", "433.92e6", "--rate", "200e3", "--gain", "0",
                           "--recording", "replay.sigmf-data", "--app-id", "replay-1")
    assert result.returncode == 0 and "TX replay-1" in result.stdout, result.stdout + result.stderr
    assert np.array_equal(player.samples(), iq)
    for name in ("../hub.sqlite", "missing.sigmf-data"):
        with pytest.raises(HubError) as refused:
            txlab.api.tx_start(agent_id, rc(), {"kind": "recording", "name": name})
        assert refused.value.status == 400 and "source.name" in str(refused.value)


def test_an_upload_that_never_comes_ends_the_session_without_arming_the_agent(txlab, make_peer, monkeypatch):
    agent_id, player = make_peer()
    answer = txlab.api.tx_start(agent_id, rc(), {"kind": "upload", "datatype": "cf32_le"}, app_id="no-data")
    assert answer["state"] == "waiting"
    with pytest.raises(HubError) as busy:
        txlab.api.tx_start(agent_id, rc(), tone())
    assert busy.value.status == 409 and "no-data (waiting)" in str(busy.value)
    stopped = txlab.api.tx_stop(agent_id)
    assert stopped["state"] == "done" and "before anything was sent to the agent" in stopped["message"]
    assert player.agent.wait_message("tx_start", timeout=0.2) is None
    with pytest.raises(HubError) as empty:
        answer = txlab.api.tx_start(agent_id, rc(), {"kind": "upload", "datatype": "cf32_le"}, app_id="empty")
        txlab.api.tx_upload(answer["upload"], iter([b"1234567"]))  # not even one whole sample
    assert empty.value.status == 400 and "empty" in str(empty.value)


def test_cli_stop_configure_and_listing_read_as_sentences(txlab, make_peer):
    agent_id, player = make_peer(queue_samples=40000, play_rate=RATE)
    result = txlab.hub_cli("tx", agent_id, "--freq", "433.92e6", "--rate", "200e3", "--gain", "0", "--tone", "5e3",
                           "--duration", "20", "--no-wait", "--app-id", "cli-1")
    assert result.returncode == 0 and result.stdout.startswith("TX cli-1 armed on"), result.stdout
    assert "433.92 MHz, 200 kS/s, gain 0 dB" in result.stdout
    listing = txlab.hub_cli("agents")
    assert re.search(rf"{agent_id}\s+tx-peer\s+idle\s+(armed|transmitting)", listing.stdout), listing.stdout
    result = txlab.hub_cli("tx-configure", agent_id, "--freq", "434e6")
    assert result.returncode == 0 and re.search(r"TX cli-1: from sample \d+ the radio is at 434 MHz",
                                                result.stdout), result.stdout
    result = txlab.hub_cli("tx-configure", agent_id, "--gain", "30")
    assert result.returncode == 1 and "tx_gain 30 dB is above this agent's cap of 10 dB" in result.stderr
    result = txlab.hub_cli("tx-stop", agent_id)
    assert result.returncode == 0 and result.stdout.startswith("TX cli-1 done: stopped by the operator")
    result = txlab.hub_cli("tx", agent_id, "--freq", "2.4e9", "--rate", "200e3", "--gain", "0", "--tone", "0",
                           "--duration", "1")
    assert result.returncode == 1 and "TX refused:" in result.stderr and "tx_center_frequency" in result.stderr


# ---------------------------------------------------------------- hostile input

def post_raw(lab, path, data):
    request = urllib.request.Request(lab.url + path, data=data, method="POST",
                                     headers={"Authorization": f"Bearer {lab.api._token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if e.code != 413 else raw  # aiohttp's own 413 is text


@pytest.mark.parametrize("body, field", [
    ({"radio_config": rc(tx_gain=float("nan")), "source": tone()}, "tx_gain"),
    ({"radio_config": rc(tx_sample_rate="fast"), "source": tone()}, "tx_sample_rate"),
    ({"radio_config": rc(tx_sample_rate=-1), "source": tone()}, "tx_sample_rate"),
    ({"radio_config": rc(tx_center_frequency=True), "source": tone()}, "tx_center_frequency"),
    ({"radio_config": {**rc(), "tx_power": 3}, "source": tone()}, "tx_power"),
    ({"radio_config": rc(underrun_policy="loop"), "source": tone()}, "underrun_policy"),
    ({"radio_config": rc(buffer_size=10 ** 9), "source": tone()}, "buffer_size"),
    ({"radio_config": rc(buffer_size=2), "source": tone()}, "buffer_size"),
    ({"radio_config": rc(device="\x1b[31m"), "source": tone()}, "device"),
    ({"radio_config": [1, 2], "source": tone()}, "radio_config"),
    ({"radio_config": {k: v for k, v in rc().items() if k != "tx_gain"}, "source": tone()}, "tx_gain is required"),
    ({"radio_config": rc(), "source": tone(), "priority": 1}, "priority"),
    ({"radio_config": rc(), "source": tone(), "app_id": "x" * 500}, "app_id"),
    ({"radio_config": rc()}, "source"),
    ({"radio_config": rc(), "source": {"kind": "noise"}}, "source.kind"),
    ({"radio_config": rc(), "source": tone(float("inf"))}, "source.duration_s"),
    ({"radio_config": rc(), "source": tone(1e9)}, "source.duration_s"),
    ({"radio_config": rc(), "source": tone(amplitude=3)}, "source.amplitude"),
    ({"radio_config": rc(), "source": tone(offset_hz=1e6)}, "source.offset_hz"),
    ({"radio_config": rc(), "source": tone(offset_hz="10k")}, "source.offset_hz"),
    ({"radio_config": rc(), "source": tone(gain=3)}, "gain"),
    ({"radio_config": rc(), "source": {"kind": "tone", "keying": "10x1", "symbol_rate": 10}}, "source.keying"),
    ({"radio_config": rc(), "source": {"kind": "tone", "keying": "1" * 5000, "symbol_rate": 10}}, "source.keying"),
    ({"radio_config": rc(), "source": {"kind": "tone", "keying": "101"}}, "source.symbol_rate"),
    ({"radio_config": rc(), "source": {"kind": "tone", "keying": "101", "symbol_rate": 1e9}}, "source.symbol_rate"),
    ({"radio_config": rc(), "source": {"kind": "upload", "datatype": "ci16_le"}}, "source.datatype"),
    ({"radio_config": rc(), "source": {"kind": "upload", "datatype": "cf32_le", "sample_rate": 1e6}},
     "tx_sample_rate"),
    ({"radio_config": rc(), "source": {"kind": "upload", "datatype": "cf32_le", "samples": -4}}, "source.samples"),
])
def test_hostile_start_bodies_get_400_naming_the_field(txlab, make_peer, body, field):
    agent_id, player = make_peer()
    status, answer = post_raw(txlab, f"/api/agents/{agent_id}/tx", json.dumps(body).encode())
    assert status == 400 and field in answer["error"], answer
    assert player.agent.wait_message("tx_start", timeout=0.05) is None


def test_hostile_raw_bodies_get_400_and_huge_ones_413(txlab, make_peer):
    agent_id, _ = make_peer()
    for path in ("tx", "tx/configure", "tx/stop"):
        for data in (b"[" * 100000, b"{\"radio_config\": NaN", "\"\\ud800\"".encode(), b"\xff\xfe"):
            status, answer = post_raw(txlab, f"/api/agents/{agent_id}/{path}", data)
            assert status == 400, (path, data[:10], answer)
    status, _ = post_raw(txlab, f"/api/agents/{agent_id}/tx", b" " * (2 << 20))
    assert status == 413
    txlab.api.tx_start(agent_id, rc(), tone(20))
    for rc_bad, field in (({"tx_gain": "loud"}, "tx_gain"), ({"device": "mock"}, "device"), ({}, "radio_config"),
                          ({"tx_center_frequency": float("nan")}, "tx_center_frequency")):
        status, answer = post_raw(txlab, f"/api/agents/{agent_id}/tx/configure",
                                  json.dumps({"radio_config": rc_bad}).encode())
        assert status == 400 and field in answer["error"], answer
    txlab.api.tx_stop(agent_id)


def test_hostile_tx_messages_from_an_agent_are_refused_and_bounded(txlab, make_peer):
    agent_id, player = make_peer(queue_samples=20000, play_rate=RATE / 10)
    txlab.api.tx_start(agent_id, rc(), tone(20), app_id="h-1")
    txlab.wait_agent(agent_id, lambda a: a["tx"]["session"]["sent_samples"] >= 20000)
    agent = player.agent
    rss_before = txlab.hub.rss_mib()
    bad = [{"type": "tx_progress", "app_id": "h-1", "received": "lots", "played": 1, "queued": 0},
           {"type": "tx_progress", "app_id": "h-1", "received": -1, "played": 1, "queued": 0},
           {"type": "tx_status", "app_id": "h-1", "state": "exploded"},
           {"type": "tx_status", "app_id": {"a": 1}, "state": "done"},
           {"type": "tx_info", "app_id": "h-1", "sample_index": 1.5}]
    for msg in bad:
        agent.send(msg)
    agent.send('{"type":"tx_info","app_id":"h-1","sample_index":3,"tx_gain":NaN}')
    # Absurd but well-formed: the hub believes no more than it sent, and never lets the agent grow its credit.
    for i in range(5000):
        agent.send({"type": "tx_progress", "app_id": "h-1", "received": 10 ** 18, "played": 10 ** 18 + i,
                    "queued": 2 ** 62})
        agent.send({"type": "tx_info", "app_id": "h-1", "sample_index": i, "tx_sample_rate": 1e300,
                    "tx_center_frequency": 1, "tx_gain": -1e300})
    player.heartbeat()
    view = txlab.wait_agent(agent_id, lambda a: len(a["tx"]["session"]["tx_infos"]) == 20 and
                            a["tx"]["session"]["tx_infos"][-1]["sample_index"] == 4999)
    s = view["tx"]["session"]
    assert s["state"] in ("armed", "transmitting") and s["played"] <= s["sent_samples"]
    assert s["queued"] <= s["sent_samples"]
    assert txlab.hub.rss_mib() - rss_before < 64
    metrics = urllib.request.urlopen(txlab.url + "/metrics", timeout=10).read().decode()
    assert re.search(r"ria_hub_agent_messages_refused_total 6\b", metrics), metrics
    status, raw = 200, urllib.request.urlopen(urllib.request.Request(
        f"{txlab.url}/api/agents/{agent_id}", headers={"Authorization": f"Bearer {txlab.api._token}"})).read()
    json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} in the API"))
    txlab.api.tx_stop(agent_id)


def test_hostile_caps_in_a_heartbeat_make_the_hub_refuse_tx(txlab, make_peer):
    agent_id, player = make_peer()
    for caps, field in (({"tx_max_gain_db": float("nan")}, "tx_max_gain_db"),
                        ({"tx_allowed_freq_ranges": [[1, 2]] * 100}, "tx_allowed_freq_ranges"),
                        ({"tx_allowed_freq_ranges": "433e6:434e6"}, "tx_allowed_freq_ranges"),
                        ({"tx_max_duration_s": "forever"}, "tx_max_duration_s"),
                        ({"tx_enabled": "yes"}, "tx_enabled")):
        player.heartbeat(**caps)
        view = txlab.wait_agent(agent_id, lambda a: field in (a["tx"]["caps"]["error"] or ""))
        assert view["tx"]["caps"]["tx_enabled"] is False
        with pytest.raises(HubError) as refused:
            txlab.api.tx_start(agent_id, rc(), tone())
        assert refused.value.status == 409 and "cannot be read" in str(refused.value) and field in \
            str(refused.value)
    player.heartbeat()
    txlab.wait_agent(agent_id, lambda a: a["tx"]["caps"]["error"] is None)


def test_a_hub_that_shuts_down_tells_its_transmitting_agents_to_stop(txlab, make_peer):
    agent_id, player = make_peer(policy_underrun=False)
    txlab.api.tx_start(agent_id, rc(underrun_policy="zero"), tone(30), app_id="orphan-1")
    txlab.wait_agent(agent_id, lambda a: a["tx"]["session"]["state"] == "transmitting")
    assert txlab.stop_hub() == 0
    assert player.agent.wait_message("tx_stop")["app_id"] == "orphan-1"
