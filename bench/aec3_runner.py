"""WebRTC AEC3 (the pywebrtc-audio package) over whole signals, in its 10 ms frames."""

import time

import numpy as np
import pywebrtc_audio


def run(mic, ref, rate):
    """(output, seconds of wall time) for float32 signals of equal length in -1..1."""
    frame = rate // 100
    n = (min(len(mic), len(ref)) // frame) * frame
    to16 = lambda x: np.clip(np.rint(np.asarray(x[:n]) * 32767), -32768, 32767).astype(np.int16)
    m, r = to16(mic), to16(ref)
    aec = pywebrtc_audio.EchoCanceller(sample_rate=rate)
    out = np.zeros(n, np.float32)
    t0 = time.perf_counter()
    for k in range(0, n, frame):
        y = np.asarray(aec.process(m[k:k + frame], r[k:k + frame]))
        out[k:k + frame] = y.astype(np.float32) / (32768.0 if y.dtype == np.int16 else 1.0)
    return out, time.perf_counter() - t0
