"""ria.sdr_sink in real flowgraphs on riasim: interlocks, bursts at exact samples, commands, unplugging, stop."""

import json
import threading
import time

import numpy as np
import pmt
import pytest
import SoapySDR
from gnuradio import analog, blocks, gr, ria
from SoapySDR import SOAPY_SDR_END_BURST, SOAPY_SDR_HAS_TIME

from gnuradio.ria import riasim_control
from helpers import is_event, wait_until

RATE = 1e6
FREQ = 433.92e6
WAIT = 10.0  # seconds; a generous bound for events that normally take milliseconds


@pytest.fixture(autouse=True)
def air(tmp_path, monkeypatch):
    """Every test transmits into an air file of its own."""
    monkeypatch.setenv("RIASIM_AIR", str(tmp_path / "air"))


def device(serial, pace=False):
    return f"driver=riasim,serial={serial},pace={'true' if pace else 'false'}"


def make_sink(dev, **kwargs):
    settings = dict(sample_rate=RATE, center_freq=FREQ, gain=10.0, allow_tx=True, reopen_interval=0.1,
                    disconnect_timeout=0.5)
    settings.update(kwargs)
    return ria.sdr_sink(dev, **settings)


def tag(offset, key, value):
    t = gr.tag_t()
    t.offset = offset
    t.key = pmt.intern(key)
    t.value = pmt.to_pmt(value) if not isinstance(value, pmt.pmt_base) else value
    return t


