"""Blocks and signal checks shared by the flowgraph tests."""

import threading
import time

import numpy as np
import pmt
from gnuradio import gr


class stream_recorder(gr.sync_block):
    """Counts every complex sample, keeps the first `keep`, and records all tags."""

    def __init__(self, keep=1 << 20):
        gr.sync_block.__init__(self, name="stream_recorder", in_sig=[np.complex64], out_sig=None)
        self.keep = keep
        self.count = 0
        self.tags = []
        self._chunks = []
        self._kept = 0
        self._cond = threading.Condition()

    def work(self, input_items, output_items):
        x = input_items[0]
        n = len(x)
        start = self.nitems_read(0)
        for tag in self.get_tags_in_range(0, start, start + n):
            self.tags.append((tag.offset, pmt.symbol_to_string(tag.key), pmt.to_python(tag.value)))
        if self._kept < self.keep:
            part = x[: self.keep - self._kept].copy()
            self._chunks.append(part)
            self._kept += len(part)
        with self._cond:
            self.count += n
            self._cond.notify_all()
        return n

    def wait_count(self, n, timeout):
        """True once at least n samples have arrived; False at timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)

    def samples(self):
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.complex64)

    def tags_named(self, key):
        return [(offset, value) for offset, k, value in self.tags if k == key]


def peak_offset_hz(x, rate):
    """Frequency of the strongest component of x, in Hz relative to the center."""
    n = len(x)
    spectrum = np.abs(np.fft.fft(x * np.hanning(n)))
    freqs = np.fft.fftfreq(n, 1.0 / rate)
    return float(freqs[int(np.argmax(spectrum))])


def instantaneous_hz(x, rate):
    """Per-sample frequency of a clean tone: angle(x[k+1] * conj(x[k])) scaled to Hz."""
    return np.angle(x[1:] * np.conj(x[:-1])) * rate / (2 * np.pi)


def is_event(name):
    return lambda m: isinstance(m, dict) and m.get("event") == name


def wait_until(predicate, timeout, poll=0.01):
    """Polls a condition owned by another thread (a block's state) until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
