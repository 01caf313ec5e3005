"""The whole agent transmitting (ria.iq_agent with TX allowed: websocket_source -> sdr_sink on riasim) under a hub
that speaks only the messages of docs/protocol.md §6 (tests/hub_server.py): interlocks, the session's states,
exact configure, stop, max duration, underrun, a hub that ignores flow control, and RX hearing TX on one host."""

import json
import threading
import time

import numpy as np
import pytest
import SoapySDR

from helpers import running_agent, wait_until

WAIT = 10.0
RATE = 250e3


@pytest.fixture
def air(tmp_path, monkeypatch):
    """An air of this test's own between riasim radios."""
    monkeypatch.setenv("RIASIM_AIR", str(tmp_path / "air"))
    return tmp_path / "air"


def tx_agent(hub, serial, flowgraphs, **caps):
    hub.agent = running_agent(hub, serial, flowgraphs, allow_tx=True, **{f"tx_{k}": v for k, v in caps.items()})
    return hub.agent


def tx_device(serial, pace=True):
    return f"driver=riasim,serial={serial}" + ("" if pace else ",pace=false")


def start_tx(hub, serial, app_id="tx-1", pace=True, **rc):
    config = {"device": tx_device(serial, pace), "tx_sample_rate": RATE, "tx_center_frequency": 434e6,
              "tx_gain": 0, **rc}
    hub.send({"type": "tx_start", "app_id": app_id, "radio_config": config})


def tx_states(hub, app_id=None):
    return [m["state"] for m in hub.texts("tx_status") if app_id is None or m["app_id"] == app_id]


def wait_state(hub, state, app_id="tx-1", timeout=WAIT):
    assert hub.wait_for(lambda s: state in tx_states(s, app_id), timeout), (state, hub.texts("tx_status"))
    return [m for m in hub.texts("tx_status") if m["app_id"] == app_id and m["state"] == state][-1]


def tone(n, start=0, hz=10e3, amplitude=0.5):
    k = np.arange(start, start + n)
    return (amplitude * np.exp(2j * np.pi * hz * k / RATE)).astype(np.complex64)


def send_with_credit(hub, signal, armed, frame=4096, app_id="tx-1"):
    """Sends like a hub that listens to tx_progress: never more than queue_samples unplayed."""
    sent = 0
    while sent < len(signal):
        if {"done", "underrun", "error"} & set(tx_states(hub, app_id)):
            break  # the session is over: nothing more to send
        played = max([m["played"] for m in hub.texts("tx_progress") if m["app_id"] == app_id] or [0])
        if sent - played + frame > armed["queue_samples"]:
            hub.wait_for(lambda s: len(s.texts("tx_progress")) > 0 and max(
                m["played"] for m in s.texts("tx_progress")) > played, WAIT)
            continue
        hub.send_bytes(signal[sent:sent + frame].tobytes())
        sent += len(signal[sent:sent + frame])
    return sent


def tx_log(serial):
    return json.loads(SoapySDR.Device(f"driver=riasim,serial={serial}").readSetting("tx_log"))


# ---------------------------------------------------------------- interlocks

REFUSALS = [
    ({}, {"tx_gain": 20}, "tx_gain 20 dB is above this agent's cap of 10 dB"),
    ({}, {"tx_center_frequency": 868e6}, "tx_center_frequency 8.68e+08 Hz is outside this agent's allowed ranges"),
    ({}, {"tx_gain": "loud"}, "tx_gain must be a finite number, got 'loud'"),
    ({}, {"underrun_policy": "wait"}, "underrun_policy must be one of pause, zero, repeat"),
    ({"drop": "tx_sample_rate"}, {}, "tx_start: radio_config.tx_sample_rate is required"),
]


@pytest.mark.parametrize("how, rc, message", REFUSALS)
def test_each_interlock_refuses_the_start_with_its_message_and_nothing_opens(hub, serial, flowgraphs, air, how, rc,
                                                                            message):
    tx_agent(hub, serial, flowgraphs, max_gain_db=10, allowed_freq_ranges=[[433.05e6, 434.79e6]])
    # (the handler's caps may reach the sink just after the first heartbeat: a second one follows at once)
    assert hub.wait_for(lambda s: s.texts("heartbeat")[-1].get("tx_enabled"), WAIT)
    heartbeat = hub.texts("heartbeat")[-1]
    assert heartbeat["capabilities"] == ["rx", "tx"] and heartbeat["tx_enabled"] is True
    assert heartbeat["tx_max_gain_db"] == 10 and heartbeat["tx_allowed_freq_ranges"] == [[433.05e6, 434.79e6]]
    config = {"device": tx_device(serial), "tx_sample_rate": RATE, "tx_center_frequency": 434e6, "tx_gain": 0, **rc}
    config.pop(how.get("drop"), None)
    hub.send({"type": "tx_start", "app_id": "tx-1", "radio_config": config})
    refusal = wait_state(hub, "error")
    assert message in refusal["message"]
    agent = hub.agent
    hub.send_bytes(tone(1000).tobytes())  # frames after a refused start are not transmitted, but counted
    assert wait_until(lambda: agent.tx_stream.stats()["late_frames"] == 1, WAIT)
    assert tx_states(hub) == ["error"] and tx_log(serial) == []


