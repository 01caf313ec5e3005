#!/usr/bin/python3
"""ria_agent: turn this machine's radio into a remote agent of a RIA hub (the gr-ria lab hub or RIA Hub).

First time:
  ria_agent.py detect                                             # which radios are attached
  ria_agent.py register --hub http://HUB:8600 --api-key ria_reg_... --name bench-3
Then, as a service (see docs/operations.md for a systemd unit):
  ria_agent.py run --health-port 8700
The hub decides what the radio does: it starts a session (device, frequency, rate, gain), retunes it and stops it.

  ria_agent.py demo        # everything on this machine: a lab hub, an agent on the simulated radio, a retune
  ria_agent.py voice       # a voice agent instead: the sound card's microphone and speaker (docs/operations.md)

The agent offers the radios attached, real ones first: a start that names no device opens the first.
The simulated radio (riasim, "mock" to the hub) is offered only with --simulator (run, detect).
"""

import argparse
import logging
import os
import sys

# sysexits.h EX_CONFIG: the settings are wrong, so running again cannot help. The packaged systemd unit does not
# restart on it (RestartPreventExitStatus), where it used to restart every 5 s forever.
EX_CONFIG = 78


def cmd_register(args):
    from gnuradio.ria.agent.registration import RegistrationError, register

    try:
        agent_id, path = register(args.hub, args.api_key, args.name, ca_file=args.ca_file, insecure=args.insecure,
                                  config_file=args.config)
    except RegistrationError as e:
        print(f"registration failed: {e}", file=sys.stderr)
        return 1
    print(f"registered as {agent_id} ({args.name}) with {args.hub}")
    print(f"credentials saved to {path} (mode 0600); start the agent with: ria_agent.py run")
    return 0


def cmd_detect(args):
    import SoapySDR

    from gnuradio.ria.agent import hardware

    found = hardware.detect(network=args.network, simulator=args.simulator)
    if found:
        print(f"{'DEVICE':<10} {'DRIVER':<10} {'SERIAL / URI':<24} LABEL")
        for d in found:
            print(f"{d['name']:<10} {d['driver']:<10} {d.get('serial') or d.get('uri') or '-':<24} {d['label']}")
    else:
        print("no radios found" + ("" if args.network else " on local buses (add --network to look for "
                                    "network radios: USRP, Pluto, LimeSDR)"))
    modules = sorted(os.path.basename(m) for m in SoapySDR.listModules())
    names = [m[3:] if m.startswith("lib") else m for m in modules]
    names = [n[:-len("Support.so")] if n.endswith("Support.so") else n.rsplit(".so", 1)[0] for n in names]
    print(f"SoapySDR drivers installed: {', '.join(names) or 'none'}")
    if not args.simulator and "riasim" in names:
        print("the simulated radio (riasim) is installed but not offered: add --simulator to offer it")
    if not any(d["driver"] == "rtlsdr" for d in found) and os.path.isdir("/sys/module/dvb_usb_rtl28xxu"):
        print("the kernel's DVB-T driver dvb_usb_rtl28xxu is loaded: it claims RTL-SDR dongles before SoapySDR can; "
              "blacklist it (docs/operations.md, 'USB radios')")
    return 0


def cmd_run(args):
    return as_service(args, "run")


def cmd_voice(args):
    return as_service(args, "run_voice")


