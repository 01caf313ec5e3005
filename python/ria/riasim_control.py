"""Fault injection for the riasim simulated radio, from this process or any other.

riasim reads a small control file per device serial (the directory is
$RIASIM_CONTROL_DIR, else /tmp/riasim-<uid>). This module writes it atomically:

    python3 -m gnuradio.ria.riasim_control unplug sim0 --style nodev
    python3 -m gnuradio.ria.riasim_control replug sim0
    python3 -m gnuradio.ria.riasim_control overflow sim0 --count 3
    python3 -m gnuradio.ria.riasim_control stall sim0 --seconds 2

Unplug styles (how readStream fails while the radio is gone, as real drivers do):
error (returns SOAPY_SDR_STREAM_ERROR), nodev ("No such device", errno 19),
eio ("Input/output error", errno 5), timeout (times out forever).
"""

import argparse
import os
import sys
import tempfile
import time

UNPLUG_STYLES = ("error", "nodev", "eio", "timeout")


def control_dir():
    return os.environ.get("RIASIM_CONTROL_DIR") or f"/tmp/riasim-{os.getuid()}"


def control_path(serial):
    if not serial or "/" in serial:
        raise ValueError(f"riasim serial {serial!r} must be a non-empty name without '/'")
    return os.path.join(control_dir(), f"{serial}.ctl")


def read_state(serial):
    state = {"present": "1", "style": "nodev", "overflow_total": "0", "stall_until": "0"}
    try:
        with open(control_path(serial)) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    state[key] = value
    except FileNotFoundError:
        pass
    return state


def _write_state(serial, state):
    path = control_path(serial)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{serial}.")
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in state.items()))
    os.replace(tmp, path)  # the driver never sees a half-written file


def unplug(serial, style="nodev"):
    if style not in UNPLUG_STYLES:
        raise ValueError(f"unplug style {style!r} is not one of {', '.join(UNPLUG_STYLES)}")
    state = read_state(serial)
    state.update(present="0", style=style)
    _write_state(serial, state)


def replug(serial):
    state = read_state(serial)
    state["present"] = "1"
    _write_state(serial, state)


def overflow(serial, count=1):
    if int(count) < 1:
        raise ValueError(f"overflow count must be >= 1, got {count}")
    state = read_state(serial)
    state["overflow_total"] = str(int(state["overflow_total"]) + int(count))
    _write_state(serial, state)


def stall(serial, seconds):
    if not float(seconds) > 0:
        raise ValueError(f"stall seconds must be > 0, got {seconds}")
    state = read_state(serial)
    state["stall_until"] = repr(time.time() + float(seconds))
    _write_state(serial, state)


def reset(serial):
    try:
        os.remove(control_path(serial))
    except FileNotFoundError:
        pass


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m gnuradio.ria.riasim_control",
        description="Unplug, replug, overflow or stall a riasim radio (any process that has it open sees it).")
    sub = p.add_subparsers(dest="action", required=True)
    u = sub.add_parser("unplug", help="the radio drops off the bus")
    u.add_argument("serial")
    u.add_argument("--style", choices=UNPLUG_STYLES, default="nodev", help="how reads fail meanwhile")
    sub.add_parser("replug", help="the radio is back").add_argument("serial")
    o = sub.add_parser("overflow", help="overflow bursts")
    o.add_argument("serial")
    o.add_argument("--count", type=int, default=1)
    s = sub.add_parser("stall", help="no samples for a while, then an overflow")
    s.add_argument("serial")
    s.add_argument("--seconds", type=float, default=1.0)
    sub.add_parser("reset", help="forget all injected faults").add_argument("serial")
    sub.add_parser("show", help="print the control file").add_argument("serial")
    a = p.parse_args(argv)
    try:
        if a.action == "unplug":
            unplug(a.serial, a.style)
        elif a.action == "replug":
            replug(a.serial)
        elif a.action == "overflow":
            overflow(a.serial, a.count)
        elif a.action == "stall":
            stall(a.serial, a.seconds)
        elif a.action == "reset":
            reset(a.serial)
        print(f"{control_path(a.serial)}: " + " ".join(f"{k}={v}" for k, v in read_state(a.serial).items()))
    except (ValueError, OSError) as e:
        print(f"riasim_control: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
