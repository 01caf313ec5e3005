"""riasim, the simulated radio, through SoapySDR's own loader and API."""

import subprocess
import time

import numpy as np
import pytest
import SoapySDR
from SoapySDR import SOAPY_SDR_CF32, SOAPY_SDR_CS16, SOAPY_SDR_RX

from gnuradio.ria import riasim_control
from helpers import peak_offset_hz

TONE_ARGS = "emitters=100.25e6:-40,noise=-110"


def open_device(serial, extra=""):
    return SoapySDR.Device(f"driver=riasim,serial={serial}" + (f",{extra}" if extra else ""))


def read_samples(dev, n, fmt=SOAPY_SDR_CF32):
    dtype = np.complex64 if fmt == SOAPY_SDR_CF32 else np.int16
    stream = dev.setupStream(SOAPY_SDR_RX, fmt, [0])
    dev.activateStream(stream)
    buf = np.zeros(n if fmt == SOAPY_SDR_CF32 else 2 * n, dtype)
    got, results = 0, []
    try:
        while got < n:
            view = buf[got:] if fmt == SOAPY_SDR_CF32 else buf[2 * got:]
            sr = dev.readStream(stream, [view], n - got, timeoutUs=500000)
            results.append(sr)
            assert sr.ret > 0, f"readStream returned {sr.ret}"
            got += sr.ret
    finally:
        dev.deactivateStream(stream)
        dev.closeStream(stream)
    if fmt == SOAPY_SDR_CS16:
        buf = (buf[0::2] + 1j * buf[1::2]).astype(np.complex64) / 32767
    return buf, results


def test_probe_shows_a_sensible_device(serial):
    out = subprocess.run(["SoapySDRUtil", f"--probe=driver=riasim,serial={serial}"],
                         capture_output=True, text=True, timeout=60).stdout
    for expected in ("driver=riasim", f"serial={serial}", "Channels: 1 Rx, 1 Tx", "Full-duplex: YES", "Stream formats: CF32, CS16",
                     "Full freq range: [1, 6000] MHz", "Sample rates: [0.048, 61.44] MSps",
                     "Full gain range: [0, 70, 1] dB", "Antennas: RX, CAL", "Supports AGC: YES",
                     "Timestamps: YES"):
        assert expected in out, f"{expected!r} missing from probe output:\n{out}"


def test_enumerates_and_reports_ranges(serial):
    found = SoapySDR.Device.enumerate(f"driver=riasim,serial={serial}")
    assert [dict(f)["serial"] for f in found] == [serial]
    dev = open_device(serial)
    assert dev.getDriverKey() == "riasim"
    freq = dev.getFrequencyRange(SOAPY_SDR_RX, 0)[0]
    rate = dev.getSampleRateRange(SOAPY_SDR_RX, 0)[0]
    gain = dev.getGainRange(SOAPY_SDR_RX, 0)
    assert (freq.minimum(), freq.maximum()) == (1e6, 6e9)
    assert (rate.minimum(), rate.maximum()) == (48e3, 61.44e6)
    assert (gain.minimum(), gain.maximum()) == (0, 70)
    with pytest.raises(Exception, match="outside"):
        dev.setFrequency(SOAPY_SDR_RX, 0, 7e9)


@pytest.mark.parametrize("fmt", [SOAPY_SDR_CF32, SOAPY_SDR_CS16])
def test_tone_at_its_baseband_offset_in_each_format(serial, fmt):
    dev = open_device(serial, TONE_ARGS + ",pace=false")
    dev.setSampleRate(SOAPY_SDR_RX, 0, 1e6)
    dev.setFrequency(SOAPY_SDR_RX, 0, 100e6)
    dev.setGain(SOAPY_SDR_RX, 0, 20)
    x, _ = read_samples(dev, 1 << 16, fmt)
    assert abs(peak_offset_hz(x, 1e6) - 250e3) < 1e6 / (1 << 16) * 1.5
    # -40 dBm + 20 dB gain = -20 dBFS: amplitude 0.1 in both formats.
    assert np.median(np.abs(x)) == pytest.approx(0.1, rel=0.05)


