"""Hub cluster ingest on this machine: the single process against 1, 2 and 3 hub nodes on NATS, in the same run.

Every scenario streams the same agents (cf32 frames as fast as the hubs take them, hub_load_agents.py, one load
generator per node, the agents spread evenly over the nodes). Per scenario: the aggregate ingest, the CPU of the
hub processes and of nats-server, and CPU per MS/s (hubs + NATS), whose ratio to the single process is the cost of
cluster mode. "+ bus" rows have a consumer asking for every agent's frames (data_bus.py's interest message, sent
by the bench), so every frame is also published to NATS, which discards it (the bench does not read it: a real
consumer such as the recorder worker is a cost of its own); the other rows have none, as a cluster without a
recorder. Rounds interleave the scenarios so that a drift of the machine's load touches all of them alike.

With --idle N a second table: N idle agents (a heartbeat a second each) and nothing streaming, on the single
process and on 1 and 2 nodes (each node also refreshes every agent's presence entry every 2 s).

  python bench/bench_hub_cluster.py [--duration 8] [--rounds 2] [--agents 6] [--frame 65536] [--idle 0]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from bench_hub_load import cpu_seconds, get, iq_bytes  # noqa: E402
from nats_cluster import NatsServer  # noqa: E402
from processes import HUB_APP, Process, python  # noqa: E402

from gnuradio.ria.hub.store import Store  # noqa: E402

SCENARIOS = (("single", False), (1, False), (2, False), (3, False), (1, True), (3, True))
IDLE_SCENARIOS = ("single", 1, 2)


class Interest:
    """Asks the nodes for every agent's frames, as a consumer does, from a thread of the bench."""

    def __init__(self, nats_url):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(nats_url)), daemon=True)
        self._thread.start()

    async def _run(self, nats_url):
        import nats
        nc = await nats.connect(nats_url)
        while not self._stop.is_set():
            await nc.publish("ria.data.interest", b"*")
            await nc.flush()
            await asyncio.sleep(1.0)
        await nc.close()

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def start_hub(folder, name, nats_url=None):
    flags = ["--nats", nats_url] if nats_url else []
    hub = Process(python(HUB_APP, "--data-dir", os.path.join(folder, name), "serve", "--port", "0", "--zmq", "",
                         "--register-limit", "100000", "--max-connections", "4000", "--max-per-client", "4000",
                         *flags))
    return hub, hub.wait_line(r"listening on (http://[^\s;]+)").group(1)


def cluster_tokens(folder, nats_url, count):
    """Agents registered in the cluster's registry (through a node that is then stopped)."""
    hub, url = start_hub(folder, "registrar", nats_url)
    try:
        with open(os.path.join(folder, "registrar", "admin_token")) as f:
            admin = f.read().strip()
        key = post(url + "/api/keys", {"uses": None}, {"Authorization": f"Bearer {admin}"})["key"]
        return [[a["agent_id"], a["token"]] for a in
                (post(url + "/screens/agents/register", {"name": f"load-{i}"}, {"X-API-Key": key})
                 for i in range(count))]
    finally:
        hub.stop()


def single_tokens(folder, count):
    os.makedirs(os.path.join(folder, "single"), exist_ok=True)
    store = Store(os.path.join(folder, "single", "hub.sqlite"))
    _, key = store.create_key(uses=None)
    tokens = [list(store.register(key, f"load-{i}")) for i in range(count)]
    store.close()
    return tokens


