"""Samples to binary frames: sample-format conversion and exact-size framing."""

import numpy as np

from .protocol import SAMPLE_FORMATS

_SCALE = {"cs16": (32767.0, np.int16), "cs8": (127.0, np.int8)}


def convert(samples, sample_format):
    """Little-endian bytes of complex64 (or float32) samples in cf32, cs16 or cs8.

    For real (float) input the format names the number type of each value.
    """
    if sample_format == "cf32":
        return samples.astype(samples.dtype.newbyteorder("<"), copy=False).tobytes()
    if sample_format not in _SCALE:
        raise ValueError(f"sample_format must be one of {', '.join(SAMPLE_FORMATS)}, got {sample_format!r}")
    scale, dtype = _SCALE[sample_format]
    values = samples.view(np.float32) if np.iscomplexobj(samples) else samples
    scaled = np.multiply(values, scale, dtype=np.float32)
    np.clip(scaled, -scale, scale, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.dtype(dtype).newbyteorder("<")).tobytes()


class FrameAssembler:
    """Collects samples into frames of exactly `buffer_size`; `cut()` ends a short one."""

    def __init__(self, buffer_size, sample_format, dtype=np.complex64):
        if not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
        convert(np.zeros(1, dtype), sample_format)  # rejects a bad format now, not mid-stream
        self.buffer_size = buffer_size
        self.sample_format = sample_format
        self._buf = np.empty(buffer_size, dtype)
        self._fill = 0

    @property
    def pending(self):
        return self._fill

    def push(self, samples):
        """Yields (payload, nsamples) for every frame that samples complete."""
        n, pos = len(samples), 0
        if self._fill:
            take = min(n, self.buffer_size - self._fill)
            self._buf[self._fill:self._fill + take] = samples[:take]
            self._fill += take
            pos = take
            if self._fill < self.buffer_size:
                return
            self._fill = 0
            yield convert(self._buf, self.sample_format), self.buffer_size
        while n - pos >= self.buffer_size:  # whole frames straight from the input
            yield convert(samples[pos:pos + self.buffer_size], self.sample_format), self.buffer_size
            pos += self.buffer_size
        rest = n - pos
        if rest:
            self._buf[:rest] = samples[pos:]
            self._fill = rest

    def cut(self):
        """(payload, nsamples) of the partial frame, or None when there is none."""
        if not self._fill:
            return None
        n, self._fill = self._fill, 0
        return convert(self._buf[:n], self.sample_format), n


def to_real(payload, sample_format):
    """The inverse of convert(): frame bytes back to float32 values (two a sample for IQ)."""
    if sample_format == "cf32":
        return np.frombuffer(payload, dtype="<f4").astype(np.float32)
    if sample_format not in _SCALE:
        raise ValueError(f"sample_format must be one of {', '.join(SAMPLE_FORMATS)}, got {sample_format!r}")
    scale, dtype = _SCALE[sample_format]
    return np.frombuffer(payload, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.float32) / np.float32(scale)


def to_complex(payload, sample_format):
    """The inverse of convert() for complex streams: frame bytes back to complex64."""
    if sample_format == "cf32":
        return np.frombuffer(payload, dtype="<c8")
    return to_real(payload, sample_format).view(np.complex64)