def test_retune_moves_the_tone_by_the_step(serial):
    dev = open_device(serial, TONE_ARGS + ",pace=false")
    dev.setSampleRate(SOAPY_SDR_RX, 0, 1e6)
    offsets = []
    for center in (100.0e6, 100.1e6, 100.37e6):
        dev.setFrequency(SOAPY_SDR_RX, 0, center)
        x, _ = read_samples(dev, 1 << 15)
        offsets.append(peak_offset_hz(x, 1e6))
    bin_hz = 1e6 / (1 << 15)
    assert offsets[0] - offsets[1] == pytest.approx(100e3, abs=2 * bin_hz)
    assert offsets[1] - offsets[2] == pytest.approx(270e3, abs=2 * bin_hz)


def test_a_gain_change_applies_from_the_first_sample_read_after_it(serial):
    """What ria.sdr_source's rx_gain tag relies on: no sample read after setGain is at the old gain, none before
    at the new one."""
    dev = open_device(serial, "emitters=100.2e6:-30,noise=-140,pace=false")
    dev.setSampleRate(SOAPY_SDR_RX, 0, 1e6)
    dev.setGain(SOAPY_SDR_RX, 0, 10)
    stream = dev.setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    try:
        levels = []
        for gain in (20, 30, 0):
            buf = np.zeros(4000, np.complex64)
            assert dev.readStream(stream, [buf], len(buf)).ret == len(buf)
            levels.append(np.abs(buf))
            dev.setGain(SOAPY_SDR_RX, 0, gain)
    finally:
        dev.deactivateStream(stream)
        dev.closeStream(stream)
    for level, gain in zip(levels, (10, 20, 30)):
        assert np.allclose(level, 10 ** ((gain - 30) / 20), rtol=1e-3), gain


def test_emitter_outside_the_band_is_not_seen(serial):
    dev = open_device(serial, TONE_ARGS + ",pace=false")
    dev.setSampleRate(SOAPY_SDR_RX, 0, 1e6)
    dev.setFrequency(SOAPY_SDR_RX, 0, 200e6)
    x, _ = read_samples(dev, 1 << 14)
    assert np.max(np.abs(x)) < 0.01  # noise only: -110 dBm + 30 dB


def test_hardware_time_follows_the_sample_count(serial):
    dev = open_device(serial, "pace=false")
    dev.setSampleRate(SOAPY_SDR_RX, 0, 2e6)
    _, results = read_samples(dev, 200000)
    times = [r.timeNs for r in results]
    counts = np.cumsum([0] + [r.ret for r in results[:-1]])
    assert np.allclose(np.array(times) - times[0], counts * 1e9 / 2e6, atol=1)


def test_paced_mode_delivers_no_faster_than_the_rate(serial):
    dev = open_device(serial)
    dev.setSampleRate(SOAPY_SDR_RX, 0, 1e6)
    start = time.monotonic()
    read_samples(dev, 300000)
    assert time.monotonic() - start >= 0.29


def test_unplugged_device_neither_enumerates_nor_opens(serial):
    riasim_control.unplug(serial)
    assert SoapySDR.Device.enumerate(f"driver=riasim,serial={serial}") == ()
    with pytest.raises(RuntimeError):
        open_device(serial)
    riasim_control.replug(serial)
    assert len(SoapySDR.Device.enumerate(f"driver=riasim,serial={serial}")) == 1
    assert open_device(serial).getDriverKey() == "riasim"


def read_once(dev, stream, n=1024, timeout_us=50000):
    buf = np.zeros(n, np.complex64)
    return dev.readStream(stream, [buf], n, timeoutUs=timeout_us)


