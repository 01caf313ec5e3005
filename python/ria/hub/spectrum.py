"""What an agent's radio sees, measured by the hub from the IQ it receives: an averaged power spectrum.

The meter looks at a slice of the stream a few times a second, never at every frame, so that
it costs the hub little however fast the agent streams.
"""

import time

import numpy as np

from ..wire.framing import to_complex

FFT_SIZE = 1024
SEGMENTS = 8  # FFTs averaged per update
AVERAGING = 0.5  # weight of the newest update in the running average
REDUCED_SIZES = (64, 128, 256, 512)  # bins the page's overview may ask for (divisors of FFT_SIZE)


class SpectrumMeter:
    def __init__(self, updates_per_s=5.0, clock=time.monotonic):
        self._period = 1.0 / updates_per_s
        self._clock = clock
        self._window = np.hanning(FFT_SIZE).astype(np.float32)
        self._norm = float(np.sum(self._window ** 2))
        self._due = 0.0
        self._chunks = []
        self._have = 0
        self.power_db = None  # FFT_SIZE bins, DC in the middle
        self.updates = 0

    def reset(self):
        """The tuning changed: what was averaged so far is about another band."""
        self.power_db = None
        self._chunks, self._have = [], 0

    def feed(self, payload, sample_format):
        """Offers one binary frame; the meter keeps only what it needs."""
        if self._clock() < self._due:
            return
        self._chunks.append(to_complex(payload, sample_format))
        self._have += len(self._chunks[-1])
        if self._have >= FFT_SIZE * SEGMENTS or self._have >= FFT_SIZE and len(self._chunks) >= SEGMENTS:
            samples = np.concatenate(self._chunks)
            self._chunks, self._have = [], 0
            self._update(samples)
            self._due = self._clock() + self._period

    def _update(self, samples):
        nseg = min(SEGMENTS, len(samples) // FFT_SIZE)
        segments = samples[-nseg * FFT_SIZE:].reshape(nseg, FFT_SIZE) * self._window
        psd = np.mean(np.abs(np.fft.fft(segments, axis=1)) ** 2, axis=0) / self._norm
        db = 10 * np.log10(np.fft.fftshift(psd) + 1e-20)
        self.power_db = db if self.power_db is None else (1 - AVERAGING) * self.power_db + AVERAGING * db
        self.updates += 1

    def peak_offset_hz(self, sample_rate):
        """Offset from the center frequency of the strongest bin (DC excluded), or None before any update."""
        if self.power_db is None or not sample_rate:
            return None
        db = self.power_db.copy()
        db[FFT_SIZE // 2] = -np.inf  # the DC bin holds the radio's offset, not an emitter
        return (int(np.argmax(db)) - FFT_SIZE // 2) * sample_rate / FFT_SIZE

    def snapshot(self, sample_rate, center_frequency):
        if self.power_db is None or not sample_rate:  # no rate yet (joined mid-session): no frequency axis
            return None
        offset = self.peak_offset_hz(sample_rate)
        return {"bins": [round(float(v), 1) for v in self.power_db], "sample_rate": sample_rate,
                "center_frequency": center_frequency, "peak_frequency": center_frequency + offset,
                "peak_db": round(float(np.max(self.power_db)), 1), "updates": self.updates}

    def reduced(self, bins, sample_rate, center_frequency):
        """The spectrum in `bins` (one of REDUCED_SIZES) bins, each the strongest of the FFT bins it covers,
        so that a narrow carrier still shows; None before any update."""
        if self.power_db is None or not sample_rate:
            return None
        pooled = self.power_db.reshape(bins, FFT_SIZE // bins).max(axis=1)
        return {"bins": [round(float(v), 1) for v in pooled], "sample_rate": sample_rate,
                "center_frequency": center_frequency, "updates": self.updates}
