"""Transmit throughput on this machine: IQ into ria.sdr_sink on unpaced riasim (pace=false), two ways, interleaved.

- ria: a minimal hub (tests/hub_server.py) sends to a ria.iq_agent with TX allowed, following docs/protocol.md §6:
  tx_start, armed, frames kept within the agent's queue_samples by its tx_progress (credit flow control). It
  measures the agent (websocket_source -> sdr_sink), not the lab hub's sender (bench_hub_tx.py does that).
- zeromq: a pyzmq PUSH socket sends the same frames to zeromq.pull_source -> ria.sdr_sink.

Each round transmits N samples; a round ends when riasim's tx_log counts them all as aired (lossless, or the
round says how many are missing). Agent CPU is the transmitting process's user + system time per MS.

  python bench/bench_tx.py [--rounds 3] [--msamples 16]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

import numpy as np
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from hub_server import TOKEN, HubServer  # noqa: E402

FRAMES = (4096, 65536)
RATE = 10e6
WAIT = 60.0


class Peer:
    """tx_bench_peer.py in its own process."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "tx_bench_peer.py"), *args], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.line("ready")
        self.polling_cpu_s = 0.0

    def line(self, first_word):
        """The next line of the peer's that starts with first_word (GNU Radio logs to the same stdout)."""
        while (line := self.proc.stdout.readline()) and line.split()[:1] != [first_word]:
            pass
        assert line, f"the peer exited before saying {first_word}"
        return line.split()

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") - self.polling_cpu_s

    def aired(self, serial):
        self.proc.stdin.write(serial + "\n")
        self.proc.stdin.flush()
        words = self.line("aired")
        self.polling_cpu_s += float(words[3])
        return int(words[2])

    def wait_aired(self, serial, n):
        deadline = time.monotonic() + WAIT
        while (got := self.aired(serial)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def frame_bytes(frame):
    k = np.arange(frame)
    return (0.5 * np.exp(2j * np.pi * 0.01 * k)).astype(np.complex64).tobytes()


def played(hub):
    return max([m["played"] for m in hub.texts("tx_progress")] or [0])


def ria_round(frame, n):
    hub = HubServer().start()
    peer = Peer("agent", hub.url(), TOKEN)
    try:
        assert hub.wait_for(lambda s: any(m.get("tx_enabled") for m in s.texts("heartbeat")), WAIT)
        serial = "b" + uuid.uuid4().hex[:8]
        hub.send({"type": "tx_start", "app_id": "bench", "radio_config": {
            "device": f"driver=riasim,serial={serial},pace=false,air=off", "tx_sample_rate": RATE,
            "tx_center_frequency": 434e6, "tx_gain": 0, "underrun_policy": "zero", "buffer_size": frame}})
        assert hub.wait_for(lambda s: any(m["state"] == "armed" for m in s.texts("tx_status")), WAIT)
        queue = next(m for m in hub.texts("tx_status") if m["state"] == "armed")["queue_samples"]
        data, sent = frame_bytes(frame), 0
        cpu, start = peer.cpu_s(), time.monotonic()
        while sent < n:
            if sent + frame - played(hub) > queue:  # credit: never more than queue_samples unplayed
                hub.wait_for(lambda s, p=played(hub): played(s) > p, WAIT)
                continue
            hub.send_bytes(data, timeout=WAIT)
            sent += frame
        got = peer.wait_aired(serial, n)
        return got, time.monotonic() - start, peer.cpu_s() - cpu
    finally:
        peer.close()
        hub.stop()


def zmq_round(frame, n):
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    serial = "z" + uuid.uuid4().hex[:8]
    peer = Peer("zmq", f"tcp://127.0.0.1:{port}", serial)
    try:
        data = frame_bytes(frame)
        cpu, start = peer.cpu_s(), time.monotonic()
        for _ in range(n // frame):
            push.send(data)
        got = peer.wait_aired(serial, n)
        return got, time.monotonic() - start, peer.cpu_s() - cpu
    finally:
        peer.close()
        push.close()
        context.term()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--msamples", type=float, default=16.0, help="MS transmitted a round")
    args = parser.parse_args()
    runs = {}
    for r in range(args.rounds):  # interleaved: every path and frame size once a round
        for frame in FRAMES:
            n = int(args.msamples * 1e6) // frame * frame
            for path, run in (("ria", ria_round), ("zeromq", zmq_round)):
                got, seconds, cpu = run(frame, n)
                runs.setdefault((path, frame), []).append((got == n, got / seconds / 1e6, cpu / (got / 1e6)))
                print(f"round {r + 1} {path:>7} {frame:>6}: {got / seconds / 1e6:7.1f} MS/s, aired {got}/{n}",
                      file=sys.stderr, flush=True)
    print(f"\n{'path (ria: minimal §6 credit-flow hub -> ria.iq_agent)':<58} {'frame':>6} {'MS/s':>7} "
          f"{'CPU s/MS':>9} {'lossless':>9}")
    for (path, frame), rows in runs.items():
        label = "ria.websocket_source -> ria.sdr_sink" if path == "ria" else "zeromq.pull_source -> ria.sdr_sink"
        print(f"{label:<58} {frame:>6} {statistics.median(r[1] for r in rows):>7.1f} "
              f"{statistics.median(r[2] for r in rows):>9.3f} {sum(r[0] for r in rows):>5}/{len(rows)}")


if __name__ == "__main__":
    main()
