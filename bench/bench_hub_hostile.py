#!/usr/bin/env python3
"""The lab hub under the hostile inputs of issue 11, one after another against one hub process.

    source scripts/env.sh && python bench/bench_hub_hostile.py

For each attack: the hub's RSS growth (MiB), the bytes it wrote to its log (not counting the access log), the slowest /health and
/api/agents answer while the attack ran (ms, polled every 50 ms from another thread), the size of one
/api/agents answer after it, and what the hub did. A real agent (apps/ria_agent.py on riasim) streams
through all of it, and its frame count must keep growing: that is "the page still updates".

The hub before this change, measured by hand for issue 11 on the same kind of machine: 32 MB error
texts wrote 605 MB of log in 5 s (+568 MB RSS); a 30 MB hardware list made every /api/agents 30 MB and
300 ms; one NaN broke every page; 2000 rate changes while recording made 4000 files and /health took
23 s; 1143 half-sent requests took /health down for good.
"""

import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from lab import Lab, start_session  # noqa: E402
from scripted_agent import ScriptedAgent  # noqa: E402


def hub_log_bytes(lab):
    """What the hub logged, without the access log (the poller's own requests)."""
    return sum(len(line) + 1 for line in lab.hub.output.splitlines() if "aiohttp.access" not in line)


class Poller(threading.Thread):
    """Times /health and /api/agents every 50 ms until stopped; keeps the slowest answer (a timeout counts 10 s)."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.worst_ms, self.failures = lab, 0.0, 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            for call in (lambda: urllib.request.urlopen(self.lab.url + "/health", timeout=10).read(),
                         self.lab.api.agents):
                t = time.monotonic()
                try:
                    call()
                except Exception:
                    self.failures += 1
                self.worst_ms = max(self.worst_ms, (time.monotonic() - t) * 1000)
            self._done.wait(0.05)

    def stop(self):
        self._done.set()
        self.join()


def error_flood(lab, agent, agent_id):
    big = "x" * (60 * 1024)
    for i in range(2000):
        agent.send({"type": "error", "app_id": "a", "message": f"{i} {big}"})
    for _ in range(20):
        agent.send({"type": "error", "app_id": "a", "message": "y" * (32 << 20)})
    return "errors cut to 500 chars, 10 log lines per 10 s"


def hardware_and_nan(lab, agent, agent_id):
    agent.heartbeat(hardware=[f"radio-{i}" for i in range(4000)], stats={"frames_sent": float("nan")})
    agent.heartbeat(hardware=["r"] * (3 << 20))  # a 30 MB heartbeat: refused whole
    return "32 names kept, NaN dropped, 30 MB message refused"


def rate_changes_while_recording(lab, agent, agent_id):
    agent.send('{"type":"status","status":"streaming","app_id":"s"}')
    lab.wait_agent(agent_id, lambda a: a["status"] == "streaming")
    lab.api.record(agent_id, True)
    for i in range(2000):
        agent.send({"type": "stream_info", "app_id": "s", "sample_rate": 1e6 + (i % 2), "center_frequency": 1e8,
                    "gain": 0, "sample_format": "cf32", "sample_index": i * 64})
        agent.send(bytes(64 * 8))
    agent.heartbeat(status="streaming", app_id="s")
    lab.wait_agent(agent_id, lambda a: a["recording_ended"] is not None)
    files = [n for n in os.listdir(os.path.join(lab.data_dir, "recordings")) if n.endswith(".sigmf-meta")]
    return f"recording stopped after {len(files)} SigMF files"


def half_sent_requests(lab, agent, agent_id):
    port = int(lab.url.rsplit(":", 1)[1])
    held, refused = [], 0
    for i in range(1143):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(f"127.0.{1 + i // 60}.9", 0))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        except OSError:
            refused += 1
    for s in held:
        s.settimeout(0.01)
        try:
            if s.recv(20).startswith(b"HTTP/1.1 503"):
                refused += 1
        except OSError:
            pass
    for s in held:
        s.settimeout(30)
        try:
            s.recv(20)  # the header deadline closes the rest
        except OSError:
            pass
        s.close()
    metrics = urllib.request.urlopen(lab.url + "/metrics", timeout=10).read().decode()
    evicted = next(line.split()[1] for line in metrics.splitlines() if line.startswith("ria_hub_header_evictions_total"))
    return f"{evicted} evicted to make room at the cap, {refused} refused, the rest closed at the header timeout"


ATTACKS = [("error texts, 2000 x 60 KB + 20 x 32 MB", error_flood),
           ("4000-name hardware list, NaN stats, 30 MB heartbeat", hardware_and_nan),
           ("2000 rate changes while recording", rate_changes_while_recording),
           ("1143 half-sent requests from 20 addresses", half_sent_requests)]


def main():
    with tempfile.TemporaryDirectory() as folder:
        os.environ["RIASIM_CONTROL_DIR"] = os.path.join(folder, "riasim")
        lab = Lab(folder, serve_flags=["--header-timeout", "3"])
        try:
            real_id, _ = lab.start_agent("real")
            lab.wait_agent(real_id, lambda a: a["online"])
            start_session(lab, real_id, "benchhostile")
            rows = []
            for name, attack in ATTACKS:
                agent_id, token = lab.register_api("attacker")
                agent = ScriptedAgent(lab.url, token, agent_id)
                agent.heartbeat()
                lab.wait_agent(agent_id, lambda a: a["online"])
                rss, log_bytes = lab.hub.rss_mib(), hub_log_bytes(lab)
                frames = lab.api.agent(real_id)["stream"]["frames"]
                poller = Poller(lab)
                poller.start()
                outcome = attack(lab, agent, agent_id)
                agent.heartbeat()
                lab.wait_agent(real_id, lambda a: a["stream"]["frames"] > frames + 10)
                poller.stop()
                size = len(json.dumps(lab.api.agents()))
                rows.append((name, lab.hub.rss_mib() - rss, hub_log_bytes(lab) - log_bytes,
                             poller.worst_ms, poller.failures, size, outcome))
                agent.close()
            print(f"{'attack':<52} {'RSS +MiB':>8} {'log bytes':>10} {'worst ms':>9} {'failed':>6} "
                  f"{'/api/agents':>11}  outcome")
            for name, drss, dlog, worst, failed, size, outcome in rows:
                print(f"{name:<52} {drss:>8.1f} {dlog:>10} {worst:>9.0f} {failed:>6} {size:>11}  {outcome}")
            print("the real agent streamed through every attack (its frame count grew after each)")
        finally:
            lab.close()


if __name__ == "__main__":
    main()
