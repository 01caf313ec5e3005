"""The hub's cost of voice agents on this machine, in-process (no sockets): per second of audio, the microphone side
(hub/audio_in.py: decode, level meter; WAV writing) and the speaker side (hub/audio_sources.py: resampling a
source, encoding its frames). Rounds are interleaved so that a busy machine weighs on every row alike; the figure
is the median wall time of one thread. "agents/core" is how many one-way voice streams one core could carry at
that cost (1 / cost).

The second table is what a class costs the hub's event loop: N agents spoken to at once (Opus, 16 kHz, each
paced at real time as its credits allow), and the loop's lateness measured by a 10 ms ticker. "on the loop" is
AudioPlay as shipped (one packet encoded inline per read); "worker thread" is the alternative measured beside it
(half a second of packets per trip to a thread; libopus runs without the GIL, the framing around it does not).

  python bench/bench_hub_voice.py [--seconds 10] [--rounds 5] [--class-sizes 10,30]
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


class ThreadedOpus:
    """The alternative: AudioPlay with its Opus packets encoded half a second at a time in a worker thread."""

    def __init__(self, samples, rate):
        self.play = AudioPlay(samples, rate, "opus", {"kind": "bench"})
        self.packets = []

    async def read_frames(self, max_samples):
        if not self.packets:
            async def ahead():  # in the worker thread, on an event loop of its own for the whole batch
                out = []
                for _ in range(25):
                    out.extend(await self.play.read_frames(max_samples))
                return out
            self.packets = await asyncio.to_thread(asyncio.run, ahead())
        return [self.packets.pop(0)] if self.packets else []


def class_lag(kind, agents, seconds, rate=16000):
    """(median, p99, max) lateness in ms of a 10 ms ticker while `agents` sessions play `seconds` each."""
    source = [speech_like(seconds, rate, seed=k) for k in range(agents)]
    frame = audio.frame_samples(rate)

    async def session(samples):
        play = ThreadedOpus(samples, rate) if kind == "thread" else AudioPlay(samples, rate, "opus", {"kind": "bench"})
        loop, t0, sent = asyncio.get_running_loop(), asyncio.get_running_loop().time(), 0
        while await play.read_frames(frame):
            sent += frame
            await asyncio.sleep(max(0.0, t0 + sent / rate - 0.2 - loop.time()))  # 0.2 s of credit ahead

    async def run():
        loop, lags = asyncio.get_running_loop(), []
        tasks = [asyncio.create_task(session(s)) for s in source]
        while not all(t.done() for t in tasks):
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            lags.append(max(0.0, loop.time() - due) * 1000)
        return lags
    lags = np.array(asyncio.run(run()))
    return np.median(lags), np.percentile(lags, 99), lags.max()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--class-sizes", default="10,30", dest="class_sizes")
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

    sizes = [int(n) for n in args.class_sizes.split(",")]
    lags = {(kind, n): [] for n in sizes for kind in ("inline", "thread")}
    for _ in range(max(1, args.rounds // 2)):
        for n in sizes:
            for kind in ("inline", "thread"):
                lags[(kind, n)].append(class_lag(kind, n, min(args.seconds, 5.0)))
    print()
    print("event loop lateness while a class is spoken to (Opus 16 kHz), ms: median / p99 / max, median of rounds")
    print(f"{'agents':>6} {'encoding':16} {'median':>8} {'p99':>8} {'max':>8}")
    for n in sizes:
        for kind in ("inline", "thread"):
            med, p99, top = (statistics.median(x[i] for x in lags[(kind, n)]) for i in range(3))
            label = "on the loop" if kind == "inline" else "worker thread"
            print(f"{n:>6} {label:16} {med:>8.2f} {p99:>8.2f} {top:>8.2f}")


if __name__ == "__main__":
    main()
