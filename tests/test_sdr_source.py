"""ria.sdr_source in real flowgraphs on riasim: tuning, tags, commands and unplugging."""

import threading

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr, ria

from gnuradio.ria import riasim_control
from helpers import instantaneous_hz, is_event, peak_offset_hz, stream_recorder, wait_until

RATE = 1e6
# One clean, strong tone 200 kHz above 100 MHz: -30 dBm + 20 dB = -10 dBFS over -120 dBFS noise.
CLEAN_TONE = "emitters=100.2e6:-30,noise=-140"
WAIT = 10.0  # seconds; a generous bound for events that normally take milliseconds


def make_source(device_args, on_disconnect="reconnect", freq=100e6, gain=20.0,
                reopen_interval=0.1, disconnect_timeout=0.5):
    return ria.sdr_source(device_args, 0, RATE, freq, gain, False, 0.0, "", on_disconnect,
                          reopen_interval, disconnect_timeout)


def receiver(src):
    tb = gr.top_block()
    rec = stream_recorder()
    status = ria.message_collector()
    tb.connect(src, rec)
    tb.msg_connect(src, "status", status, "in")
    # GNU Radio does not own Python blocks: keep them alive as long as the flowgraph runs.
    tb.python_blocks = (rec, status)
    return tb, rec, status


def started_receiver(flowgraphs, device_args, **source_kwargs):
    """A running source -> recorder flowgraph, stopped by the fixture at the end of the test."""
    src = make_source(device_args, **source_kwargs)
    tb, rec, status = receiver(src)
    flowgraphs(tb)
    return tb, src, rec, status


def post(src, **cmd):
    src._post(pmt.intern("cmd"), pmt.to_pmt(cmd))


def test_streams_the_tone_with_tags_on_the_first_sample(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}")
    assert rec.wait_count(1 << 16, WAIT)
    assert abs(peak_offset_hz(rec.samples()[: 1 << 16], RATE) - 200e3) < 2 * RATE / (1 << 16)
    assert rec.tags_named("rx_freq")[0] == (0, 100e6)
    assert rec.tags_named("rx_rate")[0] == (0, RATE)
    offset, (secs, frac) = rec.tags_named("rx_time")[0]
    assert offset == 0 and secs >= 0 and 0 <= frac < 1
    opened = status.events("opened")[0]
    assert list(opened["freq_range"]) == [1e6, 6e9] and list(opened["gain_range"]) == [0, 70]
    assert tuple(opened["antennas"]) == ("RX", "CAL")
    assert status.wait_for(is_event("streaming"), WAIT)
    assert src.state() == "streaming"


def test_retune_tag_sits_on_the_first_sample_at_the_new_frequency(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}")
    assert rec.wait_count(50000, WAIT)
    post(src, freq=100.05e6)  # the tone moves from +200 kHz to +150 kHz
    assert status.wait_for(is_event("settings"), WAIT)["freq"] == 100.05e6
    done = rec.count
    assert rec.wait_count(done + 50000, WAIT)
    tb.stop()
    tb.wait()

    retunes = [(o, v) for o, v in rec.tags_named("rx_freq") if o > 0]
    assert len(retunes) == 1 and retunes[0][1] == 100.05e6
    k = retunes[0][0]
    f = instantaneous_hz(rec.samples(), RATE)  # f[i]: from sample i to i+1
    assert np.allclose(f[k - 1000:k], 200e3, atol=50)
    assert np.allclose(f[k:k + 1000], 150e3, atol=50)
    assert [o for o, _ in rec.tags_named("rx_time")][-1] == k


def test_rate_and_gain_commands(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}")
    assert rec.wait_count(10000, WAIT)
    post(src, rate=2e6, gain=10.0)
    settings = status.wait_for(is_event("settings"), WAIT)
    assert settings["rate"] == 2e6 and settings["gain"] == 10.0
    done = rec.count
    assert rec.wait_count(done + (1 << 16), WAIT)
    tags = [(o, v) for o, v in rec.tags_named("rx_rate") if o > 0]
    assert tags and tags[0][1] == 2e6


