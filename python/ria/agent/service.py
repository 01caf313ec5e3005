"""The headless agent: the ria.iq_agent flowgraph (or ria.voice_agent on the sound card), its health endpoint and
its metrics line, until a signal."""

import logging
import signal
import threading

from ..wire import devices, tx
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


def offer(hardware_flag="", device_flag="", simulator=False):
    """What the agent advertises and opens by default: (heartbeat names, default device args).

    The names are --hardware's, or the radios attached now (real ones first, the simulated radio last and only
    with --simulator); the default device is --device, or the first of those ("" when there is none: a start
    must then name its device).
    """
    if hardware_flag:
        names = [h.strip() for h in hardware_flag.split(",") if h.strip()]
        default = devices.soapy_args(names[0]) if names else ""
    else:
        found = hardware.detect(simulator=simulator)
        names = hardware.names(found)
        default = hardware.device_args(found[0]) if found else ""
    device = device_flag or default
    if not simulator:
        if any(devices.is_simulator(devices.soapy_args(n)) for n in names if "=" not in n):
            raise SettingsError("--hardware names the simulated radio (mock or sim): add --simulator to offer it")
        if devices.is_simulator(device):
            raise SettingsError(f"--device {device} is the simulated radio: add --simulator to offer it")
    return names, device


def interlocks(args, saved):
    """The operator's TX opt-in and caps: flags first, then the config file (the RIA agent's keys)."""
    pick = (lambda flag, key: flag if flag is not None else saved.get(key))
    ranges = args.tx_freq_range
    try:
        return tx.Interlocks(
            enabled=args.allow_tx or saved.get("tx_enabled") is True,
            max_gain_db=pick(args.tx_max_gain_db, "tx_max_gain_db"),
            max_duration_s=pick(args.tx_max_duration_s, "tx_max_duration_s"),
            allowed_freq_ranges=",".join(ranges) if ranges else saved.get("tx_allowed_freq_ranges"))
    except ValueError as e:
        raise SettingsError(f"TX settings: {e}") from None


def tx_settings(interlocks):
    """Interlocks as the keyword arguments of ria.iq_agent."""
    return dict(allow_tx=interlocks.enabled, tx_max_gain_db=interlocks.max_gain_db,
                tx_max_duration_s=interlocks.max_duration_s, tx_allowed_freq_ranges=interlocks.allowed_freq_ranges)


def build(url, token, device, buffer_size, sample_format, overflow, heartbeat_interval, hardware_names, ca_file,
          insecure, name, simulator=False, tx_interlocks=None):
    from gnuradio import gr

    from ..iq_agent import iq_agent

    tb = gr.top_block("ria_agent")
    tb.agent = iq_agent(url=url, token=token, device=device, buffer_size=buffer_size, sample_format=sample_format,
                        overflow=overflow, heartbeat_interval=heartbeat_interval, hardware_names=list(hardware_names),
                        ca_file=ca_file, insecure=insecure, agent_name=name, offer_simulator=simulator,
                        **tx_settings(tx_interlocks or tx.Interlocks()))
    tb.connect(tb.agent)
    return tb


def build_voice(url, token, audio_device, rate, sample_format, bitrate, tail_length, max_delay, residual_suppression,
                noise_suppression, heartbeat_interval, ca_file, insecure, name):
    """ria.voice_agent between the sound card's microphone and its speaker (gr-audio, ALSA)."""
    from gnuradio import audio, gr

    from ..voice_agent import voice_agent

    tb = gr.top_block("ria_voice_agent")
    tb.agent = voice_agent(url=url, token=token, sample_rate=rate, sample_format=sample_format, bitrate=bitrate,
                           tail_length=tail_length, max_delay=max_delay, heartbeat_interval=heartbeat_interval,
                           ca_file=ca_file, insecure=insecure, agent_name=name,
                           residual_suppression=residual_suppression, noise_suppression=noise_suppression)
    tb.microphone = audio.source(rate, audio_device, True)
    tb.speaker = audio.sink(rate, audio_device, True)
    tb.connect(tb.microphone, tb.agent, tb.speaker)
    return tb


def run(args, stop=None):
    """The radio agent; runs until SIGINT/SIGTERM (or `stop` is set); returns the exit status."""
    url, token, saved = resolve(args.url, args.token, args.config)
    names, device = offer(args.hardware, args.device, args.simulator)
    caps = interlocks(args, saved)
    tb = build(url, token, device, args.buffer_size, args.sample_format, args.overflow, args.heartbeat_interval,
               names, args.ca_file or saved.get("ca_file", ""), args.insecure or bool(saved.get("insecure")),
               saved.get("name") or args.name, simulator=args.simulator, tx_interlocks=caps)
    if caps.enabled:
        log.info("TX allowed: %s", tx.describe(caps))
    if device:
        running = (f"agent running (hardware: {', '.join(names) or '-'}; a start that names no device opens "
                   f"{device}); Ctrl-C or SIGTERM stops it")
    else:
        running = ("agent running with no radio attached (add --simulator to offer the simulated radio): a start "
                   "must name its device; Ctrl-C or SIGTERM stops it")
    return serve(tb, tb.agent.sink, getattr(tb.agent, "tx_stream", None), None, args, running, stop,
                 warn=not device)


def run_voice(args, stop=None):
    """The voice agent on the sound card; runs until SIGINT/SIGTERM (or `stop` is set); returns the exit status."""
    url, token, saved = resolve(args.url, args.token, args.config)
    tb = build_voice(url, token, args.audio_device, args.rate, args.sample_format, args.bitrate, args.tail_length,
                     args.max_delay, args.residual_suppression, args.noise_suppression, args.heartbeat_interval,
                     args.ca_file or saved.get("ca_file", ""), args.insecure or bool(saved.get("insecure")),
                     saved.get("name") or args.name)
    running = (f"voice agent running (audio device {args.audio_device or 'default'}, {args.rate} Hz, microphone as "
               f"{args.sample_format}); Ctrl-C or SIGTERM stops it")
    return serve(tb, tb.agent.mic_sink, tb.agent.speaker, tb.agent, args, running, stop)


def serve(tb, sink, tx_stream, voice, args, running, stop=None, warn=False):
    """Runs a built agent with its health endpoint and metrics line until a signal (or `stop`)."""
    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    health = None
    if args.health_port is not None:
        health = HealthServer(args.health_host, args.health_port, sink, tx_stream, voice).start()
        log.info("health endpoint on http://%s:%d/health", args.health_host, health.port)
    metrics = MetricsLine()
    tb.start()
    (log.warning if warn else log.info)("%s", running)
    try:
        while not stop.wait(args.metrics_interval):
            log.info(metrics.format(snapshot(sink, tx_stream, voice)))
    finally:
        log.info("stopping")
        tb.stop()
        tb.wait()
        if health:
            health.close()
    log.info("stopped")
    return 0
