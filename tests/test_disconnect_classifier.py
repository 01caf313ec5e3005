"""The one function that decides when a radio is gone, tested with explicit times."""

import pytest
from gnuradio import ria

V = ria.read_verdict
SOAPY_TIMEOUT, SOAPY_STREAM_ERROR, SOAPY_CORRUPTION, SOAPY_OVERFLOW = -1, -2, -3, -4
SOAPY_NOT_SUPPORTED, SOAPY_TIME_ERROR, SOAPY_UNDERFLOW = -5, -6, -7


def fresh(timeout=2.0, now=100.0):
    c = ria.disconnect_classifier(timeout)
    c.reset(now)
    return c


def test_samples_and_short_timeouts_are_fine():
    c = fresh()
    assert c.on_code(4096, 100.1) == V.samples
    assert c.on_code(SOAPY_TIMEOUT, 101.0) == V.transient
    assert c.on_code(SOAPY_TIMEOUT, 102.0) == V.transient  # 1.9 s since samples


def test_timeout_streak_longer_than_limit_is_a_disconnect():
    c = fresh(timeout=2.0)
    c.on_samples(100.0)
    assert c.on_code(SOAPY_TIMEOUT, 101.9) == V.transient
    assert c.on_code(SOAPY_TIMEOUT, 102.1) == V.disconnected
    assert "no samples for 2.1 s" in c.reason() and "timeouts" in c.reason()


def test_samples_reset_the_streak():
    c = fresh(timeout=1.0)
    assert c.on_code(SOAPY_TIMEOUT, 100.9) == V.transient
    assert c.on_samples(100.95) == V.samples
    assert c.on_code(SOAPY_TIMEOUT, 101.9) == V.transient


def test_overflow_is_its_own_verdict_and_proves_the_radio_is_alive():
    c = fresh(timeout=1.0)
    assert c.on_code(SOAPY_OVERFLOW, 100.9) == V.overflow
    assert c.on_code(SOAPY_TIMEOUT, 101.5) == V.transient


@pytest.mark.parametrize("code", [SOAPY_STREAM_ERROR, SOAPY_NOT_SUPPORTED, -99])
def test_hard_error_codes_count_after_a_short_streak(code):
    c = fresh()
    streak = ria.disconnect_classifier.hard_error_streak
    for i in range(streak - 1):
        assert c.on_code(code, 100.0 + i * 0.001) == V.transient
    assert c.on_code(code, 100.1) == V.disconnected
    assert "stream error" in c.reason()


def test_a_lone_stream_error_between_samples_is_transient():
    c = fresh()
    for i in range(10):
        t = 100.0 + i
        assert c.on_code(SOAPY_STREAM_ERROR, t) == V.transient
        assert c.on_code(SOAPY_STREAM_ERROR, t + 0.1) == V.transient
        assert c.on_samples(t + 0.5) == V.samples


@pytest.mark.parametrize("code", [SOAPY_CORRUPTION, SOAPY_TIME_ERROR, SOAPY_UNDERFLOW])
def test_soft_errors_only_count_through_silence(code):
    c = fresh(timeout=1.0)
    for i in range(20):
        assert c.on_code(code, 100.0 + i * 0.01) == V.transient
    assert c.on_code(code, 101.5) == V.disconnected


@pytest.mark.parametrize("text", [
    "LIBUSB_ERROR_NO_DEVICE: No such device (errno 19)",
    "[Errno 19] No such device",
    "read failed: Input/output error (errno 5)",
    "OSError: [Errno 5] Input/output error",
    "uhd: EIO while receiving",
    "usb transfer: LIBUSB_ERROR_IO",
    "bladerf: Device not found",
    "airspy: device removed",
    "write: Broken pipe",
])
def test_exceptions_that_mean_gone(text):
    assert ria.disconnect_classifier.text_means_gone(text)
    c = fresh()
    assert c.on_exception(text, 100.01) == V.disconnected
    assert c.reason() == text


@pytest.mark.parametrize("text", [
    "lookup table reinitialized",
    "errno 50 something else",
    "stream timeout",
    "overflow detected",
    "eioxyz was here",
])
def test_other_exceptions_are_transient_until_silence(text):
    assert not ria.disconnect_classifier.text_means_gone(text)
    c = fresh(timeout=1.0)
    assert c.on_exception(text, 100.5) == V.transient
    assert c.on_exception(text, 101.2) == V.disconnected
    assert text in c.reason()


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="no_samples_timeout_s"):
        ria.disconnect_classifier(0.0)