def wait_for_ret(dev, stream, wanted, timeout=5.0):
    """Reads until readStream returns `wanted` (the control file is polled, not pushed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ret = read_once(dev, stream).ret
        if ret == wanted:
            return True
    return False


@pytest.mark.parametrize("style,wanted", [("error", SoapySDR.SOAPY_SDR_STREAM_ERROR),
                                          ("timeout", SoapySDR.SOAPY_SDR_TIMEOUT)])
def test_unplug_styles_that_return_codes(serial, style, wanted):
    dev = open_device(serial)
    stream = dev.setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    try:
        assert read_once(dev, stream, timeout_us=500000).ret > 0
        riasim_control.unplug(serial, style)
        assert wait_for_ret(dev, stream, wanted)
        assert all(read_once(dev, stream).ret == wanted for _ in range(3))
        riasim_control.replug(serial)
        assert wait_for_ret(dev, stream, 1024)
    finally:
        dev.closeStream(stream)


@pytest.mark.parametrize("style,text", [("nodev", "No such device"), ("eio", "Input/output error")])
def test_unplug_styles_that_raise(serial, style, text):
    dev = open_device(serial)
    stream = dev.setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    try:
        riasim_control.unplug(serial, style)
        with pytest.raises(Exception, match=text):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                read_once(dev, stream)
    finally:
        dev.closeStream(stream)


def test_overflow_burst_from_the_control_file(serial):
    dev = open_device(serial)
    stream = dev.setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    try:
        assert read_once(dev, stream, timeout_us=500000).ret > 0
        riasim_control.overflow(serial, 2)
        assert wait_for_ret(dev, stream, SoapySDR.SOAPY_SDR_OVERFLOW)
    finally:
        dev.closeStream(stream)


def test_timeline_from_device_args(serial):
    dev = open_device(serial, "faults=unplug:error@0.2;replug@0.5")
    stream = dev.setupStream(SOAPY_SDR_RX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    try:
        assert wait_for_ret(dev, stream, SoapySDR.SOAPY_SDR_STREAM_ERROR)
        assert SoapySDR.Device.enumerate(f"driver=riasim,serial={serial}") == ()
        assert wait_for_ret(dev, stream, 1024)
    finally:
        dev.closeStream(stream)


def test_a_fast_crystal_and_its_correction(serial):
    """xtal_ppm=100: tuned to 100 MHz the receiver sits 10 kHz high, until setFrequencyCorrection(100) undoes it."""
    dev = open_device(serial, TONE_ARGS + ",pace=false,xtal_ppm=100")
    dev.setSampleRate(SOAPY_SDR_RX, 0, 1e6)
    dev.setFrequency(SOAPY_SDR_RX, 0, 100e6)
    assert dev.hasFrequencyCorrection(SOAPY_SDR_RX, 0)
    bin_hz = 1e6 / (1 << 16)
    assert peak_offset_hz(read_samples(dev, 1 << 16)[0], 1e6) == pytest.approx(240e3, abs=2 * bin_hz)
    dev.setFrequencyCorrection(SOAPY_SDR_RX, 0, 100.0)
    assert dev.getFrequencyCorrection(SOAPY_SDR_RX, 0) == 100.0
    assert dev.getFrequency(SOAPY_SDR_RX, 0) == 100e6  # the frequency asked for, now true
    assert peak_offset_hz(read_samples(dev, 1 << 16)[0], 1e6) == pytest.approx(250e3, abs=2 * bin_hz)
    with pytest.raises(IndexError, match="outside"):  # SoapySDR's binding turns std::out_of_range into IndexError
        dev.setFrequencyCorrection(SOAPY_SDR_RX, 0, 5000.0)


def test_without_frequency_correction(serial):
    dev = open_device(serial, "freq_correction=false")
    assert not dev.hasFrequencyCorrection(SOAPY_SDR_RX, 0)
    with pytest.raises(RuntimeError, match="no frequency correction"):
        dev.setFrequencyCorrection(SOAPY_SDR_RX, 0, 1.0)


def test_driver_settings_are_listed_written_and_read_back(serial):
    dev = open_device(serial)
    info = {a.key: a for a in dev.getSettingInfo()}
    assert {"biastee", "direct_samp"} <= set(info) and list(info["direct_samp"].options) == ["0", "1", "2"]
    assert (dev.readSetting("biastee"), dev.readSetting("direct_samp")) == ("false", "0")
    dev.writeSetting("biastee", "true")
    dev.writeSetting("direct_samp", "2")
    assert (dev.readSetting("biastee"), dev.readSetting("direct_samp")) == ("true", "2")
    for key, value in (("biastee", "yes"), ("direct_samp", "3"), ("no_such_key", "1")):
        with pytest.raises(ValueError, match=key):
            dev.writeSetting(key, value)
    assert (dev.readSetting("biastee"), dev.readSetting("direct_samp")) == ("true", "2")


@pytest.mark.parametrize("args,named", [("emitters=abc", "emitters"), ("faults=melt@1", "faults"),
                                        ("noise=loud", "noise"), ("faults=unplug:zap@1", "unplug style"),
                                        ("xtal_ppm=5000", "xtal_ppm")])
def test_bad_device_args_name_the_argument(serial, args, named):
    with pytest.raises((RuntimeError, ValueError, IndexError), match=named):
        open_device(serial, args)
    assert open_device(serial).getDriverKey() == "riasim"  # nothing half-made was left behind


def test_control_cli_rejects_bad_input(serial):
    with pytest.raises(ValueError, match="unplug style"):
        riasim_control.unplug(serial, "melt")
    assert riasim_control.main(["overflow", serial, "--count", "0"]) == 2
