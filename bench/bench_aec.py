"""Echo cancellation: ria.aec against plain speexdsp (same frame and tail) and WebRTC AEC3, on real speech.

    source scripts/env.sh; python bench/bench_aec.py [--seconds 20] [--only TEXT]

Far end and near end are espeak-ng voices (music: chords and noise bursts); rooms come from the
image method (pyroomacoustics, "image") or from the generated exponential decay ("generated"); the
microphone has noise at -65 dBFS. ria.aec runs as shipped (residual suppressor on). Per condition:
steady-state ERLE (last quarter), time to 20 dB (1 s windows), the lowest ERLE (0.5 s windows) in the
3 s after a change and how long until a half second is back at 20 dB, near-end attenuation during double
talk, and the real-time factor (wall clock, with the flowgraph around ria.aec). A cost table follows: CPU
time against speexdsp in interleaved rounds, with the flowgraph's own cost taken off (--cost prints only
that). Each system's output is compared with its own output for the microphone without echo and a zero
reference, after removing its latency, so a DC notch, a high-pass or a frame of delay is not counted as
echo or damage.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aec3_runner  # noqa: E402
import aec_cost  # noqa: E402
import aec_rooms  # noqa: E402
import aec_runner  # noqa: E402
import aec_signals as signals  # noqa: E402
import speex_baseline  # noqa: E402

TAIL_S = 0.4
FRAME_S = 0.02


def conditions(seconds):
    half = seconds / 2
    img = lambda rate, rt60, d, seed=0: (aec_rooms.image_room(rate, rt60, d, seed), aec_rooms.image_room(rate, rt60, d + 0.7, seed + 1))
    return [
        ("image RT60 0.25 s 0.5 m, delay 300 ms", dict(room=(0.25, 0.5), delay_s=0.3)),
        ("image RT60 0.5 s 1 m, delay 300 ms", dict(room=(0.5, 1.0), delay_s=0.3)),
        ("image RT60 0.8 s 2 m, delay 500 ms", dict(room=(0.8, 2.0), delay_s=0.5)),
        ("image RT60 0.5 s, +150 ppm + 300 ms", dict(room=(0.5, 1.0), delay_s=0.3, drift_ppm=150.0)),
        ("image RT60 0.5 s, -150 ppm + 300 ms", dict(room=(0.5, 1.0), delay_s=0.3, drift_ppm=-150.0)),
        ("image RT60 0.5 s, -200 ppm + 100 ms", dict(room=(0.5, 1.0), delay_s=0.1, drift_ppm=-200.0)),
        ("image RT60 0.5 s, mic moves at 50%", dict(room=(0.5, 1.0), delay_s=0.3, path_change_s=half, change=half)),
        ("image RT60 0.5 s, delay jumps 20 ms at 50%", dict(room=(0.5, 1.0), delay_s=0.3, jump_s=half, change=half)),
        ("image RT60 0.5 s, double talk", dict(room=(0.5, 1.0), delay_s=0.3, double_talk=True)),
        ("image RT60 0.5 s, music", dict(room=(0.5, 1.0), delay_s=0.3, music=True)),
        ("image RT60 0.5 s, saturating loudspeaker", dict(room=(0.5, 1.0), delay_s=0.3, saturate=3.0)),
        # milder and harder saturation, hard clipping (not the tanh a model could be made for), and the talker's
        # damage while the loudspeaker saturates
        ("image RT60 0.5 s, mild saturation (tanh 1.5 x)", dict(room=(0.5, 1.0), delay_s=0.3, saturate=1.5)),
        ("image RT60 0.5 s, hard saturation (tanh 6 x)", dict(room=(0.5, 1.0), delay_s=0.3, saturate=6.0)),
        ("image RT60 0.5 s, loudspeaker clips at 0.3", dict(room=(0.5, 1.0), delay_s=0.3, clip=0.3)),
        ("image RT60 0.5 s, saturating, double talk", dict(room=(0.5, 1.0), delay_s=0.3, saturate=3.0, double_talk=True)),
        ("generated RT60 0.3 s, aligned", dict()),
        ("generated RT60 0.3 s, delay 300 ms", dict(delay_s=0.3)),
        ("48 kHz image RT60 0.25 s, 300 ms, tail 0.2 s, frame 1024",
         dict(rate=48000, room=(0.25, 0.5), delay_s=0.3, tail=0.2, frame=1024)),
    ], img


def latency(system_out, clean):
    """Samples by which a system's output lags its input (0..1000), from its zero-reference output."""
    n = min(len(system_out), len(clean), 48000)
    c = np.correlate(system_out[:n], clean[:n - 1000], "valid")
    return int(np.argmax(np.abs(c)))


def erle(echo, residual, a, b):
    e, r = np.sum(echo[a:b] ** 2), np.sum(residual[a:b] ** 2)
    return 10 * np.log10(e / r) if e > 0 and r > 0 else float("nan")