def post(url, body, headers):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run(folder, scenario, bus, tokens_file, agents, frame, duration, nats, idle=0):
    nodes = 1 if scenario == "single" else scenario
    interest = Interest(nats.url) if bus else None
    hubs = [start_hub(folder, "single" if scenario == "single" else f"node-{i}",
                      None if scenario == "single" else nats.url) for i in range(nodes)]
    generators = []
    try:
        def spread(count):
            return [count // nodes + (1 if i < count % nodes else 0) for i in range(nodes)]
        first = 0
        for (_, url), n, quiet in zip(hubs, spread(agents), spread(idle)):
            generators.append(subprocess.Popen(
                [sys.executable, os.path.join(HERE, "hub_load_agents.py"), "--url", url, "--tokens", tokens_file,
                 "--first", str(first), "--stream", str(n), "--idle", str(quiet), "--frame-samples", str(frame),
                 "--duration", str(duration + 6 + idle / 100)], stdout=subprocess.PIPE, text=True))
            first += n + quiet
        deadline = time.monotonic() + 30 + idle / 50
        while time.monotonic() < deadline and sum(json.loads(get(u + "/health"))["agents_online"]
                                                  for _, u in hubs) < agents + idle:
            time.sleep(0.2)
        time.sleep(1.0)  # past the connection bursts
        pids = [h.proc.pid for h, _ in hubs]
        nats_pid = nats.process.proc.pid
        b0, c0, n0, t0 = sum(iq_bytes(u) for _, u in hubs), sum(map(cpu_seconds, pids)), cpu_seconds(nats_pid), \
            time.monotonic()
        time.sleep(duration)
        b1, c1, n1, t1 = sum(iq_bytes(u) for _, u in hubs), sum(map(cpu_seconds, pids)), cpu_seconds(nats_pid), \
            time.monotonic()
        msps = (b1 - b0) / 8 / (t1 - t0) / 1e6
        online = sum(json.loads(get(u + "/health"))["agents_online"] for _, u in hubs)
        hub_cpu, nats_cpu = (c1 - c0) / (t1 - t0) * 100, (n1 - n0) / (t1 - t0) * 100
        dropped = 0
        for _, url in hubs:
            health = json.loads(get(url + "/health"))
            dropped += health.get("cluster", {}).get("data_dropped", 0)
        for g in generators:
            g.communicate(timeout=60)
        return {"msps": msps, "hub_cpu": hub_cpu, "nats_cpu": nats_cpu, "dropped": dropped, "online": online,
                "cpu_per_msps": (hub_cpu + nats_cpu) / msps if msps else float("nan")}
    finally:
        if interest:
            interest.stop()
        for g in generators:
            if g.poll() is None:
                g.kill()
                g.wait()
        for hub, _ in hubs:
            hub.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per scenario and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--agents", type=int, default=6, help="streaming agents, spread over the nodes")
    parser.add_argument("--frame", type=int, default=65536, help="samples per frame")
    parser.add_argument("--idle", type=int, default=0, help="idle agents for the second table (0: no such table)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ria-hub-cluster-") as folder:
        nats = NatsServer(os.path.join(folder, "nats")).start()
        try:
            files = {}
            need = max(args.agents, args.idle)
            for kind, tokens in (("single", single_tokens(folder, need)),
                                 ("cluster", cluster_tokens(folder, nats.url, need))):
                files[kind] = os.path.join(folder, f"{kind}-tokens.json")
                with open(files[kind], "w") as f:
                    json.dump(tokens, f)
            results = {s: [] for s in SCENARIOS}
            idle = {s: [] for s in IDLE_SCENARIOS}
            for _ in range(args.rounds):
                for s in SCENARIOS if args.agents else ():
                    results[s].append(run(folder, *s, files["single" if s[0] == "single" else "cluster"],
                                          args.agents, args.frame, args.duration, nats))
                for s in IDLE_SCENARIOS if args.idle else ():
                    idle[s].append(run(folder, s, False, files["single" if s == "single" else "cluster"], 0,
                                       1, args.duration, nats, idle=args.idle))
        finally:
            nats.stop()
    if args.idle:
        print(f"hub cluster, {args.idle} idle agents (a heartbeat a second each), {os.cpu_count()} cores, "
              f"{args.duration:.0f} s x {args.rounds} interleaved rounds (medians); peer: the single process")
        print(f"{'hub':>16} | {'online':>7} {'hubs CPU %':>10} {'NATS CPU %':>10} {'vs single':>9}")
        base_idle = statistics.median(r["hub_cpu"] + r["nats_cpu"] for r in idle["single"])
        for s in IDLE_SCENARIOS:
            rows = idle[s]
            cpu = statistics.median(r["hub_cpu"] for r in rows)
            nats_cpu = statistics.median(r["nats_cpu"] for r in rows)
            label = "single" if s == "single" else f"{s} node{'s' if s > 1 else ''}"
            print(f"{label:>16} | {min(r['online'] for r in rows):>7} {cpu:>10.1f} {nats_cpu:>10.1f} "
                  f"{(cpu + nats_cpu) / base_idle:>8.2f}x", flush=True)
    if not args.agents:
        return
    med = {s: {k: statistics.median(r[k] for r in results[s]) for k in results[s][0]} for s in SCENARIOS}
    base = med[("single", False)]["cpu_per_msps"]
    print(f"hub cluster ingest, {os.cpu_count()} cores, {args.agents} streaming agents, {args.frame}-sample cf32 "
          f"frames, {args.duration:.0f} s x {args.rounds} interleaved rounds (medians); peer: the single process")
    print(f"{'hub':>16} | {'ingest MS/s':>11} {'hubs CPU %':>10} {'NATS CPU %':>10} {'CPU %/MS/s':>10} "
          f"{'vs single':>9} {'bus drops':>9}")
    for s in SCENARIOS:
        m = med[s]
        n, bus = s
        label = "single" if n == "single" else f"{n} node{'s' if n > 1 else ''}{' + bus' if bus else ''}"
        print(f"{label:>16} | {m['msps']:>11.1f} {m['hub_cpu']:>10.0f} {m['nats_cpu']:>10.0f} "
              f"{m['cpu_per_msps']:>10.2f} {m['cpu_per_msps'] / base:>8.2f}x {m['dropped']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
