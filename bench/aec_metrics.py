"""What an echo canceller did to a scenario: the output minus the parts that were not echo is the residual echo."""

import numpy as np


def _db(num, den):
    return 10 * np.log10(num / den) if num > 0 and den > 0 else float("nan")


def erle_db(out, s, start, stop):
    """Echo power over residual echo power, in dB, on samples [start, stop)."""
    residual = out[start:stop] - s["near"][start:stop] - s["noise"][start:stop]
    return _db(np.sum(s["echo"][start:stop] ** 2), np.sum(residual ** 2))


def steady_erle_db(out, s, tail_fraction=0.25):
    n = len(out)
    return erle_db(out, s, int(n * (1 - tail_fraction)), n)


def time_to_db(out, s, target_db=20.0, window_s=1.0):
    """Seconds until the ERLE over a sliding window (half-window hops) first reaches target_db; None if never."""
    rate, n = s["rate"], len(out)
    w = int(window_s * rate)
    active = np.mean(s["echo"] ** 2) * 0.1  # windows with little echo say nothing about cancellation
    for start in range(0, n - w, w // 2):
        if np.mean(s["echo"][start:start + w] ** 2) > active and erle_db(out, s, start, start + w) >= target_db:
            return (start + w) / rate
    return None


def near_attenuation_db(out, s):
    """How much the near-end speech lost, in dB: its gain in the output found by projection, while it talks."""
    near = s["near"][:len(out)]
    talking = np.abs(near) > 0
    if not np.any(talking):
        return None
    gain = np.dot(out[talking], near[talking]) / np.dot(near[talking], near[talking])
    return -20 * np.log10(gain) if gain > 0 else float("inf")