def test_a_gain_change_is_tagged_on_the_first_sample_at_the_new_gain(serial, flowgraphs):
    """rx_gain, like rx_freq: the sink cuts its frames there, so a hub knows the gain of every sample."""
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}", gain=10.0)
    assert rec.wait_count(50000, WAIT)
    post(src, gain=20.0)
    assert status.wait_for(is_event("settings"), WAIT)["gain"] == 20.0
    done = rec.count
    assert rec.wait_count(done + 50000, WAIT)
    tb.stop()
    tb.wait()

    assert rec.tags_named("rx_gain")[0] == (0, 10.0)
    changes = [(o, v) for o, v in rec.tags_named("rx_gain") if o > 0]
    assert len(changes) == 1 and changes[0][1] == 20.0
    k = changes[0][0]
    level = np.abs(rec.samples())  # the tone alone: -30 dBm + gain, 0.1 then 0.316
    assert np.allclose(level[:k], 0.1, rtol=1e-3) and np.allclose(level[k:k + 50000], 10 ** -0.5, rtol=1e-3)


def test_an_open_with_a_setting_the_radio_refuses_is_refused(serial, flowgraphs):
    """`open` with settings is one command, all or nothing: the radio's range is known only once it is open, so it
    is opened, refuses, and is closed again without a sample; the settings are those from before the command."""
    tb, src, rec, status = started_receiver(flowgraphs, "")
    device = f"driver=riasim,serial={serial},{CLEAN_TONE}"
    post(src, open=device, freq=1e12, gain=25.0)
    refused = status.wait_for(is_event("refused"), WAIT)
    assert refused["device"] == device and refused["message"] == "the radio refused a setting of the open command: freq"
    errors = status.events("error")
    assert [e["key"] for e in errors] == ["freq"], errors
    assert "1e+12 Hz is outside the device range 1e+06 to 6e+09 Hz" in errors[0]["message"]
    assert src.state() == "closed" and not status.events("opened")
    post(src, open=device)
    opened = status.wait_for(is_event("opened"), WAIT)
    assert (opened["freq"], opened["gain"]) == (100e6, 20.0)  # the constructor's, not the refused command's
    assert rec.wait_count(10000, WAIT)
    assert rec.tags_named("rx_freq")[0] == (0, 100e6)


def test_what_the_radio_refuses_at_start_is_reported_and_never_claimed(serial, flowgraphs):
    """A device in the block's own arguments opens when the flowgraph starts (GRC): a setting it refuses is
    reported, and the status messages and tags then say what the radio has (read back), not what was asked."""
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE},freq=100.1e6",
                                            freq=7e9)
    streaming = status.wait_for(is_event("streaming"), WAIT)
    assert [e["key"] for e in status.events("error")] == ["freq"]
    assert streaming["freq"] == 100.1e6 and status.events("opened")[0]["freq"] == 100.1e6
    assert rec.wait_count(1 << 16, WAIT)
    assert rec.tags_named("rx_freq")[0] == (0, 100.1e6)
    assert abs(peak_offset_hz(rec.samples()[: 1 << 16], RATE) - 100e3) < 2 * RATE / (1 << 16)


@pytest.mark.parametrize("style", ["error", "nodev", "eio", "timeout"])
def test_unplug_gives_one_disconnect_then_reconnects(serial, flowgraphs, style):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial}")
    assert status.wait_for(is_event("streaming"), WAIT)
    riasim_control.unplug(serial, style)
    gone = status.wait_for(is_event("disconnected"), WAIT)
    assert gone and gone["action"] == "reconnect" and gone["reason"]
    assert src.state() == "disconnected"
    before = rec.count
    riasim_control.replug(serial)
    assert status.wait_for(is_event("reconnected"), WAIT)
    assert rec.wait_count(before + 100000, WAIT), "samples did not flow again after replug"
    assert len(status.events("disconnected")) == 1
    assert src.disconnects() == 1
    assert any(o >= before for o, _ in rec.tags_named("rx_freq")), "no rx_freq tag after the reopen"


def test_settings_survive_a_reconnect(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}")
    assert status.wait_for(is_event("streaming"), WAIT)
    post(src, freq=100.1e6)
    assert status.wait_for(is_event("settings"), WAIT)
    riasim_control.unplug(serial, "nodev")
    assert status.wait_for(is_event("disconnected"), WAIT)
    riasim_control.replug(serial)
    back = status.wait_for(is_event("reconnected"), WAIT)
    assert back["freq"] == 100.1e6


