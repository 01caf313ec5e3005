#!/usr/bin/env python3
"""ria.websocket_iq_sink against GNU Radio's zeromq.push_sink, each into a receiving process.

Same source for both (null_source -> head, so the sink is what is measured), lossless
settings (the sink's `block` policy; ZeroMQ PUSH blocks at its high-water mark), alternating
runs in one script. MS/s is counted from flowgraph start until the receiver has every byte;
CPU is the sender's and the receiver's together, in cores.

    bash scripts/setup.sh && source scripts/env.sh && python bench/bench_websocket_sink.py
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

from gnuradio import blocks, gr, ria, zeromq

HERE = os.path.dirname(os.path.abspath(__file__))
BYTES = {"cf32": 8, "cs16": 4}


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(kind, fmt, samples, frame):
    expected = samples * (BYTES[fmt] if kind != "zmq" else 8)
    rx = subprocess.Popen([sys.executable, os.path.join(HERE, "stream_receiver.py"), kind, "--bytes", str(expected),
                           "--port", str(free_port())], stdout=subprocess.PIPE, text=True)
    try:
        port = int(rx.stdout.readline().split()[1])
        tb = gr.top_block()
        src = blocks.null_source(gr.sizeof_gr_complex)
        head = blocks.head(gr.sizeof_gr_complex, samples)
        if kind != "zmq":
            sink = ria.websocket_iq_sink(url=f"ws://127.0.0.1:{port}/screens/agent/ws", token="bench",
                                         buffer_size=frame, sample_format=fmt, overflow="block", queue_frames=16,
                                         autostart=True, app_id="bench", hardware_names="mock")
        else:
            sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, f"tcp://127.0.0.1:{port}", 100, False, -1)
        tb.connect(src, head, sink)
        cpu0, t0 = cpu_s(), time.perf_counter()
        tb.start()
        try:
            result = json.loads(rx.stdout.readline())
            wall = time.perf_counter() - t0
            cpu = cpu_s() - cpu0
        finally:
            tb.stop()
            tb.wait()
        assert result["bytes"] == expected, result
        return samples / wall / 1e6, (cpu + result["cpu_s"]) / wall
    finally:
        rx.kill()
        rx.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=50_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--frame", type=int, default=65536, help="buffer_size of the WebSocket sink")
    a = p.parse_args()
    # receivers: "raw" reads frames the way the PULL socket reads messages (the sink's own cost);
    # websockets and aiohttp add what a Python hub library costs on the receiving side.
    cases = [("zmq.push_sink", "zmq", "cf32"), ("ws cf32 -> raw", "raw", "cf32"), ("ws cs16 -> raw", "raw", "cs16"),
             ("ws cf32 -> websockets", "ws", "cf32"), ("ws cf32 -> aiohttp", "aiohttp", "cf32")]
    results = {name: [] for name, _, _ in cases}
    print(f"{a.samples / 1e6:.0f} M samples a run, WebSocket frames of {a.frame} samples, {a.rounds} rounds\n")
    print(f"{'round':>5}  {'path':<24}{'MS/s':>8}{'CPU (cores)':>13}")
    for r in range(a.rounds):
        for name, kind, fmt in (cases if r % 2 == 0 else list(reversed(cases))):
            msps, cpu = one_run(kind, fmt, a.samples, a.frame)
            results[name].append((msps, cpu))
            print(f"{r + 1:>5}  {name:<24}{msps:>8.1f}{cpu:>13.2f}", flush=True)
    print(f"\n{'path':<24}{'median MS/s':>12}{'median CPU':>12}{'vs zmq':>8}")
    base = statistics.median(m for m, _ in results["zmq.push_sink"])
    for name, runs in results.items():
        med = statistics.median(m for m, _ in runs)
        print(f"{name:<24}{med:>12.1f}{statistics.median(c for _, c in runs):>12.2f}{med / base:>8.2f}")


if __name__ == "__main__":
    main()
