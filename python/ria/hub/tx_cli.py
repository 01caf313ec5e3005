"""ria_hub.py tx / tx-stop / tx-configure: transmit through an agent, in words a person reads.

  ria_hub.py tx AGENT --freq 433.92e6 --rate 250e3 --gain 0 --tone 10e3 --duration 2
  ria_hub.py tx AGENT --freq 433.92e6 --rate 250e3 --gain 0 --tone 10e3 --keying 10110010 --symbol-rate 100
  ria_hub.py tx AGENT --freq 433.92e6 --gain 0 --file capture.sigmf-data      # streamed from this machine
  ria_hub.py tx-configure AGENT --freq 433.95e6 ; ria_hub.py tx-stop AGENT
"""

import math
import os
import sys
import threading
import time

from .client import HubError
from .limits import printable
from .tx_sources import DATATYPE, SourceError, read_sigmf_meta, sigmf_paths

POLL_S = 0.25
CHUNK_BYTES = 1 << 16
ENDED = ("underrun", "done", "error")


def add_parsers(sub, client_for):
    p = sub.add_parser("tx", help="transmit a tone, a keyed tone or a SigMF recording through an agent "
                                  "(waits for the end; Ctrl-C stops it)")
    p.add_argument("agent_id")
    p.add_argument("--freq", type=float, required=True, help="TX center frequency in Hz")
    p.add_argument("--rate", type=float, help="TX sample rate in S/s (default: the recording's)")
    p.add_argument("--gain", type=float, required=True, help="TX gain in dB")
    p.add_argument("--device", help="the agent's radio (default: the first in its heartbeat)")
    p.add_argument("--policy", choices=("pause", "zero", "repeat"), help="what the agent does when it runs dry "
                   "(pause: end the session, the default)")
    p.add_argument("--buffer-size", type=int, dest="buffer_size", help="samples per frame (default 4096)")
    p.add_argument("--app-id", dest="app_id")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", help="a cf32_le SigMF recording on this machine (x.sigmf-data, its .sigmf-meta "
                      "next to it), streamed through the hub")
    what.add_argument("--recording", help="a cf32_le SigMF recording in the hub's recordings folder, by file name")
    what.add_argument("--tone", type=float, metavar="HZ", help="a tone this far from the center frequency")
    p.add_argument("--duration", type=float, help="seconds of tone (keyed: repeats the pattern for this long)")
    p.add_argument("--amplitude", type=float, help="tone amplitude, 0 to 1 (default 0.5)")
    p.add_argument("--keying", metavar="BITS", help="key the tone with these bits, e.g. 10110 (on/off, or FSK)")
    p.add_argument("--symbol-rate", type=float, dest="symbol_rate", help="keying symbols per second")
    p.add_argument("--fsk-shift", type=float, dest="fsk_shift", metavar="HZ",
                   help="FSK instead of on/off: a 1 is tone+HZ/2, a 0 tone-HZ/2")
    p.add_argument("--no-wait", action="store_true", dest="no_wait",
                   help="return once the agent armed (not with --file, which streams from here)")
    p.set_defaults(run=lambda args: run(args, client_for(args), tx))

    p = sub.add_parser("tx-stop", help="stop an agent's transmission")
    p.add_argument("agent_id")
    p.set_defaults(run=lambda args: run(args, client_for(args), tx_stop))

    p = sub.add_parser("tx-configure", help="retune a transmitting agent (from the next frame on)")
    p.add_argument("agent_id")
    p.add_argument("--freq", type=float, help="TX center frequency in Hz")
    p.add_argument("--gain", type=float, help="TX gain in dB")
    p.add_argument("--rate", type=float, help="TX sample rate in S/s")
    p.set_defaults(run=lambda args: run(args, client_for(args), tx_configure))


def run(args, client, command):
    try:
        return command(args, client)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def hz(value):
    if value is None:
        return "?"
    for scale, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if abs(value) >= scale:
            return f"{value / scale:.6g} {unit}"
    return f"{value:g} Hz"


def settings_text(s):
    rate = s.get("tx_sample_rate")
    gain = s.get("tx_gain")
    if s.get("media") == "audio":
        return f"{hz(rate)} {s.get('sample_format', '?')}, volume {'?' if gain is None else f'{gain:g}'} dB"
    return f"{hz(s.get('tx_center_frequency'))}, {hz(rate).replace('Hz', 'S/s')}, gain " \
           f"{'?' if gain is None else f'{gain:g}'} dB"


def _source(args):
    """(source description, rate, file path to stream or None)."""
    if args.file:
        data, meta = sigmf_paths(os.path.expanduser(args.file))
        rate = read_sigmf_meta(meta)
        if not os.path.isfile(data):
            raise SourceError(f"{data} not found")
        if args.rate is not None and args.rate != rate:
            raise SourceError(f"--rate {args.rate:g} differs from the recording's {rate:g} S/s (the hub does not "
                              "resample); leave --rate out to transmit at the recording's rate")
        samples = os.path.getsize(data) // 8
        return {"kind": "upload", "datatype": DATATYPE, "sample_rate": rate, "samples": samples,
                "name": os.path.basename(data)}, rate, data
    if args.rate is None:
        raise SourceError("--rate is required with --tone or --recording")
    if args.recording:
        return {"kind": "recording", "name": args.recording}, args.rate, None
    source = {"kind": "tone", "offset_hz": args.tone}
    for flag, key in (("duration", "duration_s"), ("amplitude", "amplitude"), ("keying", "keying"),
                      ("symbol_rate", "symbol_rate")):
        if getattr(args, flag) is not None:
            source[key] = getattr(args, flag)
    if args.fsk_shift is not None:
        source.update(modulation="fsk", shift_hz=args.fsk_shift)
    if args.duration is None and args.keying is None:
        raise SourceError("--tone needs --duration (or --keying with --symbol-rate)")
    return source, args.rate, None


