#!/usr/bin/env python3
"""ria.websocket_iq_sink against GNU Radio's zeromq.push_sink, each into a receiver in its own process.

    source scripts/env.sh && python bench/bench_websocket_sink.py

Table 1, throughput, lossless: null_source -> head(N) -> sink, overflow="block" (ZeroMQ PUSH blocks
at its high-water mark), into the raw receiver (a WebSocket server cut down to what a PULL socket
does), an aiohttp server and a websockets server (bench/stream_receiver.py); cf32, cs16, cs8; frames
of 1024 and 65536 samples. Every round runs each configuration once, in rotating order; N is set
per configuration so a run lasts about --seconds. MS/s counts from flowgraph start until the
receiver has every byte; "x zmq" is the median over rounds of the ratio to zeromq.push_sink (which
always moves cf32) in the same round, in samples/s. Sender CPU is the GNU Radio process's (rusage),
per million samples; rx cores is the receiver's CPU over the run's wall time (near 1: the receiver
is the bottleneck).

Table 2, an agent at a real rate: null_source -> throttle(rate) -> head(--duration s) -> sink with
overflow="drop" and the default buffer_size and queue_seconds, the rate posted to the sink's cmd
port before start so its queue is sized in seconds, into the aiohttp receiver; zeromq.push_sink
into PULL as the peer; null_sink as the baseline that the "net" column subtracts (medians);
dropped/produced is the worst round's.
"""

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import namedtuple
from contextlib import contextmanager
from importlib.metadata import version

import pmt
from gnuradio import blocks, gr, ria, zeromq

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream_receiver.py")
BYTES_PER_SAMPLE = {"cf32": 8, "cs16": 4, "cs8": 2}
Config = namedtuple("Config", "receiver fmt frame")  # receiver "zmq": zeromq.push_sink into PULL
ZMQ = Config("zmq", "cf32", None)


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def library_built():
    """The sink's shared library as this process loaded it, and when that file was built."""
    with open("/proc/self/maps") as maps:
        path = next(line.split()[-1] for line in maps if "libgnuradio-ria" in line)
    return f"{path}, built {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.stat(path).st_mtime))}"


class OtherLoad:
    """The CPU the rest of the machine (another session on it) used since construction: user and
    system time in /proc/stat (interrupts and steal not counted) minus ours and our receivers'."""

    def __init__(self):
        self.cpu0, self.t0 = self.cpu_s(), time.monotonic()

    @staticmethod
    def cpu_s():
        with open("/proc/stat") as f:
            user, nice, system = map(int, f.readline().split()[1:4])
        ours = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for field in ("ru_utime", "ru_stime"))
        return (user + nice + system) / os.sysconf("SC_CLK_TCK") - ours

    def cores(self):
        return max(0.0, (self.cpu_s() - self.cpu0) / (time.monotonic() - self.t0))  # clock ticks vs rusage


