#!/usr/bin/env python3
"""What the class overview costs the hub: one /api/spectra for every agent vs one /api/agents/ID/spectrum per agent.

    source scripts/env.sh && python bench/bench_page_overview.py [--agents 30] [--rounds 40]

A hub process with N streaming scripted agents (tests/class_agents.py). The two ways of fetching every agent's
spectrum are interleaved, round after round, from one client: the overview's single request (128 peak-pooled bins
per agent) and the peer, N per-agent requests (1024 bins each, as the page did before the overview). Prints the
median and 90th percentile time per round, the bytes per round, and the ratio.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from class_agents import ClassOfAgents  # noqa: E402
from lab import Lab  # noqa: E402


def fetch(lab, path):
    req = urllib.request.Request(lab.url + path, headers={"Authorization": f"Bearer {lab.api._token}"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return len(response.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        lab = Lab(folder, register_limit=max(40, args.agents + 5))
        group = None
        try:
            group = ClassOfAgents(lab, args.agents)
            ids = [a.agent_id for a in group.agents]
            ok, _ = Lab._poll(lambda: lab.api.request("GET", "/api/spectra?bins=128")["spectra"],
                              lambda s: len(s) == len(ids), 60)
            assert ok, "not every agent has a spectrum"
            times = {"overview": [], "per agent": []}
            sizes = {"overview": 0, "per agent": 0}
            for _ in range(args.rounds):
                t = time.perf_counter()
                sizes["overview"] = fetch(lab, "/api/spectra?bins=128")
                times["overview"].append(time.perf_counter() - t)
                t = time.perf_counter()
                sizes["per agent"] = sum(fetch(lab, f"/api/agents/{i}/spectrum") for i in ids)
                times["per agent"].append(time.perf_counter() - t)
        finally:
            if group:
                group.close()
            lab.close()
    print(f"{args.agents} streaming agents, {args.rounds} interleaved rounds, one client on 127.0.0.1")
    print(f"{'way':<38} {'median ms':>10} {'p90 ms':>8} {'bytes':>9}")
    for way, label in (("overview", "/api/spectra?bins=128 (1 request)"),
                       ("per agent", f"/api/agents/ID/spectrum ({args.agents} requests)")):
        t = sorted(times[way])
        print(f"{label:<38} {statistics.median(t) * 1e3:>10.1f} {t[int(0.9 * (len(t) - 1))] * 1e3:>8.1f} "
              f"{sizes[way]:>9}")
    ratio = statistics.median(times["per agent"]) / statistics.median(times["overview"])
    print(f"per-agent / overview, median time: {ratio:.1f}x; bytes: {sizes['per agent'] / sizes['overview']:.1f}x")


if __name__ == "__main__":
    main()
