"""Echo cancellation, ria.aec against plain speexdsp with the same frame and tail, on real speech.

    source scripts/env.sh; python bench/bench_aec.py [--seconds 60]

Far end and near end are espeak-ng voices; the rooms are generated (RT60 given); the microphone has
noise at -65 dBFS unless a row says otherwise. Per condition: steady-state ERLE (last quarter), time to
reach 20 dB, near-end attenuation during double talk, and the real-time factor of each canceller.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aec_metrics as metrics  # noqa: E402
import aec_runner  # noqa: E402
import aec_signals as signals  # noqa: E402
import speex_baseline  # noqa: E402

TAIL_S = 0.4
FRAME_S = 0.02

CONDITIONS = [
    ("aligned, RT60 0.3 s", dict()),
    ("RT60 0.2 s", dict(rt60=0.2)),
    ("RT60 0.6 s", dict(rt60=0.6)),
    ("noise -45 dBFS", dict(noise_db=-45.0)),
    ("double talk", dict(double_talk=True)),
    ("echo path change at 50%", dict(path_change=0.5)),
    ("delay 300 ms", dict(delay_s=0.3)),
    ("drift +100 ppm (delay 50 ms)", dict(delay_s=0.05, drift_ppm=100.0)),
    ("drift -100 ppm + delay 300 ms", dict(delay_s=0.3, drift_ppm=-100.0)),
    ("48 kHz, delay 300 ms", dict(rate=48000, delay_s=0.3)),
    ("48 kHz, delay 300 ms, reverberation 5 dB stronger", dict(rate=48000, delay_s=0.3, reverb_gain=3 ** 0.5)),
    ("48 kHz, drift +100 ppm + delay 300 ms", dict(rate=48000, delay_s=0.3, drift_ppm=100.0)),
    ("48 kHz, delay 300 ms, RT60 0.2 s, tail 0.2 s", dict(rate=48000, delay_s=0.3, rt60=0.2, tail=0.2)),
    ("48 kHz, delay 300 ms, RT60 0.2 s, tail 0.2 s, frame 1024", dict(rate=48000, delay_s=0.3, rt60=0.2, tail=0.2,
                                                                     frame=1024)),
]


def evaluate(out, s, seconds_taken):
    ttd = metrics.time_to_db(out, s)
    att = metrics.near_attenuation_db(out, s)
    return {
        "erle": metrics.steady_erle_db(out, s),
        "t20": "never" if ttd is None else f"{ttd:.1f}",
        "near": "–" if att is None else f"{att:.2f}",
        "rtf": len(out) / s["rate"] / seconds_taken,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--only", default="", help="run only the conditions whose name contains this")
    args = parser.parse_args()
    voices = {}
    print(f"frame {FRAME_S * 1000:.0f} ms, tail {TAIL_S} s unless named, {args.seconds:.0f} s per condition, "
          "noise -65 dBFS unless named")
    print()
    print("| condition | canceller | steady ERLE dB | time to 20 dB s | near-end attenuation dB | RTF | delay s | drift ppm |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, cond in CONDITIONS:
        if args.only not in label:
            continue
        cond = dict(cond)
        rate = cond.pop("rate", 16000)
        if rate not in voices:
            voices[rate] = (signals.speech(signals.FAR_TEXT, "en-us", rate),
                            signals.speech(signals.NEAR_TEXT, "en-gb+f3", rate))
        far, near = voices[rate]
        change = cond.pop("path_change", None)
        tail = cond.pop("tail", TAIL_S)
        frame = cond.pop("frame", None) or int(FRAME_S * rate)
        s = signals.scenario(rate=rate, seconds=args.seconds, far=far, near=near, noise_db=cond.pop("noise_db", -65.0),
                             path_change_s=None if change is None else change * args.seconds, **cond)
        t0 = time.perf_counter()
        plain = speex_baseline.cancel(s["mic"], s["ref"], rate, frame, int(tail * rate))
        plain_s = time.perf_counter() - t0
        ours, block, ours_s = aec_runner.run(s["mic"], s["ref"], rate, frame, tail)
        for name, out, took, extra in (("speexdsp", plain, plain_s, ("–", "–")),
                                       ("ria.aec", ours, ours_s,
                                        (f"{block.delay():.4f} ({block.delay_jumps()} jumps)" if block.delay_locked() else "unlocked",
                                         f"{block.drift_ppm():+.1f}"))):
            r = evaluate(out, s, took)
            print(f"| {label} | {name} | {r['erle']:.1f} | {r['t20']} | {r['near']} | {r['rtf']:.0f} | "
                  f"{extra[0]} | {extra[1]} |", flush=True)


if __name__ == "__main__":
    main()
