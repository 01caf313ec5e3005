"""The whole agent (ria.iq_agent: source, handler, sink) driven by a real hub endpoint."""

import numpy as np
import pytest

from gnuradio.ria import riasim_control
from helpers import AGENT_TONE as TONE, instantaneous_hz, running_agent, stream_record
from hub_server import HubServer

WAIT = 10.0


@pytest.fixture
def agent(hub, serial, flowgraphs):
    return running_agent(hub, serial, flowgraphs)


def start(hub, serial, app_id="app-1", **radio_config):
    rc = {"device": f"driver=riasim,serial={serial},{TONE}", "sample_rate": 1e6, "center_frequency": 100e6,
          "gain": 20, **radio_config}
    hub.send({"type": "start", "app_id": app_id, "radio_config": rc})


def frames_after(hub, n_before):
    return hub.binary()[n_before:]


def test_start_streams_real_iq_then_stop_goes_idle(hub, agent, serial):
    start(hub, serial, sample_format="cf32")
    assert hub.wait_text("status")["status"] == "streaming"
    info = hub.wait_text("stream_info")
    assert info["center_frequency"] == 100e6 and info["sample_rate"] == 1e6 and info["gain"] == 20
    assert hub.wait_for(lambda s: len(s.binary()) >= 20, WAIT)
    iq = np.frombuffer(b"".join(hub.binary()[:16]), np.complex64)
    spectrum = np.abs(np.fft.fft(iq))
    peak_hz = np.fft.fftfreq(len(iq), 1e-6)[np.argmax(spectrum)]
    assert abs(peak_hz - 200e3) < 50  # the riasim emitter at 100.2 MHz
    hub.send({"type": "stop", "app_id": "app-1"})
    assert hub.wait_text("status", count=2) == {"type": "status", "status": "idle", "app_id": "app-1"}
    assert agent.source.state() == "closed"
    heartbeat_streaming = [h for h in hub.texts("heartbeat") if h["status"] == "streaming"]
    assert all(h["app_id"] == "app-1" for h in heartbeat_streaming)


