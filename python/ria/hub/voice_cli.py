"""ria_hub.py say / play: speak through a voice agent's speaker (docs/protocol.md §8), in words a person reads.

  ria_hub.py say AGENT "The lab closes at five."  [--voice en+f3] [--format opus|s16|f32] [--rate 16000]
  ria_hub.py play AGENT greeting.wav [--volume -6]
  ria_hub.py tx-stop AGENT        # stops either

Exit status: 0 when the agent played it all (or armed, with --no-wait), 1 when the hub or the agent refused or the
session ended early, 2 for a file that cannot be read here.
"""

import os
import sys

from .client import HubError
from .tx_cli import _follow, run, settings_text, tx_stop

MAX_FILE_BYTES = 32 << 20


def add_parsers(sub, client_for):
    p = sub.add_parser("say", help="speak text through a voice agent's speaker (espeak-ng on the hub; waits for "
                                   "the end, Ctrl-C stops it)")
    p.add_argument("agent_id")
    p.add_argument("text")
    p.add_argument("--voice", help="an espeak-ng voice: en, en-us, en+f3, de, … (default: espeak-ng's)")
    _common(p)
    p.set_defaults(run=lambda args: run(args, client_for(args), say))

    p = sub.add_parser("play", help="play a PCM WAV file through a voice agent's speaker (waits for the end)")
    p.add_argument("agent_id")
    p.add_argument("file", help="a PCM WAV file on this machine (8 to 32-bit, mono or stereo; resampled by the hub)")
    _common(p)
    p.set_defaults(run=lambda args: run(args, client_for(args), play))


def _common(p):
    p.add_argument("--format", dest="sample_format", choices=("opus", "s16", "f32"),
                   help="what goes on the wire (default opus)")
    p.add_argument("--rate", type=int, dest="sample_rate",
                   help="sample rate in Hz (default: the agent's microphone rate, else 16000)")
    p.add_argument("--volume", type=float, dest="volume_db", help="speaker volume in dB, -60 to 20 (default 0)")
    p.add_argument("--bitrate", type=int, help="Opus bit rate in bit/s (default 32000)")
    p.add_argument("--app-id", dest="app_id")
    p.add_argument("--no-wait", action="store_true", dest="no_wait", help="return once the agent armed")


def _options(args):
    return {k: getattr(args, k) for k in ("sample_format", "sample_rate", "volume_db", "bitrate", "app_id")}


def _refused(what, e):
    print(f"{what} refused: {str(e).split(': ', 1)[-1]}", file=sys.stderr)
    return 1


def say(args, client):
    try:
        answer = client.say(args.agent_id, args.text, voice=args.voice, **_options(args))
    except HubError as e:
        return _refused("say", e)
    return _go(args, client, answer)


def play(args, client):
    path = os.path.expanduser(args.file)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            print(f"error: {path} is {size} bytes; the hub plays WAV files of at most {MAX_FILE_BYTES} bytes",
                  file=sys.stderr)
            return 2
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    try:
        answer = client.play(args.agent_id, data, name=os.path.basename(path), **_options(args))
    except HubError as e:
        return _refused("play", e)
    return _go(args, client, answer)


def _go(args, client, answer):
    s = answer["session"]
    if answer.get("error"):  # the agent refused or did not answer
        print(f"{s['source']['kind']} refused by the agent: {answer['error']}", file=sys.stderr)
        return 1
    src = s["source"]
    what = f"\"{src['text']}\"" if src["kind"] == "say" else src.get("name", "the file")
    print(f"{src['kind']} {s['app_id']} armed on {args.agent_id}: {what}, {src['duration_s']:.2f} s at "
          f"{settings_text(s['settings'])}", flush=True)
    if args.no_wait:
        return 0
    try:
        return _follow(client, args.agent_id, s["app_id"], printed="armed")
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return tx_stop(args, client)
