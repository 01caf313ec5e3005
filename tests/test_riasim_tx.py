"""riasim's TX side and the air between riasim radios, through SoapySDR's own loader and API."""

import json
import os
import signal
import time

import numpy as np
import pytest
import SoapySDR
from SoapySDR import (SOAPY_SDR_CF32, SOAPY_SDR_CS16, SOAPY_SDR_END_BURST, SOAPY_SDR_HAS_TIME, SOAPY_SDR_RX,
                      SOAPY_SDR_TX)

from gnuradio.ria import riasim_control
from helpers import peak_offset_hz
from processes import Process, python

TONE_TX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "riasim_tone_tx.py")
QUIET = "emitters=,noise=-140"  # no static emitters, a negligible noise floor
TX_DBM_AT_FULL_SCALE_0DB = -60.0  # riasim's transmitter: a full-scale sample at TX gain G is G - 60 dBm
PATH_LOSS_DB = 40.0  # riasim's default


@pytest.fixture
def air(tmp_path, monkeypatch):
    """An air file of this test's own (inherited by the processes it starts)."""
    path = tmp_path / "air"
    monkeypatch.setenv("RIASIM_AIR", str(path))
    return path


def open_device(serial, extra=""):
    return SoapySDR.Device(f"driver=riasim,serial={serial}" + (f",{extra}" if extra else ""))


def tx_stream(dev, freq=433.9e6, rate=1e6, gain=40.0, fmt=SOAPY_SDR_CF32):
    dev.setSampleRate(SOAPY_SDR_TX, 0, rate)
    dev.setFrequency(SOAPY_SDR_TX, 0, freq)
    dev.setGain(SOAPY_SDR_TX, 0, gain)
    stream = dev.setupStream(SOAPY_SDR_TX, fmt, [0])
    dev.activateStream(stream)
    return stream


def close(dev, stream):
    dev.deactivateStream(stream)
    dev.closeStream(stream)


def write_all(dev, stream, x, flags=0, time_ns=0):
    """Writes x as SoapySDR callers do: the flags' time on the first write, END_BURST only on the last."""
    done = 0
    while done < len(x) or (len(x) == 0 and done == 0):
        last_flags = flags if done == 0 else flags & ~SOAPY_SDR_HAS_TIME
        ret = dev.writeStream(stream, [x[done:]], len(x) - done, last_flags, time_ns, timeoutUs=500000).ret
        assert ret >= 0, f"writeStream returned {ret}"
        done += ret
        if len(x) == 0:
            break
    return done


def receive(dev, n, freq=433.8e6, rate=1e6, gain=30.0):
    """n samples from a paced RX stream, with the hardware time of the first."""
    dev.setSampleRate(SOAPY_SDR_RX, 0, rate)
    dev.setFrequency(SOAPY_SDR_RX, 0, freq)
    dev.setGain(SOAPY_SDR_RX, 0, gain)
    stream = dev.setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    buf, got, t0 = np.zeros(n, np.complex64), 0, None
    try:
        while got < n:
            sr = dev.readStream(stream, [buf[got:]], n - got, timeoutUs=500000)
            assert sr.ret > 0, f"readStream returned {sr.ret}"
            t0 = sr.timeNs if t0 is None else t0
            got += sr.ret
    finally:
        close(dev, stream)
    return buf, t0


def tx_log(dev):
    return json.loads(dev.readSetting("tx_log"))


def expected_dbfs(amplitude, tx_gain, rx_gain, path_loss=PATH_LOSS_DB):
    return 20 * np.log10(amplitude) + tx_gain + TX_DBM_AT_FULL_SCALE_0DB - path_loss + rx_gain


def test_tx_side_ranges(serial):
    dev = open_device(serial)
    assert dev.getNumChannels(SOAPY_SDR_TX) == 1 and dev.getFullDuplex(SOAPY_SDR_TX, 0)
    gain = dev.getGainRange(SOAPY_SDR_TX, 0)
    assert (gain.minimum(), gain.maximum()) == (0, 60)
    freq = dev.getFrequencyRange(SOAPY_SDR_TX, 0)[0]
    assert (freq.minimum(), freq.maximum()) == (1e6, 6e9)
    assert dev.listAntennas(SOAPY_SDR_TX, 0) == ("TX",)
    with pytest.raises(Exception, match="outside"):
        dev.setGain(SOAPY_SDR_TX, 0, 61)
    dev.setFrequency(SOAPY_SDR_TX, 0, 433.92e6)
    dev.setBandwidth(SOAPY_SDR_TX, 0, 1e6)
    assert dev.getFrequency(SOAPY_SDR_TX, 0) == 433.92e6 and dev.getFrequency(SOAPY_SDR_RX, 0) == 100e6
    assert dev.getBandwidth(SOAPY_SDR_TX, 0) == 1e6