class Receiver:
    """bench/stream_receiver.py in its own session (Ctrl-C reaches only us; we end it)."""

    def __init__(self, kind, expected_bytes=0, endpoint=None):
        args = [sys.executable, RECEIVER, kind, "--bytes", str(expected_bytes)]
        self.proc = subprocess.Popen(args + (["--endpoint", endpoint] if endpoint else []),
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        ready = self.proc.stdout.readline()
        if not ready:
            self.__exit__()
            raise RuntimeError(f"receiver {kind} did not start")
        self.port = int(ready.split()[1])

    def result(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"receiver ended without a result (exit {self.proc.wait()})")
        return json.loads(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def websocket_sink(port, fmt, **settings):
    return ria.websocket_iq_sink(f"ws://127.0.0.1:{port}/screens/agent/ws", "bench", sample_format=fmt,
                                 autostart=True, app_id="bench", hardware_names="mock", **settings)


def zmq_push_sink():
    return zeromq.push_sink(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:0", 100, False, -1)


@contextmanager
def sink_and_receiver(cfg, samples, **settings):
    """The sink for a configuration and its receiver, which reports once `samples` arrived
    (samples=0: once the sink closes the connection)."""
    if cfg.receiver == "zmq":
        sink = zmq_push_sink()  # binds a free port; the receiver connects to it
        with Receiver("zmq", samples * 8, sink.last_endpoint()) as rx:
            yield sink, rx
    else:
        with Receiver(cfg.receiver, samples * BYTES_PER_SAMPLE[cfg.fmt]) as rx:
            yield websocket_sink(rx.port, cfg.fmt, **settings), rx


def run(tb, rx):
    """Runs the flowgraph until it ends and the receiver has reported (or no receiver);
    returns (wall s, sender CPU s, receiver result)."""
    tb.handle_sigint = False  # Ctrl-C raises here; the finally stops the flowgraph
    cpu0, t0 = cpu_s(), time.perf_counter()
    tb.start()
    try:
        got = rx.result() if rx else None
        if not rx:
            tb.wait()
        return time.perf_counter() - t0, cpu_s() - cpu0, got
    finally:
        tb.stop()
        tb.wait()


# ------------------------------------------------------------------ table 1: throughput

def lossless_run(cfg, samples):
    tb = gr.top_block()
    with sink_and_receiver(cfg, samples, buffer_size=cfg.frame, overflow="block") as (sink, rx):
        tb.connect(blocks.null_source(gr.sizeof_gr_complex), blocks.head(gr.sizeof_gr_complex, samples), sink)
        wall, cpu, got = run(tb, rx)
    expected = samples * (8 if cfg.receiver == "zmq" else BYTES_PER_SAMPLE[cfg.fmt])
    if got["bytes"] != expected or (cfg.receiver != "zmq" and sink.samples_dropped()):
        raise RuntimeError(f"{cfg}: lossless run lost data: {got}, sink stats {sink.stats()}")
    return {"msps": samples / wall / 1e6, "wall": wall, "cpu_per_ms": cpu / (samples / 1e6),
            "rx_cores": got["cpu_s"] / wall}


def samples_for(cfg, seconds):
    """Samples that make a run of this configuration last about `seconds` (also the warm-up)."""
    n = 2_000_000
    while True:
        r = lossless_run(cfg, n)
        if r["wall"] >= 0.3:
            return int(n * seconds / r["wall"])
        n *= 4


def throughput_table(rounds, seconds):
    configs = [ZMQ] + [Config(rx, fmt, frame) for rx in ("raw", "aiohttp", "websockets")
                       for fmt in BYTES_PER_SAMPLE for frame in (1024, 65536)]
    samples = {cfg: samples_for(cfg, seconds) for cfg in configs}
    runs = {cfg: [] for cfg in configs}
    other = OtherLoad()
    for r in range(rounds):
        start = r * len(configs) // rounds
        for cfg in configs[start:] + configs[:start]:
            runs[cfg].append(lossless_run(cfg, samples[cfg]))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)

    def median(cfg, key):
        return statistics.median(x[key] for x in runs[cfg])

    print(f"\nTable 1: lossless throughput, null_source -> head -> sink, {rounds} interleaved rounds, "
          f"runs of ~{seconds:g} s; other processes kept {other.cores():.2f} of {os.cpu_count()} cores busy")
    print(f"{'receiver':<11}{'fmt':<6}{'frame':>7}{'M samples':>11}{'MS/s':>8}{'(min-max)':>16}{'x zmq':>8}"
          f"{'sender CPU s/MS':>17}{'rx cores':>10}")
    for cfg in configs:
        msps = [x["msps"] for x in runs[cfg]]
        ratio = statistics.median(a["msps"] / z["msps"] for a, z in zip(runs[cfg], runs[ZMQ]))
        name = "zmq PULL" if cfg == ZMQ else cfg.receiver
        spread = f"({min(msps):.1f}-{max(msps):.1f})"
        print(f"{name:<11}{cfg.fmt:<6}{cfg.frame or '-':>7}{samples[cfg] / 1e6:>11.0f}{statistics.median(msps):>8.1f}"
              f"{spread:>16}{ratio:>8.2f}{median(cfg, 'cpu_per_ms'):>17.4f}{median(cfg, 'rx_cores'):>10.2f}")


# ------------------------------------------------------------------ table 2: at a real rate

def rate_run(peer, rate, seconds):
    """peer: None (null_sink baseline), ZMQ, or a sample format for the WebSocket sink."""
    samples = int(rate * seconds)
    tb = gr.top_block()
    src = [blocks.null_source(gr.sizeof_gr_complex), blocks.throttle(gr.sizeof_gr_complex, rate),
           blocks.head(gr.sizeof_gr_complex, samples)]
    if peer is None:
        tb.connect(*src, blocks.null_sink(gr.sizeof_gr_complex))
        _, cpu, _ = run(tb, None)
        return {"cpu_per_ms": cpu / (samples / 1e6), "dropped_pct": 0.0}
    if peer == ZMQ:
        with sink_and_receiver(ZMQ, samples) as (sink, rx):
            tb.connect(*src, sink)
            _, cpu, _ = run(tb, rx)
        return {"cpu_per_ms": cpu / (samples / 1e6), "dropped_pct": 0.0}  # PUSH is lossless
    with sink_and_receiver(Config("aiohttp", peer, 1024), 0, overflow="drop") as (sink, rx):
        sink._post(pmt.intern("cmd"), pmt.to_pmt({"sample_rate": rate}))  # handled before the first work()
        tb.connect(*src, sink)
        _, cpu, got = run(tb, rx)
    produced, sent, dropped = sink.samples_produced(), sink.samples_sent(), sink.samples_dropped()
    if got["sample_rate"] != rate or got["bytes"] != sent * BYTES_PER_SAMPLE[peer] or produced != samples:
        raise RuntimeError(f"{peer} at {rate}: receiver {got}, sink produced {produced} sent {sent}")
    return {"cpu_per_ms": cpu / (produced / 1e6), "dropped_pct": 100.0 * dropped / produced}


def rate_table(rates, rounds, seconds):
    peers = [None, "cf32", "cs16", "cs8", ZMQ]
    runs = {(rate, p): [] for rate in rates for p in peers}
    for p in peers:  # warm-up: the first flowgraph, connection and ZeroMQ context cost extra
        rate_run(p, rates[0], 0.2)
    other = OtherLoad()
    for r in range(rounds):
        for rate in rates:
            for p in peers[r % len(peers):] + peers[:r % len(peers)]:
                runs[rate, p].append(rate_run(p, rate, seconds))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)

    print(f"\nTable 2: at a real rate, null_source -> throttle -> head ({seconds:g} s) -> sink, overflow=drop, "
          f"default buffer_size/queue_seconds, medians of {rounds} rounds; other processes kept "
          f"{other.cores():.2f} of {os.cpu_count()} cores busy")
    print(f"{'rate MS/s':>9}  {'sink':<26}{'CPU s/MS':>10}{'(min-max)':>18}{'net of baseline':>17}"
          f"{'dropped/produced':>18}")
    for rate in rates:
        base = statistics.median(x["cpu_per_ms"] for x in runs[rate, None])
        for p in peers:
            cpu = [x["cpu_per_ms"] for x in runs[rate, p]]
            name = {None: "null_sink (baseline)", ZMQ: "zeromq.push_sink -> PULL"}.get(p, f"ria ws {p} -> aiohttp")
            spread = f"({min(cpu):.4f}-{max(cpu):.4f})"
            net = "" if p is None else f"{statistics.median(cpu) - base:+.4f}"
            dropped = f"{max(x['dropped_pct'] for x in runs[rate, p]):.3f} %"  # worst round
            print(f"{rate / 1e6:>9.3f}  {name:<26}{statistics.median(cpu):>10.4f}{spread:>18}{net:>17}{dropped:>18}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="table 1 rounds")
    p.add_argument("--seconds", type=float, default=1.5, help="table 1: about how long a run lasts")
    p.add_argument("--rate-rounds", type=int, default=3, help="table 2 rounds")
    p.add_argument("--duration", type=float, default=5.0, help="table 2: seconds a run lasts")
    p.add_argument("--rates", type=float, nargs="+", default=[2.048e6, 10e6])
    p.add_argument("--only", choices=("throughput", "rate"), help="run one table")
    a = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # tables and the progress lines on stderr in order
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks clean up
    gr.logging().set_default_level(gr.log_levels.warn)  # no "connected to hub" line per run
    print(f"GNU Radio {gr.version()}, aiohttp {version('aiohttp')}, websockets {version('websockets')}, "
          f"pyzmq {version('pyzmq')}; {os.cpu_count()} cores\n{library_built()}")
    try:
        if a.only != "rate":
            throughput_table(a.rounds, a.seconds)
        if a.only != "throughput":
            rate_table(a.rates, a.rate_rounds, a.duration)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
