"""ria_hub.py agents / start / stop / configure / record: an agent's receive session, in words a person reads
(or the API's JSON with --json).

  ria_hub.py agents
  ria_hub.py start AGENT --freq 100e6 --rate 2.048e6 [--record]
  ria_hub.py configure AGENT --freq 100.3e6 ; ria_hub.py stop AGENT ; ria_hub.py record AGENT on|off
"""

import json
import sys
import time

from .client import HubError
from .limits import printable
from .tx_cli import hz

RADIO_FLAGS = (("device", "device"), ("freq", "center_frequency"), ("rate", "sample_rate"), ("gain", "gain"),
               ("bandwidth", "bandwidth"), ("antenna", "antenna"), ("buffer_size", "buffer_size"),
               ("sample_format", "sample_format"))


def add_parsers(commands, client_for):
    run = (lambda command: (lambda args: call(args, client_for, command)))
    commands.add_parser("agents", run=run(agents), help="registered agents, online or not")
    p = commands.add_parser("start", run=run(start), help="start a session on an agent (waits for its answer)")
    p.add_argument("agent_id")
    p.add_argument("--app-id", dest="app_id")
    p.add_argument("--record", action="store_true", help="record the session as SigMF in DATA_DIR/recordings")
    add_radio_flags(p, True)
    p = commands.add_parser("stop", run=run(stop), help="stop an agent's session")
    p.add_argument("agent_id")
    p = commands.add_parser("configure", run=run(configure), help="retune a streaming agent")
    p.add_argument("agent_id")
    add_radio_flags(p, False)
    p = commands.add_parser("record", run=run(record), help="start or stop a SigMF recording of an agent's session")
    p.add_argument("agent_id")
    p.add_argument("state", choices=("on", "off"))


def add_radio_flags(p, with_device):
    if with_device:
        p.add_argument("--device", help="mock, rtlsdr, hackrf, pluto, usrp, bladerf, airspy, lime or SoapySDR args "
                       "(default: the first device in the agent's heartbeat)")
    p.add_argument("--freq", type=float, help="center frequency in Hz")
    p.add_argument("--rate", type=float, help="sample rate in S/s")
    p.add_argument("--gain", type=float, help="gain in dB")
    p.add_argument("--bandwidth", type=float, help="analog bandwidth in Hz")
    p.add_argument("--antenna", help="antenna name")
    p.add_argument("--buffer-size", type=int, dest="buffer_size", help="samples per binary frame")
    p.add_argument("--sample-format", dest="sample_format", choices=("cf32", "cs16", "cs8"))


def radio_config(args):
    return {key: getattr(args, flag) for flag, key in RADIO_FLAGS if getattr(args, flag, None) is not None}


def call(args, client_for, command):
    client = client_for(args)
    try:
        return command(args, client)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def emit(args, result, text):
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def agents(args, client):
    listing = client.agents()
    if args.json:
        return emit(args, listing, "")
    print(f"{'AGENT':<20} {'NAME':<16} {'STATE':<10} {'TX':<13} {'HARDWARE':<16} LAST HEARTBEAT")
    for a in listing:
        state = a["status"] if a["online"] or a["status"] == "revoked" else "offline"
        seen = time.strftime("%H:%M:%S", time.localtime(a["last_heartbeat"])) if a["last_heartbeat"] else "-"
        name, hardware = printable(a["name"], 16), printable(",".join(a["hardware"]), 16)
        print(f"{printable(a['agent_id'], 20):<20} {name:<16} {state:<10} {tx_column(a):<13} {hardware:<16} {seen}")
    for a in listing:
        twin = a.get("twin_connections")
        if twin:
            print(f"warning: agent {printable(a['agent_id'], 20)}: {twin['last_minute']} connections replaced in the "
                  f"last minute, from {printable(' and '.join(twin['addresses']), 200)}: is it running twice?")
    return 0


def tx_column(agent):
    tx = agent.get("tx") or {}
    if tx.get("session"):
        return printable(tx["session"]["state"], 13)
    caps = tx.get("caps") or {}
    return "unreadable" if caps.get("error") else "offered" if caps.get("tx_enabled") else "-"


def describe(rc):
    """'center 100 MHz, rate 2.048 MS/s, cs16' for the settings a command sent."""
    words = {"center_frequency": lambda v: f"center {hz(v)}", "sample_rate": lambda v: f"rate {v / 1e6:.6g} MS/s",
             "gain": lambda v: f"gain {v:g} dB", "bandwidth": lambda v: f"bandwidth {hz(v)}",
             "buffer_size": lambda v: f"{v} samples a frame"}
    return ", ".join(words.get(key, lambda v: f"{key.replace('_', ' ')} {printable(str(v), 80)}")(value)
                     for key, value in rc.items())


def start(args, client):
    rc = radio_config(args)
    result = client.start(args.agent_id, rc, app_id=args.app_id, record=args.record)
    chosen = f" ({describe(rc)})" if rc else " (the agent's defaults)"
    return emit(args, result, f"{args.agent_id} is {result['status']}{chosen}"
                              + ("; recording to DATA_DIR/recordings" if args.record else ""))


def stop(args, client):
    result = client.stop(args.agent_id)
    return emit(args, result, f"{args.agent_id} stopped; it is {result['status'] or 'idle'}")


def configure(args, client):
    rc = radio_config(args)
    if not rc:
        print("error: configure needs at least one setting, e.g. --freq 101e6", file=sys.stderr)
        return 2
    result = client.configure(args.agent_id, rc)
    answer = {True: "the agent confirmed", None: "sent; this agent does not confirm changes"}.get(
        result.get("acked"), "not confirmed")
    return emit(args, result, f"{args.agent_id} reconfigured ({describe(rc)}): {answer}")


def record(args, client):
    result = client.record(args.agent_id, args.state == "on")
    if args.state == "on":
        return emit(args, result, f"recording {args.agent_id} to {result['recording']}")
    files = ", ".join(result.get("files") or []) or "nothing was being recorded"
    return emit(args, result, f"stopped recording {args.agent_id}: {files}")