def test_stop_policy_ends_the_flowgraph(serial):
    src = make_source(f"driver=riasim,serial={serial},faults=unplug:eio@0.3", on_disconnect="stop")
    tb, rec, status = receiver(src)
    tb.start()
    finished = threading.Event()
    threading.Thread(target=lambda: (tb.wait(), finished.set()), daemon=True).start()
    ended = finished.wait(WAIT)
    if not ended:
        tb.stop()
        tb.wait()
    assert ended, "the flowgraph kept running after the radio was unplugged with on_disconnect=stop"
    assert [e["event"] for e in status.events()][-2:] == ["disconnected", "stopped"]
    assert src.state() == "stopped" and rec.count > 0


def test_closed_until_open_then_close(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, "")
    assert src.state() == "closed"
    post(src, open=f"driver=riasim,serial={serial},{CLEAN_TONE}", freq=100.1e6)
    opened = status.wait_for(is_event("opened"), WAIT)
    assert opened["freq"] == 100.1e6
    assert rec.wait_count(1 << 16, WAIT)
    assert rec.tags_named("rx_freq")[0] == (0, 100.1e6)
    assert abs(peak_offset_hz(rec.samples()[: 1 << 16], RATE) - 100e3) < 2 * RATE / (1 << 16)
    post(src, close=True)
    assert status.wait_for(is_event("closed"), WAIT)
    assert src.state() == "closed"


def test_absent_device_at_start_is_opened_when_plugged(serial, flowgraphs):
    riasim_control.unplug(serial)
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial}")
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == "open" and "cannot open" in err["message"]
    riasim_control.replug(serial)
    assert status.wait_for(is_event("opened"), WAIT)
    assert rec.wait_count(10000, WAIT)
    assert len(status.events("error")) == 1, "retries while absent must stay quiet"


@pytest.mark.parametrize("cmd,key,says", [
    ({"freq": "abc"}, "freq", "expected a number"),
    ({"freq": 7e9}, "freq", "outside the device range 1e+06 to 6e+09 Hz"),
    ({"gain": float("nan")}, "gain", "finite"),
    ({"gain": 99.0}, "gain", "outside the device range 0 to 70 dB"),
    ({"rate": -5.0}, "rate", "outside the device range"),
    ({"antenna": "XYZ"}, "antenna", "not one of RX, CAL"),
    ({"tune": 1}, "tune", "unknown key 'tune'"),
    ({"chan": 3, "freq": 101e6}, "chan", "channel 0"),
    ({"open": 5}, "open", "expected device args"),
])
def test_bad_commands_report_and_leave_the_stream_alone(serial, flowgraphs, cmd, key, says):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}")
    assert status.wait_for(is_event("streaming"), WAIT)
    post(src, **cmd)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == key and says in err["message"], err
    before = rec.count
    assert rec.wait_count(before + 50000, WAIT)
    assert src.state() == "streaming"
    assert rec.tags_named("rx_freq") == [(0, 100e6)]


def test_non_dict_command_and_pair_command(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial},{CLEAN_TONE}")
    assert status.wait_for(is_event("streaming"), WAIT)
    src._post(pmt.intern("cmd"), pmt.from_long(42))
    assert "expected a dict" in status.wait_for(is_event("error"), WAIT)["message"]
    src._post(pmt.intern("cmd"), pmt.cons(pmt.intern("freq"), pmt.from_double(100.1e6)))
    assert status.wait_for(is_event("settings"), WAIT)["freq"] == 100.1e6


def test_overflows_are_summarised_not_spammed(serial, flowgraphs):
    tb, src, rec, status = started_receiver(flowgraphs, f"driver=riasim,serial={serial}")
    assert status.wait_for(is_event("streaming"), WAIT)
    riasim_control.overflow(serial, 5)
    summary = status.wait_for(is_event("overflow"), WAIT)
    assert summary and summary["total"] >= 1
    riasim_control.overflow(serial, 5)
    assert status.wait_for(lambda m: is_event("overflow")(m) and m["total"] >= 2, WAIT)
    assert src.overflows() >= 2 and src.state() == "streaming"


