"""Blocks and signal checks shared by the flowgraph tests."""

import threading
import time
import wave

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


# One clean, strong tone 200 kHz above 100 MHz over a negligible noise floor: a level that is exact per sample.
AGENT_TONE = "emitters=100.2e6:-30,noise=-140"


def running_agent(hub, serial, flowgraphs, **kwargs):
    """ria.iq_agent (riasim serial `serial` with AGENT_TONE by default) on the test hub, its first heartbeat in."""
    from gnuradio import ria
    from hub_server import TOKEN

    settings = dict(device=f"driver=riasim,serial={serial},{AGENT_TONE}", buffer_size=4096, hardware_names="mock",
                    reopen_interval=0.1, disconnect_timeout=0.5)
    settings.update(kwargs)
    tb = gr.top_block()
    agent = ria.iq_agent(url=hub.url(), token=TOKEN, **settings)
    tb.connect(agent)  # a hier block without stream ports
    tb.agent = agent  # GNU Radio does not own Python blocks: the flowgraph keeps it alive
    flowgraphs(tb)
    assert hub.wait_text("heartbeat")
    return agent


def stream_record(hub):
    """The session as the hub saw it, in arrival order: (stream_infos, frame sizes, IQ) with every stream_info
    checked to sit exactly at the index it claims (a gap fails: these tests stream slowly enough for none)."""
    infos, sizes, chunks, index = [], [], [], 0
    for kind, item in list(hub.received):
        if kind == "binary":
            sizes.append(len(item) // 8)
            chunks.append(item)
            index += len(item) // 8
        elif item.get("type") == "stream_info":
            assert item["sample_index"] == index, (item, index)
            infos.append(item)
        else:
            assert item.get("type") != "gap", item
    return infos, sizes, np.frombuffer(b"".join(chunks), np.complex64)


def write_wav(path, samples, rate, channels=1):
    """A 16-bit PCM WAV of float samples in -1..1 (interleaved when channels > 1), clipped at full scale."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.rint(np.asarray(samples) * 32767), -32767, 32767).astype("<i2").tobytes())