@pytest.mark.parametrize("fmt", [SOAPY_SDR_CF32, SOAPY_SDR_CS16])
def test_bursts_are_logged_with_flags_time_and_count(serial, air, fmt):
    dev = open_device(serial, "pace=false")
    stream = tx_stream(dev, fmt=fmt)
    dtype = np.complex64 if fmt == SOAPY_SDR_CF32 else np.int16
    size = 1 if fmt == SOAPY_SDR_CF32 else 2
    at = dev.getHardwareTime() + 200_000_000
    try:
        dev.writeSetting("tx_log", "clear")
        assert dev.writeStream(stream, [np.zeros(1000 * size, dtype)], 1000, SOAPY_SDR_HAS_TIME, at).ret == 1000
        assert dev.writeStream(stream, [np.zeros(500 * size, dtype)], 500, SOAPY_SDR_END_BURST).ret == 500
        assert dev.writeStream(stream, [np.zeros(0, dtype)], 0, SOAPY_SDR_END_BURST).ret == 0
    finally:
        close(dev, stream)
    log = tx_log(dev)
    assert [(w["flags"], w["count"]) for w in log] == [(SOAPY_SDR_HAS_TIME, 1000), (SOAPY_SDR_END_BURST, 500),
                                                       (SOAPY_SDR_END_BURST, 0)]
    assert log[0]["time_ns"] == at and log[0]["freq"] == 433.9e6 and log[0]["gain"] == 40
    assert all(w["aired"] for w in log)
    dev.writeSetting("tx_log", "clear")
    assert tx_log(dev) == []


def test_paced_tx_takes_the_signal_time_unpaced_does_not(serial, air):
    """A paced transmitter takes samples no faster than its rate (less its ~50 ms buffer); unpaced, at once."""
    x = np.zeros(300_000, np.complex64)  # 0.3 s at 1 MS/s
    elapsed = {}
    for pace in ("true", "false"):
        dev = open_device(serial, f"pace={pace}")
        dev.writeSetting("pace", pace)  # one device per serial and process: the setting, not the argument
        stream = tx_stream(dev)
        try:
            start = time.monotonic()
            write_all(dev, stream, x, SOAPY_SDR_END_BURST)
            elapsed[pace] = time.monotonic() - start
        finally:
            close(dev, stream)
    assert elapsed["true"] >= 0.3 - 0.06
    assert elapsed["true"] > 5 * elapsed["false"], elapsed


def test_a_starved_paced_burst_reports_an_underflow(serial, air):
    dev = open_device(serial)
    stream = tx_stream(dev)
    try:
        assert dev.readStreamStatus(stream, timeoutUs=0).ret == SoapySDR.SOAPY_SDR_TIMEOUT
        write_all(dev, stream, np.zeros(10_000, np.complex64))  # 10 ms, then nothing: the burst runs dry
        status = dev.readStreamStatus(stream, timeoutUs=2_000_000)
        assert status.ret == SoapySDR.SOAPY_SDR_UNDERFLOW
        write_all(dev, stream, np.zeros(100, np.complex64), SOAPY_SDR_END_BURST)
        # One underflow per gap: the write after it does not count it again, and an ended burst never runs dry.
        assert dev.readStreamStatus(stream, timeoutUs=100_000).ret == SoapySDR.SOAPY_SDR_TIMEOUT
    finally:
        close(dev, stream)


def test_a_late_burst_is_a_time_error_and_is_not_aired(serial, air):
    dev = open_device(serial)
    stream = tx_stream(dev)
    try:
        dev.writeSetting("tx_log", "clear")
        past = dev.getHardwareTime() - 10_000_000
        write_all(dev, stream, np.zeros(1000, np.complex64), SOAPY_SDR_HAS_TIME | SOAPY_SDR_END_BURST, past)
        status = dev.readStreamStatus(stream, timeoutUs=1_000_000)
        assert status.ret == SoapySDR.SOAPY_SDR_TIME_ERROR
        assert [w["aired"] for w in tx_log(dev)] == [False]
    finally:
        close(dev, stream)


@pytest.mark.parametrize("style,wanted", [("error", SoapySDR.SOAPY_SDR_STREAM_ERROR),
                                          ("timeout", SoapySDR.SOAPY_SDR_TIMEOUT)])
def test_unplug_hits_the_tx_side(serial, air, style, wanted):
    dev = open_device(serial, "pace=false")
    stream = tx_stream(dev)
    x = np.zeros(1000, np.complex64)
    try:
        riasim_control.unplug(serial, style)
        deadline = time.monotonic() + 5
        while dev.writeStream(stream, [x], len(x), timeoutUs=50000).ret != wanted:
            assert time.monotonic() < deadline, "the unplug never reached writeStream"
        riasim_control.replug(serial)
        while dev.writeStream(stream, [x], len(x), timeoutUs=50000).ret != len(x):
            assert time.monotonic() < deadline + 5, "writes did not come back after the replug"
    finally:
        close(dev, stream)


def test_nodev_unplug_raises_from_write(serial, air):
    dev = open_device(serial, "pace=false")
    stream = tx_stream(dev)
    try:
        riasim_control.unplug(serial, "nodev")
        with pytest.raises(Exception, match="No such device"):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                dev.writeStream(stream, [np.zeros(100, np.complex64)], 100)
    finally:
        close(dev, stream)