def test_configure_mid_stream_cuts_the_frame_at_the_retune(hub, agent, serial):
    start(hub, serial)
    assert hub.wait_for(lambda s: len(s.binary()) >= 5, WAIT)
    hub.send({"type": "configure", "app_id": "app-1", "radio_config": {"center_frequency": 100.1e6}})
    assert hub.wait_text("stream_info", count=2)
    infos = hub.texts("stream_info")
    assert infos[1]["center_frequency"] == 100.1e6
    new_info = infos[1]
    assert hub.wait_for(lambda s: sum(len(b) for b in s.binary()) // 8 >= new_info["sample_index"] + 4096, WAIT)
    # the change sits exactly at the announced sample: 200 kHz before it, 100 kHz from it on
    iq = np.frombuffer(b"".join(hub.binary()), np.complex64)
    k = new_info["sample_index"]
    f = instantaneous_hz(iq, 1e6)
    assert np.allclose(f[k - 500:k - 1], 200e3, atol=100)
    assert np.allclose(f[k:k + 500], 100e3, atol=100)
    # after the retune the emitter sits at +100 kHz
    later = iq[k:k + 4096]
    peak_hz = np.fft.fftfreq(len(later), 1e-6)[np.argmax(np.abs(np.fft.fft(later)))]
    assert abs(peak_hz - 100e3) < 300


@pytest.mark.parametrize("rc,says", [
    ({"center_frequency": 7e9}, "center_frequency 7e+09 Hz is outside the device range 1e+06 to 6e+09 Hz"),
    ({"gain": 99}, "gain 99 dB is outside the device range 0 to 70 dB"),
    ({"gain": "loud"}, "gain must be a finite number, got 'loud'"),
    ({"warp": 9}, "unknown radio_config key 'warp'"),
    ({"sample_format": "cu4"}, "sample_format must be one of cf32, cs16, cs8"),
])
def test_bad_configure_gets_an_error_and_the_stream_goes_on(hub, agent, serial, rc, says):
    start(hub, serial)
    assert hub.wait_text("status")
    assert hub.wait_for(lambda s: len(s.binary()) >= 3, WAIT)
    hub.send({"type": "configure", "app_id": "app-1", "radio_config": rc})
    err = hub.wait_text("error")
    assert says in err["message"] and err["app_id"] == "app-1"
    n = len(hub.binary())
    assert hub.wait_for(lambda s: len(s.binary()) >= n + 10, WAIT)
    assert len(hub.texts("stream_info")) == 1


def test_a_start_the_radio_refuses_is_refused_and_the_radio_closed_again(hub, agent, serial):
    """The range is known once the radio is open: it refuses the start then, closes again, and says why. Nothing
    streams, so no stream_info can carry the value the radio did not take."""
    start(hub, serial, app_id="far", center_frequency=1e12)
    assert hub.wait_text("error") == {"type": "error", "app_id": "far", "message":
                                      "center_frequency: 1e+12 Hz is outside the device range 1e+06 to 6e+09 Hz"}
    assert agent.source.state() == "closed"  # (closed before the error went out)
    start(hub, serial, app_id="near")
    assert hub.wait_text("status") == {"type": "status", "status": "streaming", "app_id": "near"}
    assert hub.wait_text("stream_info")
    assert [(i["app_id"], i["center_frequency"]) for i in hub.texts("stream_info")] == [("near", 100e6)]
    assert len(hub.texts("error")) == 1


def test_a_refusal_is_told_apart_from_the_start_after_it(hub, agent, serial):
    """Two starts back to back, the radio refusing the first: its refusal arrives while the second is opening and
    must not end that one (the source's events carry the seq of the open they are about)."""
    start(hub, serial, app_id="far", center_frequency=1e12)
    start(hub, serial, app_id="near")
    assert hub.wait_text("status") == {"type": "status", "status": "streaming", "app_id": "near"}
    assert hub.wait_text("stream_info")["app_id"] == "near"
    assert [e["app_id"] for e in hub.texts("error")] == ["far"]


def test_a_start_with_any_bad_key_is_refused_as_a_whole(hub, agent, serial):
    """An error per bad key, and nothing opens: not the default device in place of a misspelt one, not the radio
    with the good keys only."""
    riasim_control.unplug(serial)  # the agent's default device: opening it would be reported
    start(hub, serial, app_id="bad", device="rtl-sdr-typo", gain="loud", warp=9)
    start(hub, serial + "b", app_id="good")
    assert hub.wait_text("status") == {"type": "status", "status": "streaming", "app_id": "good"}
    errors = hub.texts("error")
    assert [e["app_id"] for e in errors] == ["bad"] * 3, errors
    messages = " | ".join(e["message"] for e in errors)
    for says in ("device 'rtl-sdr-typo' is not one of", "gain must be a finite number, got 'loud'",
                 "unknown radio_config key 'warp'"):
        assert says in messages
    assert hub.wait_text("stream_info")["app_id"] == "good"


@pytest.mark.parametrize("rc,says", [
    ({"gain": 99}, "gain 99 dB is outside the device range 0 to 70 dB"),  # the open radio's range is known
    ({"gain": "loud"}, "gain must be a finite number, got 'loud'"),
    ({"device": "rtl-sdr-typo"}, "device 'rtl-sdr-typo' is not one of"),
])
def test_a_refused_start_leaves_the_running_session_untouched(hub, agent, serial, rc, says):
    start(hub, serial, app_id="one")
    assert hub.wait_text("status")["status"] == "streaming"
    assert hub.wait_for(lambda s: len(s.binary()) >= 3, WAIT)
    start(hub, serial, app_id="two", **rc)
    hub.send({"type": "configure", "app_id": "one", "radio_config": {"center_frequency": 100.1e6}})
    assert hub.wait_text("stream_info", count=2)  # the configure went after the refused start, to the same session
    assert [(i["app_id"], i["center_frequency"]) for i in hub.texts("stream_info")] == [("one", 100e6),
                                                                                         ("one", 100.1e6)]
    assert [(e["app_id"], says in e["message"]) for e in hub.texts("error")] == [("two", True)]
    assert hub.texts("status") == [{"type": "status", "status": "streaming", "app_id": "one"}]
    assert agent.sink.app_id() == "one" and agent.source.state() == "streaming"


def test_a_gain_change_is_announced_at_the_first_sample_at_the_new_gain(serial, flowgraphs):
    """riasim applies a gain change from the first sample it reads after the change; the stream_info of the new
    gain sits exactly there, and every frame is whole except the one that ends at the change. The radio runs
    unpaced into a lossless sink with a short queue behind a hub that reads slowly, so the sink mostly waits, far
    behind the radio: the change must be placed where it happened, not where the sink was when it heard of it."""
    hub = HubServer(read_delay=0.005).start()
    try:
        running_agent(hub, serial, flowgraphs, overflow="block", queue_seconds=0.01)
        start(hub, serial, gain=10, device=f"driver=riasim,serial={serial},{TONE},pace=false")  # amplitude 0.1
        assert hub.wait_for(lambda s: len(s.binary()) >= 3, WAIT)
        hub.send({"type": "configure", "app_id": "app-1", "radio_config": {"gain": 20}})  # amplitude 0.316
        info = hub.wait_text("stream_info", count=2)
        assert info["gain"] == 20 and info["center_frequency"] == 100e6
        k = info["sample_index"]
        assert hub.wait_for(lambda s: sum(len(b) for b in s.binary()) // 8 >= k + 3 * 4096, WAIT)
        infos, sizes, iq = stream_record(hub)
    finally:
        hub.stop()
    assert [i["gain"] for i in infos] == [10, 20]
    level = np.abs(iq)
    assert np.allclose(level[:k], 0.1, rtol=1e-3) and np.allclose(level[k:], 10 ** -0.5, rtol=1e-3)
    ends = np.cumsum(sizes)
    cut = int(np.searchsorted(ends, k))  # the frame that ends at the change
    assert ends[cut] == k
    assert all(n == 4096 for i, n in enumerate(sizes) if i != cut), sizes


def test_configure_before_start_is_remembered(hub, agent, serial):
    hub.send({"type": "configure", "app_id": "app-1", "radio_config": {"center_frequency": 100.15e6, "gain": 10}})
    rc = {"device": f"driver=riasim,serial={serial},{TONE}", "sample_rate": 1e6}
    hub.send({"type": "start", "app_id": "app-1", "radio_config": rc})
    info = hub.wait_text("stream_info")
    assert info["center_frequency"] == 100.15e6 and info["gain"] == 10


def test_tx_is_refused_when_the_operator_has_not_opted_in(hub, agent):
    hub.send({"type": "tx_start", "app_id": "t1", "radio_config": {}})
    assert hub.wait_text("tx_status") == {"type": "tx_status", "app_id": "t1", "state": "error",
                                          "message": "TX is disabled on this agent (its operator has not opted in)"}


def test_sdr_unplug_is_reported_and_streaming_resumes(hub, agent, serial):
    start(hub, serial)
    assert hub.wait_for(lambda s: len(s.binary()) >= 3, WAIT)
    riasim_control.unplug(serial, "nodev")
    err = hub.wait_text("error")
    assert err["message"].startswith("SDR disconnected: ") and "No such device" in err["message"]
    riasim_control.replug(serial)
    n = len(hub.binary())
    assert hub.wait_for(lambda s: len(s.binary()) >= n + 10, WAIT)


def test_device_names_map_to_soapysdr_args(hub, agent, serial):
    hub.send({"type": "start", "app_id": "a", "radio_config": {"device": "mock", "identifier": serial}})
    assert hub.wait_text("status")["status"] == "streaming"
    assert agent.source.state() == "streaming"


def test_unknown_device_name_is_an_error(hub, agent):
    start(hub, "x", device="toaster")
    assert "device 'toaster' is not one of" in hub.wait_text("error")["message"]


def test_an_empty_radio_config_is_an_empty_config(hub, agent, serial):
    """{} travels as PMT nil (PMT has no empty dict): start, configure and stop must still take it."""
    start(hub, serial)
    assert hub.wait_text("status")["status"] == "streaming"
    hub.send({"type": "configure", "app_id": "app-1", "radio_config": {}})
    hub.send({"type": "stop", "app_id": "app-1", "radio_config": {}})
    assert hub.wait_text("status", count=2) == {"type": "status", "status": "idle", "app_id": "app-1"}
    assert hub.texts("error") == []