def as_service(args, entry):
    from gnuradio.ria.agent import service
    from gnuradio.ria.agent.config import ConfigError

    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(name)s: %(message)s")
    try:
        return getattr(service, entry)(args)
    except (service.SettingsError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EX_CONFIG


def cmd_demo(args):
    from gnuradio.ria import demo

    return demo.run(args)


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def hub_flags(p):
    p.add_argument("--url", default="", help="agent WebSocket URL, or several separated by spaces or commas (hub cluster "
                   "nodes, tried in turn; default: from the credentials file)")
    p.add_argument("--token", default="", help="agent token (default: from the credentials file)")


def service_flags(p, name):
    p.add_argument("--heartbeat-interval", type=positive(float), default=30.0, dest="heartbeat_interval")
    p.add_argument("--ca-file", default="", dest="ca_file")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--name", default=name)
    p.add_argument("--health-port", type=int, default=None, dest="health_port",
                   help="serve GET /health on this port (200 connected, 503 not); off by default")
    p.add_argument("--health-host", default="127.0.0.1", dest="health_host")
    p.add_argument("--metrics-interval", type=positive(float), default=10.0, dest="metrics_interval",
                   help="seconds between metrics lines in the log")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), dest="log_level")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ria_agent.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None,
                        help="credentials file (default $RIA_AGENT_CONFIG or ~/.ria/agent.json)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("register", help="register with a hub using a registration key; saves the credentials")
    p.add_argument("--hub", required=True, help="the hub's base URL, e.g. http://192.168.1.10:8600 (several, separated by "
                   "spaces or commas, for the nodes of a hub cluster: the agent rotates through them)")
    p.add_argument("--api-key", required=True, dest="api_key", help="registration key from the hub's operator "
                   "(ria_reg_...); a single-use key works once")
    p.add_argument("--name", default=os.uname().nodename, help="how the hub lists this agent (default: host name)")
    p.add_argument("--ca-file", default=None, help="CA certificate that signed an https hub's certificate")
    p.add_argument("--insecure", action="store_true", help="skip TLS verification (testing only)")
    p.set_defaults(run=cmd_register)

    p = sub.add_parser("detect", help="radios attached now and SoapySDR drivers installed")
    p.add_argument("--network", action="store_true", help="also look for network radios (USRP, Pluto, LimeSDR); "
                   "this broadcasts on the local network")
    p.add_argument("--simulator", action="store_true", help="also list the simulated radio (riasim, 'mock')")
    p.set_defaults(run=cmd_detect)

    p = sub.add_parser("run", help="run the agent until SIGINT/SIGTERM")
    hub_flags(p)
    p.add_argument("--device", default="", help="SoapySDR args of the device a start that names none opens "
                   "(default: the first radio advertised)")
    p.add_argument("--hardware", default="", help="device names for the heartbeat, comma separated "
                   "(default: the radios detect finds, real ones first)")
    p.add_argument("--simulator", action="store_true", help="offer the simulated radio (riasim, 'mock' to the hub) "
                   "after any real radio; without it a start on the simulator is refused")
    p.add_argument("--buffer-size", type=positive(int), default=1024, dest="buffer_size",
                   help="samples per frame until the hub asks for another size")
    p.add_argument("--sample-format", choices=("cf32", "cs16", "cs8"), default="cf32", dest="sample_format")
    p.add_argument("--overflow", choices=("drop", "block"), default="drop",
                   help="when the network is slower than the radio: drop frames (and say so) or block")
    service_flags(p, "gr-ria")
    tx = p.add_argument_group("transmit (off unless --allow-tx or tx_enabled in the config file)")
    tx.add_argument("--allow-tx", action="store_true", dest="allow_tx",
                    help="let the hub transmit through this agent's radio (within the caps below)")
    tx.add_argument("--tx-max-gain-db", type=float, default=None, dest="tx_max_gain_db",
                    help="refuse a TX gain above this (dB)")
    tx.add_argument("--tx-max-duration-s", type=positive(float), default=None, dest="tx_max_duration_s",
                    help="end a TX session after this much time on air (s)")
    tx.add_argument("--tx-freq-range", action="append", default=None, dest="tx_freq_range", metavar="LO:HI",
                    help="allowed TX centre frequencies in Hz, e.g. 433.05e6:434.79e6 (repeat for more ranges)")
    p.set_defaults(run=cmd_run)

    p = sub.add_parser("voice", help="run a voice agent on this machine's sound card until SIGINT/SIGTERM: the "
                       "microphone streams to the hub through an echo canceller, the speaker plays what the hub sends")
    hub_flags(p)
    p.add_argument("--audio-device", default="", dest="audio_device",
                   help="ALSA device of the microphone and the speaker, e.g. plughw:1,0 (default: ALSA's default)")
    p.add_argument("--rate", type=int, choices=(16000, 48000), default=16000, help="sample rate in Hz")
    p.add_argument("--sample-format", choices=("opus", "f32", "s16"), default="opus", dest="sample_format",
                   help="the microphone stream on the wire (default opus)")
    p.add_argument("--bitrate", type=positive(int), default=32000, help="Opus bit rate in bit/s (6000 to 256000)")
    p.add_argument("--tail-length", type=positive(float), default=0.4, dest="tail_length",
                   help="the echo canceller's tail: the room's reverberation it cancels, in s")
    p.add_argument("--max-delay", type=float, default=1.0, dest="max_delay",
                   help="the longest speaker-to-microphone delay the canceller finds, in s (0 to 2)")
    p.add_argument("--no-residual-suppression", action="store_false", dest="residual_suppression",
                   help="cancel the echo with the linear filter only (no residual echo suppressor)")
    p.add_argument("--noise-suppression", action="store_true", dest="noise_suppression",
                   help="also suppress stationary noise (speexdsp's noise suppressor)")
    service_flags(p, "gr-ria voice agent")
    p.set_defaults(run=cmd_voice)

    p = sub.add_parser("demo", help="a lab hub and an agent on the simulated radio, with a live view")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--rate", type=positive(float), default=2.048e6, help="sample rate in S/s (default 2.048e6)")
    p.add_argument("--freq", type=positive(float), default=100e6, help="first center frequency (default 100 MHz)")
    p.add_argument("--retune", type=positive(float), default=100.3e6,
                   help="the center frequency the hub retunes to (default 100.3 MHz)")
    p.add_argument("--port", type=int, default=8600, help="the demo hub's port (0: any free port)")
    p.set_defaults(run=cmd_demo)

    args = parser.parse_args(argv)
    if getattr(args, "duration", 0) < 0:
        parser.error("--duration must be >= 0")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