def test_an_agent_whose_operator_has_not_opted_in_says_so(hub, serial, flowgraphs, air):
    running_agent(hub, serial, flowgraphs)
    heartbeat = hub.texts("heartbeat")[-1]
    assert heartbeat["capabilities"] == ["rx"] and heartbeat["tx_enabled"] is False
    start_tx(hub, serial)
    assert wait_state(hub, "error")["message"] == "TX is disabled on this agent (its operator has not opted in)"
    assert tx_log(serial) == []


# ---------------------------------------------------------------- a session

def test_a_session_is_armed_transmits_and_is_done_within_a_second_of_the_stop(hub, serial, flowgraphs, air):
    agent = tx_agent(hub, serial, flowgraphs)
    start_tx(hub, serial)
    armed = wait_state(hub, "armed")
    assert armed["queue_samples"] == int(0.5 * RATE)
    assert armed["tx_sample_rate"] == RATE and armed["tx_center_frequency"] == 434e6 and armed["tx_gain"] == 0
    heartbeat = hub.wait_for(lambda s: "tx" in s.texts("heartbeat")[-1].get("sessions", {}), WAIT)
    assert heartbeat
    signal = tone(int(2 * RATE))  # 2 s: still playing when the stop comes
    sender = threading.Thread(target=send_with_credit, args=(hub, signal, armed), daemon=True)
    sender.start()
    wait_state(hub, "transmitting")
    hub.wait_for(lambda s: any(m["played"] >= RATE // 2 for m in s.texts("tx_progress")), WAIT)
    stopped_at = time.monotonic()
    hub.send({"type": "tx_stop", "app_id": "tx-1"})
    done = wait_state(hub, "done")
    assert time.monotonic() - stopped_at < 1.0
    sender.join(WAIT)
    writes = tx_log(serial)
    aired = sum(w["count"] for w in writes if w["aired"])
    assert RATE // 2 <= aired <= done["samples_played"] + 1
    assert writes[-1]["flags"] & SoapySDR.SOAPY_SDR_END_BURST
    assert agent.tx_stream.state() == "idle"
    assert tx_states(hub) == ["armed", "transmitting", "done"]


def test_a_configure_lands_on_the_first_sample_sent_after_it(hub, serial, flowgraphs, air):
    tx_agent(hub, serial, flowgraphs)
    start_tx(hub, serial, underrun_policy="zero")
    armed = wait_state(hub, "armed")
    first = send_with_credit(hub, tone(30_000), armed)
    hub.send({"type": "tx_configure", "app_id": "tx-1", "radio_config": {"tx_center_frequency": 434.1e6}})
    send_with_credit(hub, tone(30_000, hz=-20e3), armed)
    info = hub.wait_text("tx_info")
    assert info["sample_index"] == first and info["tx_center_frequency"] == 434.1e6
    hub.send({"type": "tx_stop", "app_id": "tx-1"})
    wait_state(hub, "done")
    writes = [w for w in tx_log(serial) if w["aired"]]
    before = sum(w["count"] for w in writes if w["freq"] == 434e6)
    assert before == first  # the radio was retuned between sample first-1 and first
    assert all(w["freq"] == 434.1e6 for w in writes[next(i for i, w in enumerate(writes) if w["freq"] != 434e6):])


def test_a_configure_that_breaks_an_interlock_changes_nothing(hub, serial, flowgraphs, air):
    tx_agent(hub, serial, flowgraphs, max_gain_db=10)
    start_tx(hub, serial)
    wait_state(hub, "armed")
    hub.send({"type": "tx_configure", "app_id": "tx-1", "radio_config": {"tx_gain": 30, "tx_center_frequency": 434.2e6}})
    error = hub.wait_text("error")
    assert error["message"] == "tx_gain 30 dB is above this agent's cap of 10 dB" and error["app_id"] == "tx-1"
    hub.send_bytes(tone(10_000).tobytes())
    hub.send({"type": "tx_stop", "app_id": "tx-1"})
    wait_state(hub, "done")
    assert not hub.texts("tx_info")
    assert {w["freq"] for w in tx_log(serial)} <= {434e6}


def test_max_duration_ends_the_session_at_exactly_that_much_signal(hub, serial, flowgraphs, air):
    tx_agent(hub, serial, flowgraphs, max_duration_s=0.2)
    start_tx(hub, serial, pace=False)
    armed = wait_state(hub, "armed")
    threading.Thread(target=send_with_credit, args=(hub, tone(int(RATE)), armed), daemon=True).start()
    done = wait_state(hub, "done")
    assert done["message"] == "max duration reached"
    assert sum(w["count"] for w in tx_log(serial) if w["aired"]) == int(0.2 * RATE)


def test_an_underrun_with_policy_pause_ends_the_session(hub, serial, flowgraphs, air):
    tx_agent(hub, serial, flowgraphs)
    start_tx(hub, serial)
    wait_state(hub, "armed")
    hub.send_bytes(tone(5000).tobytes())
    underrun = wait_state(hub, "underrun")
    assert underrun["samples_played"] == 5000
    assert tx_states(hub) == ["armed", "transmitting", "underrun"]
    start_tx(hub, serial, app_id="tx-2")  # the agent is free again
    wait_state(hub, "armed", app_id="tx-2")


def test_a_second_start_while_transmitting_is_refused_and_the_first_goes_on(hub, serial, flowgraphs, air):
    tx_agent(hub, serial, flowgraphs)
    start_tx(hub, serial, underrun_policy="zero")
    wait_state(hub, "armed")
    start_tx(hub, serial, app_id="tx-2")
    assert wait_state(hub, "error", app_id="tx-2")["message"] == "TX is already active (app_id 'tx-1')"
    hub.send({"type": "tx_stop", "app_id": "tx-1"})
    wait_state(hub, "done")


def test_a_hub_that_ignores_flow_control_is_held_back_and_every_sample_goes_out(hub, serial, flowgraphs, air):
    agent = tx_agent(hub, serial, flowgraphs)
    start_tx(hub, serial)
    wait_state(hub, "armed")  # (a RIA hub sends at once; frames before armed are held the same way)
    signal = tone(int(3 * RATE))  # 6 MB, far more than the socket buffers
    most_queued = 0
    sender = threading.Thread(target=lambda: [hub.send_bytes(signal[k:k + 8192].tobytes(), timeout=30)
                                              for k in range(0, len(signal), 8192)], daemon=True)
    sender.start()
    while sender.is_alive():
        most_queued = max(most_queued, agent.tx_stream.stats()["queued"])
        sender.join(0.01)
    assert most_queued <= int(0.5 * RATE) + 8192
    underrun = wait_state(hub, "underrun", timeout=30)  # the hub stopped sending: policy pause ends it
    assert underrun["samples_played"] == len(signal)
    # every sample went out; the burst may end on the source's zero tagged tx_eob, if it reached the radio
    # before the handler closed it
    aired = [w for w in tx_log(serial) if w["aired"]]
    extra = sum(w["count"] for w in aired) - len(signal)
    assert extra == 0 or (extra == 1 and aired[-1]["flags"] & SoapySDR.SOAPY_SDR_END_BURST), (extra, aired[-3:])


# ---------------------------------------------------------------- RX and TX at once

def test_the_agents_receiver_hears_its_own_transmitter(hub, serial, flowgraphs, air):
    tx_agent(hub, serial, flowgraphs)
    rx_serial = serial + "rx"
    hub.send({"type": "start", "app_id": "rx-1", "radio_config": {  # 434.375-434.625 MHz: no static emitter
        "device": f"driver=riasim,serial={rx_serial}", "sample_rate": 250e3, "center_frequency": 434.5e6,
        "gain": 20, "buffer_size": 8192}})
    assert hub.wait_text("status")["status"] == "streaming"
    start_tx(hub, serial, underrun_policy="repeat", tx_center_frequency=434.55e6, tx_gain=30)
    armed = wait_state(hub, "armed")
    send_with_credit(hub, tone(int(RATE), hz=0, amplitude=1.0), armed)  # a carrier at 434.55 MHz
    wait_state(hub, "transmitting")
    n_before = len(hub.binary())
    assert hub.wait_for(lambda s: len(s.binary()) >= n_before + 30, WAIT)
    iq = np.frombuffer(b"".join(hub.binary()[n_before + 10:n_before + 30]), np.complex64)
    spectrum = np.abs(np.fft.fft(iq)) ** 2
    peak_hz = np.fft.fftfreq(len(iq), 1 / 250e3)[np.argmax(spectrum)]
    assert abs(peak_hz - 50e3) < 50
    hub.send({"type": "tx_stop", "app_id": "tx-1"})
    wait_state(hub, "done")
    hub.send({"type": "stop", "app_id": "rx-1"})
