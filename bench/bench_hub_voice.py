"""The hub's cost of voice agents on this machine, in-process (no sockets): per second of audio, the microphone side
(hub/audio_in.py: decode, level meter; WAV writing) and the speaker side (hub/audio_sources.py: resampling a
source, encoding its frames). Rounds are interleaved so that a busy machine weighs on every row alike; the figure
is the median wall time of one thread. "agents/core" is how many one-way voice streams one core could carry at
that cost (1 / cost).

  python bench/bench_hub_voice.py [--seconds 10] [--rounds 5]
"""

import argparse
import asyncio
import statistics
import tempfile
import time

import numpy as np

from gnuradio.ria.hub.audio_in import AudioIn
from gnuradio.ria.hub.audio_sources import AudioPlay, resample
from gnuradio.ria.hub.wav_recorder import WavRecorder
from gnuradio.ria.wire import audio, opus


def speech_like(seconds, rate, seed=1):
    """A tone whose level and pitch move every 50 ms, plus a little noise: Opus works on it as on speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = np.repeat(rng.uniform(120, 300, int(seconds * 20) + 1), int(rate / 20))[:len(t)]
    level = np.repeat(rng.uniform(0.05, 0.5, int(seconds * 20) + 1), int(rate / 20))[:len(t)]
    x = level * np.sin(2 * np.pi * np.cumsum(pitch) / rate) + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def mic_frames(fmt, rate, seconds):
    x = speech_like(seconds, rate)
    if fmt == "opus":
        return opus.Encoder(rate).encode_all(x)
    n = audio.frame_samples(rate)
    return [audio.to_bytes(x[i:i + n], fmt) for i in range(0, len(x), n)]


def mic_side(fmt, rate, frames, folder, record):
    a = AudioIn({"sample_format": fmt, "sample_rate": rate, "frame_samples": None, "bitrate": None})
    recorder = None
    if record:
        recorder = WavRecorder(folder, "bench", "bench", "b")
        recorder.segment(fmt, rate, 0.0, 0)
    t0 = time.perf_counter()
    for payload in frames:
        samples, _ = a.decode(payload)
        if recorder:
            recorder.write_samples(samples)
    if recorder:
        recorder.close()
    return time.perf_counter() - t0


def speaker_side(fmt, rate, source, source_rate):
    t0 = time.perf_counter()
    play = AudioPlay(resample(source, source_rate, rate), rate, fmt, {"kind": "bench"})

    async def drain():
        while await play.read_frames(audio.frame_samples(rate)):
            pass
    asyncio.run(drain())
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    rows = [("mic", fmt, rate, rec) for fmt in ("opus", "s16", "f32") for rate in (16000, 48000)
            for rec in (False, True)] + [("speaker", fmt, rate, None) for fmt in ("opus", "s16", "f32")
                                         for rate in (16000, 48000)]
    frames = {(fmt, rate): mic_frames(fmt, rate, args.seconds) for _, fmt, rate, _ in rows}
    source = speech_like(args.seconds, 22050, seed=2)  # espeak-ng's rate
    times = {row: [] for row in rows}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for row in rows:
                side, fmt, rate, rec = row
                cost = mic_side(fmt, rate, frames[(fmt, rate)], folder, rec) if side == "mic" else \
                    speaker_side(fmt, rate, source, 22050)
                times[row].append(cost / args.seconds)
    print(f"{args.seconds:g} s of audio, median of {args.rounds} interleaved rounds, this machine, one core")
    print(f"{'side':8} {'format':6} {'rate':>6} {'what':28} {'ms per s audio':>17} {'agents/core':>12}")
    for row in rows:
        side, fmt, rate, rec = row
        what = ("decode + level" + (" + WAV" if rec else "")) if side == "mic" else "resample 22.05k + encode"
        cost = statistics.median(times[row])
        print(f"{side:8} {fmt:6} {rate:>6} {what:28} {cost * 1000:>17.2f} {1 / cost:>12.0f}")


if __name__ == "__main__":
    main()