def _chunks(path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def tx(args, client):
    source, rate, path = _source(args)
    rc = {"tx_center_frequency": args.freq, "tx_sample_rate": rate, "tx_gain": args.gain}
    for flag, key in (("device", "device"), ("policy", "underrun_policy"), ("buffer_size", "buffer_size")):
        if getattr(args, flag) is not None:
            rc[key] = getattr(args, flag)
    try:
        answer = client.tx_start(args.agent_id, rc, source, app_id=args.app_id)
    except HubError as e:
        print(f"TX refused: {str(e).split(': ', 1)[-1]}", file=sys.stderr)
        return 1
    app_id = answer["app_id"]
    try:
        if path:
            return _upload_and_follow(client, args.agent_id, app_id, answer["upload"], path)
        print(_armed_line(args.agent_id, answer["session"]), flush=True)
        return 0 if args.no_wait else _follow(client, args.agent_id, app_id, printed="armed")
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return tx_stop(args, client)


def _armed_line(agent_id, s):
    flow = f"credit flow control, the agent holds {s['queue_samples']} samples" if s["flow"] == "credit" else \
        "paced at the sample rate (the agent reports no progress)"
    return f"TX {s['app_id']} armed on {agent_id}: {settings_text(s['settings'])}; {flow}"


def _upload_and_follow(client, agent_id, app_id, upload_path, path):
    """The file goes up in a thread of its own (the hub arms the agent once its first frame is in) while this
    one reports the session."""
    outcome = {}

    def upload():
        try:
            outcome["answer"] = client.tx_upload(upload_path, _chunks(path))
        except HubError as e:  # refused, or the session ended while the file was still going up
            outcome["error"] = e

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    print(f"uploading {os.path.basename(path)} ({os.path.getsize(path)} bytes) through the hub…", flush=True)
    status = _follow(client, agent_id, app_id)
    thread.join(5)
    if "answer" in outcome and outcome["answer"].get("note"):
        print(f"  note: {outcome['answer']['note']}", flush=True)
    return status


def _find(client, agent_id, app_id):
    view = client.agent(agent_id).get("tx") or {}
    for key in ("session", "last"):
        if view.get(key) and view[key]["app_id"] == app_id:
            return view[key]
    return None


def _follow(client, agent_id, app_id, printed=None):
    """Prints state changes until the session ends; 0 when it ended as it should."""
    armed_shown, last_state, last_print = printed == "armed", printed, time.monotonic()
    while True:
        s = _find(client, agent_id, app_id)
        if s is None:
            print(f"error: the hub no longer knows TX session {app_id}", file=sys.stderr)
            return 1
        if s.get("armed_at") and not armed_shown:
            print(_armed_line(agent_id, s), flush=True)
            armed_shown = True
        if s["state"] in ENDED:
            return _summary(s)
        now = time.monotonic()
        if s["state"] in ("armed", "transmitting") and (s["state"] != last_state or now - last_print >= 1.0):
            print(f"  {s['state']}: {_counts(s)}", flush=True)
            last_state, last_print = s["state"], now
        time.sleep(POLL_S)


def _counts(s):
    rate = (s.get("settings") or {}).get("tx_sample_rate")
    seconds = f" ({s['sent_samples'] / rate:.2f} s)" if rate else ""
    text = f"{s['sent_samples']} samples sent{seconds}"
    if s.get("played") is not None:
        text += f", {s['played']} played"
    if s.get("samples_played") is not None:
        text += f", {s['samples_played']} played in all"
    if s.get("underruns"):
        text += f", {s['underruns']} underruns"
    return text


def _summary(s):
    why = s.get("message") or s.get("stop_reason")
    natural = s["state"] == "done" or (s["state"] == "underrun" and s["source_done"])
    stream = sys.stdout if natural else sys.stderr
    print(f"TX {s['app_id']} {s['state']}{f': {printable(why, 300)}' if why else ''} — {_counts(s)}",
          file=stream, flush=True)
    if s["state"] == "underrun" and s["source_done"]:
        print("  (the agent ran dry after the last sample: the end of the source)", flush=True)
    return 0 if natural else 1


def tx_stop(args, client):
    answer = client.tx_stop(args.agent_id)
    if answer["session"] is None:
        print(f"{args.agent_id}: {answer['message']}")
        return 0
    return _summary(answer["session"])


def tx_configure(args, client):
    rc = {key: getattr(args, flag) for flag, key in (("freq", "tx_center_frequency"), ("gain", "tx_gain"),
                                                     ("rate", "tx_sample_rate")) if getattr(args, flag) is not None}
    if not rc:
        print("error: tx-configure needs at least one of --freq, --gain, --rate", file=sys.stderr)
        return 2
    if any(not math.isfinite(v) for v in rc.values()):
        print("error: values must be finite numbers", file=sys.stderr)
        return 2
    answer = client.tx_configure(args.agent_id, rc)
    if answer["tx_info"]:
        print(f"TX {answer['app_id']}: from sample {answer['tx_info']['sample_index']} the radio is at "
              f"{settings_text(answer['tx_info'])}")
    else:
        print(f"TX {answer['app_id']}: tx_configure sent before sample {answer['sample_index']} "
              "(this agent does not confirm changes)")
    return 0