def measure(run, s, change):
    rate = s["rate"]
    clean = s["near"] + s["noise"]
    zero_ref = np.zeros_like(s["ref"])
    t0 = time.perf_counter()
    out = run(s["mic"], s["ref"])
    took = time.perf_counter() - t0
    base = run(np.clip(clean, -1, 1), zero_ref)  # the system with no echo to remove
    lag = latency(base, clean)
    n = min(len(out), len(base)) - lag
    out, base, echo = out[lag:lag + n], base[lag:lag + n], s["echo"][:n]
    residual = out - base
    steady = erle(echo, residual, int(n * 0.75), n)
    w = rate
    active = np.mean(echo ** 2) * 0.1
    t20 = None
    for a in range(0, n - w, w // 2):
        if np.mean(echo[a:a + w] ** 2) > active and erle(echo, residual, a, a + w) >= 20:
            t20 = (a + w) / rate
            break
    low = back = None
    if change is not None:
        k, h = int(change * rate), rate // 2
        vals = [erle(echo, residual, a, a + h) for a in range(k, min(n - h, k + 3 * rate), h // 2)
                if np.mean(echo[a:a + h] ** 2) > active]
        low = min(vals) if vals else None
        for a in range(k, n - h, h // 2):  # back to 20 dB: the first half second from the change on at 20 dB
            if np.mean(echo[a:a + h] ** 2) > active and erle(echo, residual, a, a + h) >= 20:
                back = (a + h - k) / rate
                break
    near = None
    talking = np.abs(s["near"][:n]) > 0
    if np.any(talking):
        # the near-end talker's gain in the output with echo, against the output without echo
        g = np.dot(out[talking], base[talking]) / np.dot(base[talking], base[talking])
        near = -20 * np.log10(g) if g > 0 else float("inf")
    return steady, t20, low, back, near, len(out) / rate / took


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", default="", help="run only the conditions whose name contains this")
    parser.add_argument("--cost", action="store_true", help="only the cost table (CPU time against speexdsp)")
    args = parser.parse_args()
    if args.cost:
        cost_table(args.seconds)
        return
    voices = {}
    conds, img = conditions(args.seconds)
    print(f"frame {FRAME_S * 1000:.0f} ms, tail {TAIL_S} s unless named, {args.seconds:.0f} s per condition, 16 kHz "
          "unless named, noise -65 dBFS")
    print()
    print("| condition | canceller | steady ERLE dB | time to 20 dB s | min after change dB | back to 20 dB s | "
          "near-end attenuation dB | RTF |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, cond in conds:
        if args.only not in label:
            continue
        cond = dict(cond)
        rate = cond.pop("rate", 16000)
        if rate not in voices:
            voices[rate] = (signals.speech(signals.FAR_TEXT, "en-us", rate),
                            signals.speech(signals.NEAR_TEXT, "en-gb+f3", rate))
        far, near = voices[rate]
        if cond.pop("music", False):
            far = signals.music(rate, 20)
        room = cond.pop("room", None)
        change = cond.pop("change", None)
        tail = cond.pop("tail", TAIL_S)
        frame = cond.pop("frame", None) or int(FRAME_S * rate)
        rooms = img(rate, *room) if room else None
        s = signals.scenario(rate=rate, seconds=args.seconds, far=far, near=near, noise_db=-65.0, rooms=rooms, **cond)
        systems = [
            ("speexdsp", lambda m, r: speex_baseline.cancel(m, r, rate, frame, int(tail * rate))),
            ("ria.aec", lambda m, r: aec_runner.run(m, r, rate, frame, tail, 1.0, True)[0]),
            ("WebRTC AEC3", lambda m, r: aec3_runner.run(m, r, rate)[0]),
        ]
        for name, run in systems:
            steady, t20, low, back, att, rtf = measure(run, s, change)
            fmt = lambda v: "–" if v is None else f"{v:.1f}"
            never = "never" if change is not None else "–"
            print(f"| {label} | {name} | {steady:.1f} | {'never' if t20 is None else f'{t20:.1f}'} | {fmt(low)} | "
                  f"{never if back is None else f'{back:.2f}'} | "
                  f"{'–' if att is None else f'{att:.2f}'} | {rtf:.0f} |", flush=True)

    if not args.only:
        print()
        cost_table(args.seconds)


def cost_table(seconds):
    print("| rate, frame, tail | speexdsp CPU s | ria.aec CPU s (flowgraph taken off) | ratio | flowgraph CPU s |")
    print("|---|---:|---:|---:|---:|")
    for rate, frame, tail in ((16000, 320, 0.4), (48000, 1024, 0.2)):
        far = signals.speech(signals.FAR_TEXT, "en-us", rate)
        s = signals.scenario(rate=rate, seconds=seconds, far=far, delay_s=0.3, noise_db=-65.0)
        speex, ria, graph = aec_cost.measure(s, frame, tail)
        print(f"| {rate} Hz, {frame}, {tail} s | {speex:.3f} | {ria:.3f} | {ria / speex:.2f} | {graph:.3f} |", flush=True)


if __name__ == "__main__":
    main()