@pytest.mark.parametrize("kwargs,named", [
    ({"on_disconnect": "explode"}, "on_disconnect"),
    ({"reopen_interval": 0.0}, "reopen_interval"),
    ({"disconnect_timeout": -1.0}, "disconnect_timeout"),
    ({"sample_rate": 0.0}, "sample_rate"),
    ({"center_freq": float("inf")}, "center_freq"),
    ({"ppm": 5000.0}, "ppm"),
    ({"ppm": float("nan")}, "ppm"),
    ({"output_type": "fc64"}, "output_type"),
    ({"device_settings": "biastee"}, "biastee"),
    ({"device_settings": "=1"}, "=1"),
    ({"device_settings": "a=1, a=2"}, "'a' is given twice"),
])
def test_bad_constructor_arguments_raise_naming_them(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ria.sdr_source(**kwargs)


def test_stop_returns_promptly_in_every_state(serial):
    riasim_control.unplug(serial, "timeout")
    src = make_source(f"driver=riasim,serial={serial}", reopen_interval=30.0)
    tb, rec, status = receiver(src)
    tb.start()
    assert status.wait_for(is_event("error"), WAIT)
    tb.stop()
    tb.wait()  # a hang here fails the run by its timeout
    assert src.state() in ("disconnected", "opening")


# ---------------------------------------------------------------- ppm, output type, device settings

# riasim with a crystal 50 ppm fast: tuned to 100 MHz it really sits 5 kHz higher, so the tone at 100.2 MHz shows
# at +195 kHz until the correction puts it back at +200 kHz.
XTAL = "xtal_ppm=50"
FFT = 1 << 16


def tone_offset(rec, start=0):
    assert rec.wait_count(start + FFT, WAIT)
    return peak_offset_hz(rec.samples()[start:start + FFT], RATE)


def ppm_source(device_args, ppm):
    return ria.sdr_source(device_args, 0, RATE, 100e6, 20.0, False, 0.0, "", "reconnect", 0.1, 0.5, ppm)


@pytest.mark.parametrize("ppm,expected_hz", [(0.0, 195e3), (50.0, 200e3)])
def test_ppm_uses_the_drivers_correction(serial, flowgraphs, ppm, expected_hz):
    src = ppm_source(f"driver=riasim,serial={serial},{CLEAN_TONE},{XTAL}", ppm)
    tb, rec, status = receiver(src)
    flowgraphs(tb)
    assert abs(tone_offset(rec) - expected_hz) < 2 * RATE / FFT
    opened = status.events("opened")[0]
    assert opened["ppm"] == ppm and opened["ppm_method"] == "driver" and opened["freq"] == 100e6
    assert rec.tags_named("rx_freq")[0] == (0, 100e6)


def test_ppm_retunes_when_the_driver_has_no_correction(serial, flowgraphs):
    """riasim with freq_correction=false is such a driver: the block tunes 50 ppm low and reports 100 MHz."""
    src = ppm_source(f"driver=riasim,serial={serial},{CLEAN_TONE},{XTAL},freq_correction=false", 0.0)
    tb, rec, status = receiver(src)
    flowgraphs(tb)
    assert abs(tone_offset(rec) - 195e3) < 2 * RATE / FFT
    post(src, ppm=50.0)
    settings = status.wait_for(is_event("settings"), WAIT)
    assert settings["ppm"] == 50.0 and settings["ppm_method"] == "retune"
    assert settings["freq"] == pytest.approx(100e6, abs=1e-3)
    assert wait_until(lambda: [t for t in rec.tags_named("rx_freq") if t[0] > 0], WAIT)
    retune, freq = [t for t in rec.tags_named("rx_freq") if t[0] > 0][0]
    assert freq == pytest.approx(100e6, abs=1e-3)
    assert abs(tone_offset(rec, retune) - 200e3) < 2 * RATE / FFT
    post(src, ppm=2000.0)
    assert "outside -1000 to 1000 ppm" in status.wait_for(is_event("error"), WAIT)["message"]


def test_sc16_output_is_the_fc32_stream_scaled(serial):
    """Two runs of the same unpaced riasim (same seed, same samples): the CS16 one is the CF32 one times 32767."""
    n = 50000

    def run(output_type, sink, itemsize):
        src = ria.sdr_source(f"driver=riasim,serial={serial},pace=false,emitters=100.2e6:-30", 0, RATE, 100e6, 20.0,
                             False, 0.0, "", "reconnect", 0.1, 0.5, 0.0, output_type)
        tb = gr.top_block()
        tb.connect(src, blocks.head(itemsize, n), sink)
        tb.run()
        return sink.data()

    cf32 = np.array(run("fc32", blocks.vector_sink_c(), gr.sizeof_gr_complex), np.complex64)
    sc16 = np.array(run("sc16", blocks.vector_sink_s(2), 4), np.int16).reshape(-1, 2)
    assert len(cf32) == len(sc16) == n
    as_complex = (sc16[:, 0] + 1j * sc16[:, 1]) / 32767.0
    # Sample for sample one quantisation step apart at first; the tone's phase then drifts by rounding that depends
    # on how the runs were cut into reads (different item sizes), so the rest only within 0.2 % of full scale.
    assert np.max(np.abs(as_complex[:1000] - cf32[:1000])) <= 1.0 / 32767
    assert np.max(np.abs(as_complex - cf32)) < 2e-3
    assert np.std(as_complex) == pytest.approx(np.std(cf32), rel=1e-3)
    assert np.max(np.abs(sc16)) > 1000  # a real signal, not zeros on both sides


def settings_source(device_args, settings):
    return ria.sdr_source(device_args, 0, RATE, 100e6, 20.0, False, 0.0, "", "reconnect", 0.1, 0.5, 0.0, "fc32",
                          settings)


def test_device_settings_reach_the_radio(serial, flowgraphs):
    src = settings_source(f"driver=riasim,serial={serial}", " biastee=true,  direct_samp=2 ")
    tb, rec, status = receiver(src)
    flowgraphs(tb)
    opened = status.wait_for(is_event("opened"), WAIT)
    # what riasim's readSetting answers after the writes
    assert opened["device_settings"] == {"biastee": "true", "direct_samp": "2"}
    assert status.wait_for(is_event("streaming"), WAIT)
    assert not status.events("error")


def test_a_device_setting_the_radio_lacks_is_refused_naming_it(serial, flowgraphs):
    src = settings_source(f"driver=riasim,serial={serial}", "biastee=true, bias_t=1, direct_samp=7")
    tb, rec, status = receiver(src)
    flowgraphs(tb)
    assert status.wait_for(is_event("streaming"), WAIT)  # like any refused setting: reported, the radio streams
    errors = {e["value"]: e["message"] for e in status.events("error")}
    assert errors["bias_t=1"].startswith("device setting 'bias_t' is not one this radio has (it has: pace, ")
    assert "biastee" in errors["bias_t=1"]
    assert errors["direct_samp=7"] == "device setting 'direct_samp' takes one of 0, 1, 2, not '7'"
    assert all(e["key"] == "device_settings" for e in status.events("error"))
    assert status.events("opened")[0]["device_settings"] == {"biastee": "true"}


def test_device_settings_change_while_streaming(serial, flowgraphs):
    """The GRC callback (set_device_settings) and the cmd key: written at once, kept for every reopen."""
    src = settings_source(f"driver=riasim,serial={serial}", "biastee=true")
    tb, rec, status = receiver(src)
    flowgraphs(tb)
    assert status.wait_for(is_event("streaming"), WAIT)
    src.set_device_settings("direct_samp=1")
    assert status.wait_for(is_event("settings"), WAIT)["device_settings"] == {"biastee": "true", "direct_samp": "1"}
    post(src, device_settings="direct_samp=9")
    assert "takes one of 0, 1, 2, not '9'" in status.wait_for(is_event("error"), WAIT)["message"]
    post(src, device_settings="biastee")
    assert status.wait_for(lambda m: is_event("error")(m) and m["value"] == "biastee", WAIT)["message"] == \
        "cmd device_settings: device setting 'biastee' has no '=' (write key=value, e.g. biastee=true)"
    riasim_control.unplug(serial)
    assert status.wait_for(is_event("disconnected"), WAIT)
    riasim_control.replug(serial)
    # a fresh riasim after the reopen: what it reads back is what the block wrote again
    assert status.wait_for(is_event("reconnected"), WAIT)["device_settings"] == {"biastee": "true", "direct_samp": "1"}
