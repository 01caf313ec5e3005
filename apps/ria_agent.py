#!/usr/bin/env python3
"""ria_agent: run a GNU Radio flowgraph as a remote agent of a RIA hub.

Commands:
  demo   a headless receiver on the simulated radio (riasim) with a live status line;
         by default the radio is unplugged after 4 s and replugged 2 s later, to show
         the source riding through it.
"""

import argparse
import signal
import sys
import threading
import time

from gnuradio import blocks, gr, ria


def build_demo(args):
    tb = gr.top_block("ria_demo")
    device = f"driver=riasim,serial={args.serial}"
    if args.faults:
        device += f",faults={args.faults}"
    src = ria.sdr_source(device, 0, args.rate, args.freq, args.gain, False, 0.0, "",
                         "reconnect", 0.5, 1.0)
    sink = blocks.null_sink(gr.sizeof_gr_complex)
    status = ria.message_collector()
    tb.connect(src, sink)
    tb.msg_connect(src, "status", status, "in")
    return tb, src, status


def describe(event):
    name = event.get("event", "?")
    if name == "disconnected":
        return f"disconnected: {event.get('reason', '')}"
    if name == "error":
        return f"error: {event.get('message', '')}"
    return name


def run_demo(args):
    tb, src, status = build_demo(args)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tty = sys.stdout.isatty()
    print(f"ria demo: riasim '{args.serial}' at {args.freq / 1e6:.3f} MHz, {args.rate / 1e6:.3f} MS/s"
          f"{', faults ' + args.faults if args.faults else ''}; Ctrl-C stops")
    tb.start()
    started = time.monotonic()
    last_items, last_t, seen = 0, started, 0
    try:
        while not stop.wait(1.0):
            now = time.monotonic()
            items = src.nitems_written(0)
            delivered = (items - last_items) / (now - last_t)
            last_items, last_t = items, now
            events = status.events()
            for event in events[seen:]:
                if tty:
                    print()
                print(f"  event: {describe(event)}")
            seen = len(events)
            line = (f"state={src.state():<12} rate={args.rate / 1e6:.3f} MS/s "
                    f"delivered={delivered / 1e6:6.3f} MS/s overflows={src.overflows()} "
                    f"disconnects={src.disconnects()} samples={items}")
            print("\r" + line if tty else line, end="" if tty else "\n", flush=True)
            if args.duration and now - started >= args.duration:
                break
    finally:
        tb.stop()
        tb.wait()
        if tty:
            print()
    print(f"ria demo: stopped after {time.monotonic() - started:.1f} s, {src.nitems_written(0)} samples")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ria_agent.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="receive from the simulated radio and show a live status line")
    demo.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run until Ctrl-C)")
    demo.add_argument("--rate", type=float, default=2.048e6, help="sample rate in S/s (default 2.048e6)")
    demo.add_argument("--freq", type=float, default=100e6, help="center frequency in Hz (default 100e6)")
    demo.add_argument("--gain", type=float, default=30.0, help="gain in dB (default 30)")
    demo.add_argument("--serial", default="demo0", help="riasim serial; faults can be injected with "
                      "python3 -m gnuradio.ria.riasim_control unplug SERIAL")
    demo.add_argument("--faults", default="unplug:nodev@4;replug@6",
                      help="riasim fault timeline, ACTION[:PARAM]@SECONDS;... ('' for none)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration < 0:
        parser.error("--rate must be > 0 and --duration >= 0")
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