def time_tag(offset, time_ns):
    return tag(offset, "tx_time", pmt.make_tuple(pmt.from_uint64(time_ns // 10**9),
                                                 pmt.from_double((time_ns % 10**9) / 1e9)))


def transmitter(flowgraphs, sink, samples=None, tags=(), source=None):
    """source (or a vector of `samples` with `tags`) -> sink, status collected; started."""
    tb = gr.top_block()
    status = ria.message_collector()
    if source is None:
        source = blocks.vector_source_c(np.asarray(samples, np.complex64).tolist(), False, 1, list(tags))
    tb.connect(source, sink)
    tb.msg_connect(sink, "status", status, "in")
    tb.python_blocks = (status,)
    flowgraphs(tb)
    return tb, status


def endless():
    """A source that never ends, so the sink keeps handling commands (a block whose input has ended stops)."""
    return blocks.null_source(gr.sizeof_gr_complex)


def post(sink, **cmd):
    sink._post(pmt.intern("cmd"), pmt.to_pmt(cmd))


def tx_log(serial):
    return json.loads(SoapySDR.Device(f"driver=riasim,serial={serial}").readSetting("tx_log"))


def bursts(log):
    """Writes grouped into radio bursts, each ended by END_BURST: [(HAS_TIME of the first write or 0, its
    time_ns or 0, samples)]."""
    out, current = [], None
    for w in (w for w in log if w["count"] >= 0):
        if current is None:
            timed = w["flags"] & SOAPY_SDR_HAS_TIME
            current = [timed, w["time_ns"] if timed else 0, 0]
        current[2] += w["count"]
        if w["flags"] & SOAPY_SDR_END_BURST and w["count"] == w["asked"]:
            out.append(tuple(current))
            current = None
    return out


def written(serial):
    return sum(w["count"] for w in tx_log(serial) if w["count"] > 0)


def test_tx_disabled_refuses_every_open(serial, flowgraphs):
    sink = make_sink(device(serial), allow_tx=False)
    tb, status = transmitter(flowgraphs, sink, source=endless())
    refused = status.wait_for(is_event("refused"), WAIT)
    assert "TX is disabled" in refused["message"]
    post(sink, open=device(serial), seq=7, freq=FREQ)
    refused = status.wait_for(is_event("refused"), WAIT)
    assert refused["seq"] == 7 and "TX is disabled" in refused["message"]
    assert not status.events("opened") and sink.state() == "closed"
    assert tx_log(serial) == []


def test_the_gain_cap_refuses_an_open_and_a_command(serial, flowgraphs):
    sink = make_sink("", max_gain_db=20.0)
    tb, status = transmitter(flowgraphs, sink, source=endless())
    post(sink, open=device(serial, pace=True), gain=30.0, seq=1)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == "gain" and "30 dB is above the TX gain cap of 20 dB" in err["message"] and err["seq"] == 1
    assert status.wait_for(is_event("refused"), WAIT)["seq"] == 1
    post(sink, open=device(serial, pace=True), gain=15.0, seq=2)
    opened = status.wait_for(is_event("opened"), WAIT)
    assert opened["gain"] == 15.0 and opened["seq"] == 2 and list(opened["gain_range"]) == [0, 60]
    post(sink, gain=25.0)
    assert "above the TX gain cap" in status.wait_for(is_event("error"), WAIT)["message"]
    post(sink, gain=18.0)
    assert status.wait_for(is_event("settings"), WAIT)["gain"] == 18.0


def test_the_device_range_refuses_an_open(serial, flowgraphs):
    sink = make_sink("")
    tb, status = transmitter(flowgraphs, sink, source=endless())
    post(sink, open=device(serial), gain=61.0)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == "gain" and "outside the device range 0 to 60 dB" in err["message"]
    assert status.wait_for(is_event("refused"), WAIT) and sink.state() == "closed"


def test_frequency_ranges_refuse_an_open_and_a_tag(serial, flowgraphs):
    ranges = "433.05e6:434.79e6, 868e6:868.6e6"
    sink = make_sink("", allowed_freq_ranges=ranges, burst_tags="required")
    n = 4000
    tags = [tag(0, "tx_sob", True), tag(1000, "tx_freq", 2.4e9), tag(2000, "tx_freq", 868.3e6),
            tag(n - 1, "tx_eob", True)]
    tb, status = transmitter(flowgraphs, sink, source=endless())
    post(sink, open=device(serial), freq=915e6)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == "freq" and "9.15e+08 Hz is outside the allowed TX ranges 4.3305e+08–4.3479e+08, 8.68e+08–8.686e+08 Hz" in err["message"]
    assert status.wait_for(is_event("refused"), WAIT)
    tb.stop()
    tb.wait()

    sink = make_sink(device(serial), allowed_freq_ranges=ranges, burst_tags="required")
    tb, status = transmitter(flowgraphs, sink, np.ones(n), tags)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == "tx_freq" and "2.4e+09 Hz is outside the allowed TX ranges" in err["message"]
    tuned = status.wait_for(is_event("tuned"), WAIT)
    assert tuned["freq"] == 868.3e6 and tuned["index"] == 2000
    assert wait_until(lambda: sink.samples_written() == 3000, WAIT)
    # Samples 1000..1999 (asked at 2.4 GHz) never went out: the burst ended at 1000, the next began at 2000.
    assert bursts(tx_log(serial)) == [(0, 0, 1000), (0, 0, 2000)]
    assert [w["freq"] for w in tx_log(serial)][-1] == 868.3e6
    assert sink.samples_dropped() == 1000


@pytest.mark.parametrize("burst_tags", ["optional", "required"])
def test_max_duration_ends_the_burst_at_the_exact_sample(serial, flowgraphs, burst_tags):
    sink = make_sink(device(serial), max_duration_s=0.0123, burst_tags=burst_tags)
    tags = [tag(0, "tx_sob", True)]
    tb, status = transmitter(flowgraphs, sink, np.ones(50000), tags)
    limit = status.wait_for(is_event("limit"), WAIT)
    assert limit["reason"] == "max duration reached" and limit["samples"] == 12300
    assert [e["samples"] for e in status.events("burst_end")] == [12300]
    assert wait_until(lambda: sink.samples_dropped() == 50000 - 12300, WAIT)
    assert bursts(tx_log(serial)) == [(0, 0, 12300)]


def test_bursts_write_their_flags_time_and_count(serial, flowgraphs):
    """tx_sob/tx_time/tx_eob become HAS_TIME + timeNs on a burst's first write and END_BURST on its last;
    with burst_tags required, what lies outside a burst is dropped."""
    at = SoapySDR.Device(device(serial)).getHardwareTime() + 500_000_000
    tags = [tag(100, "tx_sob", True), time_tag(100, at), tag(1099, "tx_eob", True),
            tag(2000, "tx_sob", True), tag(2499, "tx_eob", True)]
    sink = make_sink(device(serial), burst_tags="required")
    tb, status = transmitter(flowgraphs, sink, np.ones(3000), tags)
    assert status.wait_for(lambda m: is_event("burst_end")(m) and m["samples"] == 500, WAIT)
    assert bursts(tx_log(serial)) == [(SOAPY_SDR_HAS_TIME, at, 1000), (0, 0, 500)]
    assert wait_until(lambda: sink.samples_dropped() == 3000 - 1500, WAIT)
    assert [e["index"] for e in status.events("transmitting")] == [0, 0]


def test_a_tx_freq_tag_splits_the_write_at_its_sample(serial, flowgraphs):
    tags = [tag(0, "tx_sob", True), tag(3000, "tx_freq", 434e6), tag(4500, "tx_gain", 20.0),
            tag(5999, "tx_eob", True)]
    sink = make_sink(device(serial), burst_tags="required")
    tb, status = transmitter(flowgraphs, sink, np.ones(6000), tags)
    assert status.wait_for(is_event("burst_end"), WAIT)["samples"] == 6000
    log = tx_log(serial)
    edges = np.cumsum([w["count"] for w in log])
    assert 3000 in edges and 4500 in edges
    for w, end in zip(log, edges):
        start = end - w["count"]
        assert w["freq"] == (FREQ if end <= 3000 else 434e6), (start, end, w)
        assert w["gain"] == (10.0 if end <= 4500 else 20.0), (start, end, w)
    tuned = status.events("tuned")
    assert [(t["index"], t["freq"], t["gain"]) for t in tuned] == [(3000, 434e6, 10.0), (4500, 434e6, 20.0)]
    assert bursts(log) == [(0, 0, 6000)]


def test_a_refused_tag_drops_until_a_valid_one(serial, flowgraphs):
    tags = [tag(0, "tx_sob", True), tag(1000, "tx_gain", 45.0), tag(1500, "tx_gain", 5.0),
            tag(2999, "tx_eob", True)]
    sink = make_sink(device(serial), burst_tags="required", max_gain_db=40.0)
    tb, status = transmitter(flowgraphs, sink, np.ones(3000), tags)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == "tx_gain" and "45 dB is above the TX gain cap of 40 dB" in err["message"]
    assert status.wait_for(is_event("tuned"), WAIT)["index"] == 1500
    assert wait_until(lambda: sink.samples_written() == 2500, WAIT)
    assert bursts(tx_log(serial)) == [(0, 0, 1000), (0, 0, 1500)]


def test_required_burst_tags_drop_untagged_samples(serial, flowgraphs):
    sink = make_sink(device(serial), burst_tags="required")
    tb, status = transmitter(flowgraphs, sink, np.ones(20000))
    assert status.wait_for(is_event("opened"), WAIT)
    assert wait_until(lambda: sink.samples_dropped() == 20000, WAIT)
    assert tx_log(serial) == [] and not status.events("transmitting")


def test_an_untagged_stream_is_transmitted_with_optional_tags(serial, flowgraphs):
    sink = make_sink(device(serial))
    tb, status = transmitter(flowgraphs, sink, np.ones(20000))
    assert status.wait_for(is_event("transmitting"), WAIT)
    assert wait_until(lambda: written(serial) == 20000, WAIT)


def test_a_starved_burst_reports_an_underflow(serial, flowgraphs):
    """Samples at half the radio's rate: its burst keeps running dry."""
    slow = gr.hier_block2("slow", gr.io_signature(0, 0, 0), gr.io_signature(1, 1, gr.sizeof_gr_complex))
    slow.connect(analog.sig_source_c(RATE, analog.GR_COS_WAVE, 1e3, 0.1),
                 blocks.throttle(gr.sizeof_gr_complex, RATE / 2), slow)
    sink = make_sink(device(serial, pace=True))
    tb, status = transmitter(flowgraphs, sink, source=slow)
    underflow = status.wait_for(is_event("underflow"), WAIT)
    assert underflow["total"] >= 1 and sink.underflows() >= 1


def test_unplug_while_transmitting_disconnects_then_reconnects(serial, flowgraphs):
    source = analog.sig_source_c(RATE, analog.GR_COS_WAVE, 10e3, 0.5)
    sink = make_sink(device(serial, pace=True))
    tb, status = transmitter(flowgraphs, sink, source=source)
    assert status.wait_for(is_event("transmitting"), WAIT)
    riasim_control.unplug(serial, "error")
    gone = status.wait_for(is_event("disconnected"), WAIT)
    assert gone["action"] == "reconnect" and "stream error" in gone["reason"]
    assert sink.state() == "disconnected"
    riasim_control.replug(serial)
    assert status.wait_for(is_event("reconnected"), WAIT)
    assert status.wait_for(is_event("transmitting"), WAIT)
    assert sink.disconnects() == 1 and len(status.events("disconnected")) == 1


def test_stop_returns_promptly_while_the_radio_is_stuck(serial):
    source = analog.sig_source_c(RATE, analog.GR_COS_WAVE, 10e3, 0.5)
    sink = make_sink(device(serial, pace=True), disconnect_timeout=30.0)
    tb = gr.top_block()
    status = ria.message_collector()
    tb.connect(source, sink)
    tb.msg_connect(sink, "status", status, "in")
    tb.start()
    try:
        assert status.wait_for(is_event("transmitting"), WAIT)
        riasim_control.stall(serial, 60)
        assert wait_until(lambda: [w["count"] for w in tx_log(serial)[-3:]] == [SoapySDR.SOAPY_SDR_TIMEOUT] * 3, WAIT)
    finally:
        started = time.monotonic()
        tb.stop()
        tb.wait()  # a hang here fails the run by its timeout
        print(f"stop took {time.monotonic() - started:.3f} s with the radio stuck")
    assert sink.state() == "streaming"


def test_commands_close_and_reopen(serial, flowgraphs):
    sink = make_sink("")
    tb, status = transmitter(flowgraphs, sink, source=analog.sig_source_c(RATE, analog.GR_COS_WAVE, 1e3, 0.1))
    post(sink, open=device(serial, pace=True), freq=433.5e6, rate=2e6, seq="a")
    opened = status.wait_for(is_event("opened"), WAIT)
    assert (opened["freq"], opened["rate"], opened["seq"]) == (433.5e6, 2e6, "a")
    assert status.wait_for(is_event("transmitting"), WAIT)
    post(sink, close=True)
    assert status.wait_for(is_event("burst_end"), WAIT)["reason"] == "closed"
    assert status.wait_for(is_event("closed"), WAIT) and sink.state() == "closed"
    assert tx_log(serial)[-1]["flags"] == SOAPY_SDR_END_BURST and tx_log(serial)[-1]["count"] == 0


@pytest.mark.parametrize("cmd,key,says", [
    ({"freq": "abc"}, "freq", "expected a number"),
    ({"freq": 7e9}, "freq", "outside the device range 1e+06 to 6e+09 Hz"),
    ({"gain": float("nan")}, "gain", "finite"),
    ({"antenna": "RX"}, "antenna", "not one of TX"),
    ({"tune": 1}, "tune", "unknown key 'tune'"),
    ({"chan": 1, "freq": 433e6}, "chan", "channel 0"),
    ({"open": 5}, "open", "expected device args"),
])
def test_bad_commands_report_and_change_nothing(serial, flowgraphs, cmd, key, says):
    sink = make_sink(device(serial, pace=True))
    tb, status = transmitter(flowgraphs, sink, source=endless())
    assert status.wait_for(is_event("opened"), WAIT)
    post(sink, **cmd)
    err = status.wait_for(is_event("error"), WAIT)
    assert err["key"] == key and says in err["message"], err
    assert sink.state() == "streaming"


@pytest.mark.parametrize("kwargs,named", [
    ({"on_disconnect": "explode"}, "on_disconnect"),
    ({"burst_tags": "sometimes"}, "burst_tags"),
    ({"reopen_interval": 0.0}, "reopen_interval"),
    ({"disconnect_timeout": -1.0}, "disconnect_timeout"),
    ({"sample_rate": 0.0}, "sample_rate"),
    ({"center_freq": float("inf")}, "center_freq"),
    ({"allowed_freq_ranges": "433e6-434e6"}, "allowed_freq_ranges"),
    ({"allowed_freq_ranges": "434e6:433e6"}, "allowed_freq_ranges"),
    ({"max_duration_s": -1.0}, "max_duration_s"),
    ({"gain": 30.0, "max_gain_db": 10.0}, "gain"),
    ({"center_freq": 915e6, "allowed_freq_ranges": "433e6:434e6"}, "center_freq"),
])
def test_bad_constructor_arguments_raise_naming_them(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ria.sdr_sink(**kwargs)


def test_no_gain_cap_and_no_duration_cap_by_default():
    sink = ria.sdr_sink("", gain=60.0, max_gain_db=float("inf"))
    assert sink.state() == "closed"

