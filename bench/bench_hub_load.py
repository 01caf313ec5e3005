"""Hub load on this machine: how many agents stay online while some stream, and the IQ rate the hub ingests.

The hub runs as its own process (as in a lab). A load generator process opens the agent connections:
idle ones heartbeat every second (30x the protocol's default rate, so heartbeat load is overstated),
streaming ones send cf32 frames as fast as the hub takes them. During the run the bench samples the
hub's /health and /metrics; it prints one table row per scenario.

  python bench/bench_hub_load.py [--duration 10]
  python bench/bench_hub_load.py --scenario 0,30,16384,cs8,250e3 --scenario 0,4,65536   # your own rows

A scenario is IDLE,STREAM,FRAME[,FORMAT[,RATE[,zmq]]]: RATE paces each streaming agent (S/s; 0 or absent: as
fast as the hub takes it), FORMAT is cf32 (default), cs16 or cs8.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from processes import HUB_APP, Process, python  # noqa: E402

from gnuradio.ria.hub.store import Store  # noqa: E402

SCENARIOS = [  # (idle agents, streaming agents, samples per frame, format, S/s per agent (0: flat out), ZeroMQ on)
    (500, 0, 0, "cf32", 0, False),
    (500, 4, 65536, "cf32", 0, False),
    (1000, 4, 65536, "cf32", 0, False),
    (0, 1, 65536, "cf32", 0, False),
    (0, 4, 16384, "cf32", 0, False),
    (0, 8, 65536, "cf32", 0, False),
    (0, 4, 65536, "cf32", 0, True),
]
BYTES_PER_SAMPLE = {"cf32": 8, "cs16": 4, "cs8": 2}


def scenario(text):
    parts = text.split(",")
    try:
        if not 3 <= len(parts) <= 6 or (len(parts) == 6 and parts[5] != "zmq"):
            raise ValueError
        fmt = parts[3] if len(parts) > 3 else "cf32"
        if fmt not in BYTES_PER_SAMPLE:
            raise ValueError
        return (int(parts[0]), int(parts[1]), int(parts[2]), fmt, float(parts[4]) if len(parts) > 4 else 0.0,
                len(parts) == 6)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want IDLE,STREAM,FRAME[,cf32|cs16|cs8[,RATE[,zmq]]]") from None


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def iq_bytes(url):
    return int(re.search(r"^ria_hub_iq_bytes_total (\d+)", get(url + "/metrics"), re.M).group(1))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def run(folder, idle, stream, frame_samples, fmt, rate, zmq, duration, tokens_file):
    endpoint = "tcp://127.0.0.1:*" if zmq else ""  # with no subscriber: the cost of publishing itself
    # every generated agent comes from 127.0.0.1: lift the per-client cap that would refuse the 65th
    hub = Process(python(HUB_APP, "--data-dir", os.path.join(folder, "hub"), "serve", "--port", "0", "--zmq", endpoint,
                         "--max-connections", "4096", "--max-per-client", "4096"))
    try:
        url = hub.wait_line(r"listening on (http://[^\s;]+)").group(1)
        generator = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "hub_load_agents.py"), "--url", url, "--tokens", tokens_file,
             "--idle", str(idle), "--stream", str(stream), "--frame-samples", str(max(frame_samples, 1)),
             "--duration", str(duration + 4), "--format", fmt, "--rate", str(rate)], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # all connected and heartbeating
            health = json.loads(get(url + "/health"))
            if health["agents_online"] >= idle + stream:
                break
            time.sleep(0.2)
        b0, c0, t0 = iq_bytes(url), cpu_seconds(hub.proc.pid), time.monotonic()
        online_min = idle + stream
        while time.monotonic() - t0 < duration:
            time.sleep(0.5)
            online_min = min(online_min, json.loads(get(url + "/health"))["agents_online"])
        b1, c1, t1 = iq_bytes(url), cpu_seconds(hub.proc.pid), time.monotonic()
        rss = rss_mb(hub.proc.pid)
        out, _ = generator.communicate(timeout=60)
        sent = json.loads(out.strip().splitlines()[-1])
        return {"online_min": online_min, "msps": (b1 - b0) / BYTES_PER_SAMPLE[fmt] / (t1 - t0) / 1e6,
                "mbps": (b1 - b0) / (t1 - t0) / 1e6, "hub_cpu": (c1 - c0) / (t1 - t0) * 100, "rss": rss,
                "errors": sent["error_count"]}
    finally:
        hub.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per scenario")
    parser.add_argument("--scenario", type=scenario, action="append", dest="scenarios",
                        help="IDLE,STREAM,FRAME[,FORMAT[,RATE[,zmq]]] instead of the built-in rows (repeat it)")
    args = parser.parse_args()
    scenarios = args.scenarios or SCENARIOS
    need = max(i + s for i, s, *_ in scenarios)
    print(f"hub load, {os.cpu_count()} cores, {args.duration:.0f} s per scenario; idle agents heartbeat every 1 s")
    print(f"{'idle':>5} {'stream':>6} {'frame':>7} {'format':>6} {'S/s each':>9} {'zmq':>4} | {'online (min)':>12} "
          f"{'ingest MS/s':>11} {'MB/s':>7} "
          f"{'hub CPU %':>9} {'hub RSS MB':>10} {'errors':>6}")
    with tempfile.TemporaryDirectory(prefix="ria-hub-load-") as folder:
        for idle, stream, frame_samples, fmt, rate, zmq in scenarios:
            # a fresh hub per scenario, with enough registered agents
            data_dir = os.path.join(folder, "hub")
            os.makedirs(data_dir, exist_ok=True)
            store = Store(os.path.join(data_dir, "hub.sqlite"))
            _, key = store.create_key(uses=None)
            tokens = [store.register(key, f"load-{i}") for i in range(need)]
            store.close()
            tokens_file = os.path.join(folder, "tokens.json")
            with open(tokens_file, "w") as f:
                json.dump(tokens, f)
            r = run(folder, idle, stream, frame_samples, fmt, rate, zmq, args.duration, tokens_file)
            paced = f"{rate:.4g}" if rate else "max"
            print(f"{idle:>5} {stream:>6} {frame_samples:>7} {fmt:>6} {paced:>9} {'on' if zmq else 'off':>4} | "
                  f"{r['online_min']:>6}/{idle + stream:<5} {r['msps']:>11.2f} {r['mbps']:>7.1f} {r['hub_cpu']:>9.0f} {r['rss']:>10.0f} "
                  f"{r['errors']:>6}", flush=True)
            for name in os.listdir(data_dir):
                os.remove(os.path.join(data_dir, name))


if __name__ == "__main__":
    main()
