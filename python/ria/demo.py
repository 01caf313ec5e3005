"""`ria_agent.py demo`: a lab hub, an agent on the simulated radio, a session, a retune, and a live view.

Everything talks over real sockets on 127.0.0.1, as it would across a classroom: the agent registers
with a fresh key over HTTP, streams IQ over its WebSocket, and the hub measures the strongest emitter
in what arrives, so the view shows the radio's world, not numbers the demo made up.
"""

import os
import signal
import sys
import tempfile
import threading
import time

from .agent import service
from .agent.registration import register
from .hub.background import BackgroundHub
from .hub.client import HubClient
from .hub.server import HubConfig


def wait_for(predicate, stop, timeout, poll=0.1):
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        stop.wait(poll)
    return None


def fmt_hz(hz):
    return "-" if hz is None else f"{hz / 1e6:.4f} MHz"


def run(args):
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tty = sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="ria-demo-") as folder:
        config = HubConfig(os.path.join(folder, "hub"), port=args.port, zmq_endpoint="tcp://127.0.0.1:*")
        try:
            background = BackgroundHub(config).start()
        except RuntimeError as e:
            print(f"ria demo: {e} (is port {args.port} taken? try --port 0)", file=sys.stderr)
            return 2
        tb = None
        try:
            hub = HubClient(background.url, background.hub.admin_token)
            key = hub.create_key(uses=1, ttl_s=600, label="demo")["key"]
            agent_id, _ = register(background.url, key, "demo-agent", config_file=os.path.join(folder, "agent.json"))
            print(f"ria demo: hub on {background.url}, agent {agent_id} registered with a fresh single-use key")
            print(f"  live view: {background.url}/#token={background.hub.admin_token}")
            print(f"  IQ republished on ZeroMQ {background.hub.republisher.endpoint}, topic {agent_id}")
            url, token, _ = service.resolve(config_file=os.path.join(folder, "agent.json"))
            tb = service.build(url, token, device="driver=riasim", buffer_size=16384, sample_format="cf32",
                               overflow="drop", heartbeat_interval=2.0, hardware_names=["mock"], ca_file="",
                               insecure=False, name="demo-agent", simulator=True)
            tb.start()
            if not wait_for(lambda: any(a["online"] for a in hub.agents()), stop, 10):
                print("ria demo: the agent did not come online", file=sys.stderr)
                return 1
            rc = {"device": "driver=riasim,serial=demo0", "center_frequency": args.freq, "sample_rate": args.rate,
                  "gain": 30, "buffer_size": 16384}
            answer = hub.start(agent_id, rc)
            print(f"ria demo: session started at {fmt_hz(args.freq)}, {args.rate / 1e6:.3f} MS/s "
                  f"(ack: {answer['acked']}); Ctrl-C stops")
            return live_view(hub, agent_id, args, stop, tty)
        finally:
            if tb is not None:
                tb.stop()
                tb.wait()
            background.stop()
            if tty:
                print()
            print("ria demo: stopped")


def live_view(hub, agent_id, args, stop, tty):
    started = time.monotonic()
    retune_at = max(2.0, args.duration / 2) if args.duration else 5.0
    retuned = False
    last_samples, last_t = 0, started
    while not stop.wait(1.0):
        now = time.monotonic()
        view = hub.spectrum(agent_id)
        s, spectrum = view["stream"] or {}, view["spectrum"]
        rate = (s.get("samples", 0) - last_samples) / (now - last_t)
        last_samples, last_t = s.get("samples", 0), now
        peak = spectrum["peak_frequency"] if spectrum else None
        offset = f"{(peak - s['center_frequency']) / 1e3:+.1f} kHz" if spectrum else "-"
        line = (f"center {fmt_hz(s.get('center_frequency'))}  rate {rate / 1e6:6.3f} MS/s  frames {s.get('frames', 0)}"
                f"  drops {s.get('dropped_samples', 0)} in {s.get('gaps', 0)} gaps  strongest emitter "
                f"{fmt_hz(peak)} ({offset})")
        print("\r" + line if tty else line, end="" if tty else "\n", flush=True)
        if not retuned and now - started >= retune_at:
            answer = hub.configure(agent_id, {"center_frequency": args.retune})
            retuned = True
            print(f"{chr(10) if tty else ''}ria demo: hub retuned the agent to {fmt_hz(args.retune)} "
                  f"(ack: {answer['acked']}); the emitter should move by {(args.freq - args.retune) / 1e3:+.1f} kHz")
        if args.duration and now - started >= args.duration:
            break
    hub.stop(agent_id)
    return 0