def test_a_tone_sent_by_another_process_is_heard_at_its_offset_and_level(serial, air):
    """The loop across processes: TX 433.9 MHz with a +50 kHz tone of amplitude 0.5 at 40 dB; RX at 433.8 MHz,
    30 dB. Heard at +150 kHz and 20·log10(0.5) + 40 − 60 − 40 + 30 = −36 dBFS."""
    tx = Process(python(TONE_TX, serial + "tx", "433.9e6", "1e6", "40", "50e3", "0.5"))
    try:
        tx.wait_line("^on$")
        x, _ = receive(open_device(serial, QUIET), 1 << 18)
    finally:
        assert tx.stop() == 0, tx.output
    x = x[20000:]  # the RX clock starts at its activation: skip anything from before the tone's air time
    assert abs(peak_offset_hz(x, 1e6) - 150e3) < 2 * 1e6 / len(x)
    level = 20 * np.log10(np.median(np.abs(x)))
    assert level == pytest.approx(expected_dbfs(0.5, 40, 30), abs=0.5)
    print(f"cross-process level {level:.2f} dBFS, expected {expected_dbfs(0.5, 40, 30):.2f}")


def test_path_loss_and_gains_move_the_level(serial, air):
    tx = Process(python(TONE_TX, serial + "tx", "433.9e6", "1e6", "50", "0", "1.0"))
    try:
        tx.wait_line("^on$")
        quiet = open_device(serial, QUIET + ",path_loss=70")
        x, _ = receive(quiet, 1 << 16, gain=10.0)
    finally:
        assert tx.stop() == 0, tx.output
    level = 20 * np.log10(np.median(np.abs(x[20000:])))
    assert level == pytest.approx(expected_dbfs(1.0, 50, 10, path_loss=70), abs=0.5)


def test_nothing_is_heard_out_of_band(serial, air):
    tx = Process(python(TONE_TX, serial + "tx", "433.9e6", "1e6", "60", "0", "1.0"))
    try:
        tx.wait_line("^on$")
        far, _ = receive(open_device(serial, QUIET), 1 << 16, freq=100e6)
        near, _ = receive(open_device(serial + "b", QUIET), 1 << 16, freq=433.9e6 + 0.6e6)  # just outside ±0.5 MHz
    finally:
        assert tx.stop() == 0, tx.output
    assert np.max(np.abs(far)) < 1e-4 and np.max(np.abs(near)) < 1e-4


def test_a_timed_burst_is_heard_at_its_time(serial, air):
    """Hardware time is air time on both radios: a burst timed at T starts at the received sample stamped T."""
    tx_dev = open_device(serial + "tx")
    stream = tx_stream(tx_dev, freq=433.8e6)
    rx_dev = open_device(serial, QUIET)
    rate = 1e6
    at = rx_dev.getHardwareTime() + 150_000_000
    try:
        write_all(tx_dev, stream, np.full(20_000, 0.5, np.complex64), SOAPY_SDR_HAS_TIME | SOAPY_SDR_END_BURST, at)
        x, t0 = receive(rx_dev, 300_000, freq=433.8e6, rate=rate)
    finally:
        close(tx_dev, stream)
    on = np.flatnonzero(np.abs(x) > 0.5 * np.abs(x).max())
    start_ns = t0 + int(on[0]) * (10**9 // int(rate))  # integers: a double's step near 1.8e18 ns is 256 ns
    assert abs(start_ns - at) <= 10**9 // int(rate) + 1
    assert len(on) == pytest.approx(20_000, abs=2)


def test_the_air_file_is_fixed_size_and_a_dead_transmitters_slot_is_reused(serial, air):
    holder = Process(python(TONE_TX, "--hold", *[f"{serial}h{i}" for i in range(8)]))  # every slot
    holder.wait_line("^holding$")
    size = os.path.getsize(air)
    dev = open_device(serial + "tx", "pace=false")
    assert len(json.loads(dev.readSetting("air_slots"))) == 8
    holder.stop(signal.SIGKILL)
    stream = tx_stream(dev)
    try:
        for _ in range(20):  # 20 × 1 M samples: several times every ring
            write_all(dev, stream, np.zeros(1 << 20, np.complex64))
        write_all(dev, stream, np.zeros(0, np.complex64), SOAPY_SDR_END_BURST)
        slots = json.loads(dev.readSetting("air_slots"))
        assert [s["pid"] for s in slots if s["alive"]] == [os.getpid()], "the dead process's slot was not taken over"
        assert len(slots) == 8 and all(s["pid"] == holder.proc.pid for s in slots if not s["alive"])
    finally:
        close(dev, stream)
    assert os.path.getsize(air) == size
    assert os.getpid() not in [s["pid"] for s in json.loads(dev.readSetting("air_slots"))]  # closing gave it back


def test_the_air_can_be_switched_off(serial, tmp_path):
    dev = open_device(serial, "air=off")
    assert dev.readSetting("air") == ""
    stream = tx_stream(dev)
    try:
        write_all(dev, stream, np.zeros(1000, np.complex64), SOAPY_SDR_END_BURST)  # taken, heard by nobody
    finally:
        close(dev, stream)
