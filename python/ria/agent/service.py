"""The headless agent: the ria.iq_agent flowgraph, its health endpoint and its metrics line, until a signal."""

import logging
import signal
import threading

from . import config, hardware
from .health import HealthServer, MetricsLine, snapshot

log = logging.getLogger("ria_agent")


class SettingsError(ValueError):
    """The agent cannot run with these settings; str() says which and what to do."""


def resolve(url="", token="", config_file=None):
    """The WebSocket URL and token: flags first, then the config file that `register` wrote."""
    saved = config.load(config_file)
    token = token or saved.get("token", "")
    if not url:
        if not saved.get("hub_url"):
            raise SettingsError(f"this agent is not registered ({config_file or config.path()} has no hub_url): "
                                "run `ria_agent.py register --hub URL --api-key KEY` first, or pass --url and --token")
        url = config.ws_url(saved["hub_url"], saved.get("agent_id", ""))
    if not token:
        raise SettingsError("no agent token: register first, or pass --token")
    return url, token, saved


def build(url, token, device, buffer_size, sample_format, overflow, heartbeat_interval, hardware_names, ca_file,
          insecure, name):
    from gnuradio import gr

    from ..iq_agent import iq_agent

    tb = gr.top_block("ria_agent")
    tb.agent = iq_agent(url=url, token=token, device=device, buffer_size=buffer_size, sample_format=sample_format,
                        overflow=overflow, heartbeat_interval=heartbeat_interval, hardware_names=hardware_names,
                        ca_file=ca_file, insecure=insecure, agent_name=name)
    tb.connect(tb.agent)
    return tb


def run(args, stop=None):
    """Runs until SIGINT/SIGTERM (or `stop` is set); returns the exit status."""
    url, token, saved = resolve(args.url, args.token, args.config)
    names = args.hardware or ",".join(hardware.hardware_names()) or "mock"
    tb = build(url, token, args.device, args.buffer_size, args.sample_format, args.overflow, args.heartbeat_interval,
               names, args.ca_file or saved.get("ca_file", ""), args.insecure or bool(saved.get("insecure")),
               saved.get("name") or args.name)
    sink = tb.agent.sink
    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    health = HealthServer(args.health_host, args.health_port, sink).start() if args.health_port is not None else None
    if health:
        log.info("health endpoint on http://%s:%d/health", args.health_host, health.port)
    metrics = MetricsLine()
    tb.start()
    log.info("agent running (hardware: %s); Ctrl-C or SIGTERM stops it", names)
    try:
        while not stop.wait(args.metrics_interval):
            log.info(metrics.format(snapshot(sink)))
    finally:
        log.info("stopping")
        tb.stop()
        tb.wait()
        if health:
            health.close()
    log.info("stopped")
    return 0
