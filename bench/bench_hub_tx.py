"""Hub → agent TX throughput on this machine: a hub process sends a tone to an agent scripted like gr-ria's
(credit flow control; it "plays" as fast as it receives), and the agent measures what arrived.

It measures the hub's sender (source, credit loop, awaited WebSocket sends) and the scripted agent's Python
receiver together, so it is a floor for the hub, not the C++ agent's figure. One row per frame size.

  python bench/bench_hub_tx.py [--seconds 20]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from lab import Lab  # noqa: E402
from scripted_agent import ScriptedAgent, TxPlayer  # noqa: E402

from gnuradio.ria.wire.tx import Interlocks  # noqa: E402

RATE = 1e9  # so that the credit, not a pace, is the limit
FRAMES = (4096, 16384, 65536)


def run(lab, frame, seconds):
    agent_id, token = lab.register_api(f"bench-{frame}")
    agent = ScriptedAgent(lab.url, token, agent_id)
    try:
        player = TxPlayer(agent, Interlocks(True), queue_samples=8 * frame, play_rate=1e12, policy_underrun=False,
                          keep=False)
        player.heartbeat()
        lab.wait_agent(agent_id, lambda a: a["tx"]["caps"]["tx_enabled"])
        lab.api.tx_start(agent_id, {"tx_sample_rate": RATE, "tx_center_frequency": 1e8, "tx_gain": 0,
                                    "device": "mock", "buffer_size": frame},
                         {"kind": "tone", "offset_hz": 1e6, "duration_s": 3600})
        time.sleep(1.0)  # past the start
        start_samples, start = player.received, time.monotonic()
        rss = lab.hub.rss_mib()
        time.sleep(seconds)
        got, elapsed = player.received - start_samples, time.monotonic() - start
        rss = max(rss, lab.hub.rss_mib())
        lab.api.tx_stop(agent_id)
        return got / elapsed / 1e6, player.max_unplayed, rss
    finally:
        agent.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        lab = Lab(folder)
        try:
            print(f"{'frame (samples)':>16} {'MS/s':>8} {'max unplayed':>13} {'queue':>8} {'hub RSS MiB':>12}")
            for frame in FRAMES:
                rate, unplayed, rss = run(lab, frame, args.seconds)
                print(f"{frame:>16} {rate:>8.1f} {unplayed:>13} {8 * frame:>8} {rss:>12.0f}", flush=True)
        finally:
            lab.close()


if __name__ == "__main__":
    main()
