"""How far a tail-long linear filter can cancel the bench's image rooms at all, next to what ria.aec's filter does.

    source scripts/env.sh; python bench/aec_ceiling.py [--seconds 20] [--margins 5,8,10]

ria.aec reads the reference so that the located echo (the direct sound's peak) sits MARGIN_S (5 ms) into its
filter, which spans the tail from there. Whatever of the room's response lies before that first tap or after
the tail cannot be modelled. pyroomacoustics high-passes each response with a zero-phase (forward-backward)
filter, which spreads the response's DC part before the direct sound too, so in the longer rooms part of the
echo arrives "early". Per room: where the direct sound is, the share of the response before the filter's
first tap, and the steady ERLE (last quarter) of the least-squares best filter of the tail's length at that
alignment, fitted on the whole signal without noise (a ceiling no adaptive filter passes), for each margin;
then ria.aec's own steady ERLE behind 300 ms with the residual suppressor off (its linear filter alone) and on.
"""

import argparse
import os
import sys

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import fftconvolve

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aec_runner  # noqa: E402
import bench_aec  # noqa: E402
import aec_signals as signals  # noqa: E402

RATE = 16000
ROOMS = [(0.25, 0.5, 0), (0.5, 1.0, 0), (0.5, 1.0, 1), (0.8, 2.0, 0)]


def steady_db(echo, residual):
    a = len(echo) * 3 // 4
    return 10 * np.log10(np.sum(echo[a:] ** 2) / np.sum(residual[a:] ** 2))


def ceiling(x, h, start, taps):
    """(share of h before `start` in dB, steady ERLE of the least-squares filter h[start:start + taps])."""
    n = len(x)
    echo = fftconvolve(x, h)[:n]
    shifted = np.concatenate([np.zeros(start), x])[:n] if start >= 0 else np.concatenate([x[-start:], np.zeros(-start)])
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xs, es = np.fft.rfft(shifted, size), np.fft.rfft(echo, size)
    auto = np.fft.irfft(np.abs(xs) ** 2, size)[:taps]
    cross = np.fft.irfft(np.conj(xs) * es, size)[:taps]
    auto[0] *= 1 + 1e-6
    w = solve_toeplitz(auto, cross)
    before = np.sum(h[:max(start, 0)] ** 2)
    return (10 * np.log10(before) if before > 0 else float("-inf")), steady_db(echo, echo - fftconvolve(shifted, w)[:n])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--margins", default="5,8,10", help="ms before the direct sound's peak, comma-separated")
    args = parser.parse_args()
    if not 5 <= args.seconds <= 120:
        parser.error("--seconds must be 5..120")
    try:
        margins = [float(m) for m in args.margins.split(",")]
    except ValueError:
        parser.error("--margins: numbers in ms, comma-separated")
    if not margins or len(margins) > 6 or any(not 0 <= m <= 50 for m in margins):
        parser.error("--margins: one to six, each 0..50 ms")
    _, img = bench_aec.conditions(args.seconds)
    far, near = signals.voices(RATE)
    n = int(RATE * args.seconds)
    x = np.tile(np.concatenate([far, np.zeros(RATE * 2, np.float32)]), int(np.ceil(n / (len(far) + 2 * RATE))))[:n]
    taps = int(round(bench_aec.TAIL_S * RATE))
    head = " | ".join(f"{m:g} ms: before, LS" for m in margins)
    print(f"{'image room':24s} | direct | {head} | ria.aec linear / with suppressor")
    for rt60, distance, seed in ROOMS:
        rooms = img(RATE, rt60, distance, seed)
        h = rooms[0].astype(np.float64)
        peak = int(np.argmax(np.abs(h)))
        cells = []
        for m in margins:
            before, best = ceiling(x.astype(np.float64), h, peak - int(round(m * RATE / 1000)), taps)
            cells.append(("   none" if before == float("-inf") else f"{before:6.1f} dB") + f" {best:5.1f} dB")
        s = signals.scenario(rate=RATE, seconds=args.seconds, far=far, near=near, noise_db=-65.0, rooms=rooms, delay_s=0.3)
        own = []
        for res in (False, True):
            run = lambda mic, ref: aec_runner.run(mic, ref, RATE, int(RATE * bench_aec.FRAME_S), bench_aec.TAIL_S, 1.0, res)[0]
            own.append(bench_aec.measure(run, s, None)[0])
        print(f"RT60 {rt60} s {distance} m seed {seed}".ljust(24) + f" | {peak / RATE * 1000:4.1f} ms | " + " | ".join(cells) +
              f" | {own[0]:5.1f} / {own[1]:5.1f} dB", flush=True)


if __name__ == "__main__":
    main()
