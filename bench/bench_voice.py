"""A voice agent's cost and latency (issue 14), printed as tables.

CPU: ria.voice_agent in a process of its own (bench/voice_agent_peer.py: speaker wired back into the microphone,
the echo canceller on), a hub (tests/hub_server.py) saying speech at 48 kHz as fast as tx_progress credit allows;
CPU seconds of the agent process per second of audio, f32 (the peer: plain float streaming both ways) against
Opus both ways, runs interleaved, and their ratio.

Latency on loopback, in real time (throttles play the sound cards): hub -> speaker is from the hub sending the
frame holding a click to the click leaving the speaker output; microphone -> hub is from a click entering the
microphone input to the hub receiving the frame holding it. Medians over the clicks.

  python bench/bench_voice.py [--seconds 20] [--runs 3] [--clicks 8]
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
from gnuradio import blocks, gr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)

from gnuradio import ria  # noqa: E402
from hub_server import TOKEN, HubServer  # noqa: E402

import aec_signals  # noqa: E402
import voice_loop  # noqa: E402

CLICK = 0.5
THRESHOLD = 0.25


# ---------------------------------------------------------------- CPU

def cpu_per_audio_second(sample_format, rate, speech):
    """Agent CPU seconds per second of audio for one run, or None when this build cannot take the format."""
    hub = HubServer().start()
    peer = subprocess.Popen([sys.executable, os.path.join(HERE, "voice_agent_peer.py"), hub.url(), TOKEN, str(rate),
                             sample_format], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        if not reply(peer, "started") or not voice_loop.first_heartbeat_with(hub, "audio_out"):
            return None

        def cpu():
            peer.stdin.write("cpu\n")
            peer.stdin.flush()
            return float(reply(peer, "cpu").split()[1])

        before = cpu()
        armed = voice_loop.start_play(hub, "bench", rate, sample_format)
        sent = voice_loop.play(hub, "bench", speech, armed, voice_loop.Encoder(rate, sample_format))
        hub.wait_for(lambda s: any(m["played"] >= sent for m in s.texts("tx_progress")), 30)
        # the microphone side has sent what it took in by the time the last frame is here
        hub.wait_for(lambda s: sum(1 for _ in s.binary()) * voice_loop.Encoder(rate, sample_format).frame
                     >= 0.95 * sent, 30)
        used = cpu() - before
        hub.send({"type": "tx_stop", "app_id": "bench"})
        return used / (sent / rate)
    finally:
        peer.stdin.close()
        try:
            peer.wait(15)
        except subprocess.TimeoutExpired:
            peer.kill()
            peer.wait()
        hub.stop()


def reply(peer, word):
    """The peer's next line starting with `word` (GNU Radio's log lines come on the same stdout); '' at its end."""
    for line in peer.stdout:
        if line.startswith(word):
            return line.strip()
    return ""


# ---------------------------------------------------------------- latency

class click_watch(gr.sync_block):
    """Passes samples through and notes the wall time of each click (a loud sample after `gap` quiet ones)."""

    def __init__(self, gap):
        gr.sync_block.__init__(self, "click_watch", in_sig=[np.float32], out_sig=[np.float32])
        self.gap = gap
        self.times = []
        self.last = -gap - 1  # index of the last loud sample
        self.n = 0

    def work(self, input_items, output_items):
        x = input_items[0]
        output_items[0][:] = x
        now = time.monotonic()
        for k in np.flatnonzero(np.abs(x) > THRESHOLD):
            if self.n + k - self.last > self.gap:
                self.times.append(now)
            self.last = self.n + int(k)
        self.n += len(x)
        return len(x)


def clicks(rate, count, every_s=1.0, start_s=0.5):
    x = np.zeros(int((start_s + count * every_s) * rate), np.float32)
    for k in range(count):
        at = int((start_s + k * every_s) * rate)
        x[at:at + 16] = CLICK * np.hanning(16)
    return x


def latency(rate, sample_format, count):
    """(hub -> speaker ms, microphone -> hub ms): medians over `count` clicks each way."""
    hub = HubServer().start()
    tb = gr.top_block()
    agent = ria.voice_agent(url=hub.url(), token=TOKEN, sample_rate=rate, sample_format=sample_format,
                            queue_seconds=0.2)
    speaker_card = blocks.throttle(gr.sizeof_float, rate)
    played = click_watch(rate // 2)
    mic_signal = blocks.vector_source_f(clicks(rate, count, start_s=1.5).tolist(), True)
    mic_card = blocks.throttle(gr.sizeof_float, rate)
    heard = click_watch(rate // 2)
    tb.connect(agent, speaker_card, played, blocks.null_sink(gr.sizeof_float))
    tb.connect(mic_signal, mic_card, heard, agent)
    arrivals = []  # (time, samples before this frame) of each microphone frame at the hub
    stop = threading.Event()

    def watch_hub():
        seen = 0
        while not stop.is_set():
            hub.wait_for(lambda s: len(s.received) > seen, 0.2)
            now = time.monotonic()
            with hub._cond:
                new = hub.received[seen:]
            for kind, item in new:
                if kind == "binary":
                    arrivals.append((now, item))
            seen += len(new)

    watcher = threading.Thread(target=watch_hub, daemon=True)
    tb.start()
    try:
        watcher.start()
        assert voice_loop.first_heartbeat_with(hub, "audio_out")
        armed = voice_loop.start_play(hub, "clicks", rate, sample_format)
        encoder = voice_loop.Encoder(rate, sample_format)
        sent_at = []
        signal = clicks(rate, count)
        offsets = [int((0.5 + k) * rate) for k in range(count)]
        sent = 0
        for n, payload in encoder.frames(signal):
            while sent - max([m["played"] for m in hub.texts("tx_progress")] or [0]) + n > armed["queue_samples"]:
                hub.wait_for(lambda s: False, 0.002)
            hub.send_bytes(payload)
            sent_at += [time.monotonic() for o in offsets if sent <= o < sent + n]
            sent += n
        hub.wait_for(lambda s: len(played.times) >= count and len(heard.times) >= count, 10)
        time.sleep(0.5)  # the last microphone frames on their way
    finally:
        stop.set()
        watcher.join(2)
        tb.stop()
        tb.wait()
        hub.stop()
    to_speaker = [(p - s) * 1e3 for s, p in zip(sent_at, played.times)]
    frame = voice_loop.Encoder(rate, sample_format).frame
    starts, index = [], 0  # (first sample index, arrival time) of each microphone frame
    for t, payload in arrivals:
        starts.append((index, t))
        index += frame if sample_format == "opus" else len(payload) // (4 if sample_format == "f32" else 2)
    out, _ = voice_loop.mic_stream(hub)
    found, last = [], -rate
    for k in np.flatnonzero(np.abs(np.nan_to_num(out)) > THRESHOLD * 0.5):
        if k - last > rate // 2:
            found.append(int(k))
        last = k
    to_hub = []
    for k, mic_time in zip(found, heard.times):
        arrival = next((t for i, t in starts if i <= k < i + frame), None)
        if arrival is not None:
            to_hub.append((arrival - mic_time) * 1e3)
    return (statistics.median(to_speaker) if to_speaker else float("nan"),
            statistics.median(to_hub) if to_hub else float("nan"))


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of speech per CPU run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--clicks", type=int, default=8)
    args = p.parse_args()
    rate = 48000
    far = aec_signals.speech(aec_signals.FAR_TEXT, "en-us", rate)
    speech = aec_signals.repeat_to(far, int(args.seconds * rate), rate // 2)

    cpu = {"f32": [], "opus": []}
    for _ in range(args.runs):
        for fmt in cpu:  # interleaved
            cpu[fmt].append(cpu_per_audio_second(fmt, rate, speech))
    print(f"\nvoice agent CPU at {rate} Hz ({args.seconds:g} s of speech a run, {args.runs} runs interleaved;"
          " the process's CPU seconds per second of audio, both directions and the echo canceller)")
    print(f"| {'wire format':<34} | {'CPU s / audio s (median)':>24} | {'runs':<24} |")
    print(f"|{'-' * 36}|{'-' * 26}:|{'-' * 26}|")
    medians = {}
    for fmt, label in (("f32", "f32 (peer: plain float streaming)"), ("opus", "Opus both ways")):
        values = [v for v in cpu[fmt] if v is not None]
        medians[fmt] = statistics.median(values) if values else None
        shown = f"{medians[fmt]:.3f}" if values else "n/a (this build)"
        print(f"| {label:<34} | {shown:>24} | {', '.join(f'{v:.3f}' for v in values):<24} |")
    if medians["f32"] and medians["opus"]:
        print(f"| {'ratio Opus / f32':<34} | {medians['opus'] / medians['f32']:>24.2f} | {'':<24} |")

    print(f"\nloop latency on loopback at {rate} Hz (real time; queue 0.2 s; medians of {args.clicks} clicks)")
    print(f"| {'wire format':<12} | {'hub -> speaker (ms)':>20} | {'microphone -> hub (ms)':>23} |")
    print(f"|{'-' * 14}|{'-' * 21}:|{'-' * 24}:|")
    for fmt in ("f32", "opus"):
        try:
            to_speaker, to_hub = latency(rate, fmt, args.clicks)
            print(f"| {fmt:<12} | {to_speaker:>20.1f} | {to_hub:>23.1f} |")
        except (ValueError, RuntimeError, AssertionError) as e:
            print(f"| {fmt:<12} | {'n/a':>20} | {'n/a':>23} |  ({type(e).__name__}: {str(e)[:60]})")


if __name__ == "__main__":
    main()
