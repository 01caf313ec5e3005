"""The transmitting side of bench_tx.py, in a process of its own so that its CPU time is its own.

  tx_bench_peer.py agent URL TOKEN     ria.iq_agent with TX allowed (websocket_source -> sdr_sink)
  tx_bench_peer.py zmq ENDPOINT        zeromq.pull_source -> ria.sdr_sink on unpaced riasim

Prints "ready"; then each line SERIAL on stdin is answered with "aired SERIAL N CPU_S" (riasim's tx_log, and the
CPU time reading it took, which the bench does not count); EOF stops it.
"""

import json
import os
import sys
import time

import SoapySDR
from gnuradio import gr, ria, zeromq

RATE, FREQ = 10e6, 434e6


def aired(serial):
    log = json.loads(SoapySDR.Device(f"driver=riasim,serial={serial}").readSetting("tx_log"))
    return sum(w["count"] for w in log if w["aired"])


def say(text):
    os.write(1, f"\n{text}\n".encode())  # one write, on a line of its own: GNU Radio logs to the same stdout


def flowgraph(argv):
    tb = gr.top_block()
    if argv[0] == "agent":
        tb.agent = ria.iq_agent(url=argv[1], token=argv[2], allow_tx=True, heartbeat_interval=1.0)
        tb.connect(tb.agent)
    else:
        source = zeromq.pull_source(gr.sizeof_gr_complex, 1, argv[1], 100, False, -1)
        sink = ria.sdr_sink(f"driver=riasim,serial={argv[2]},pace=false,air=off", RATE, FREQ, 0.0, "", 0.0, True,
                            float("inf"), 0.0, "", "optional", "reconnect", 1.0, 2.0)
        tb.connect(source, sink)
    return tb


def main():
    tb = flowgraph(sys.argv[1:])
    tb.start()
    say("ready")
    for line in sys.stdin:
        cpu = time.process_time()
        count = aired(line.strip())
        say(f"aired {line.strip()} {count} {time.process_time() - cpu:.6f}")  # and the CPU this answer took
    tb.stop()
    tb.wait()


if __name__ == "__main__":
    main()
