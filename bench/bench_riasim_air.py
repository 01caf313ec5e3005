#!/usr/bin/env python3
"""What the simulated air costs a riasim receiver.

1. Unpaced ria.sdr_source -> head -> null_sink, MS/s: the air switched off (air=off) against the air file
   present with nobody transmitting (the common case: one atomic load per read). Runs alternate.
2. Paced receiver at RATE for SECONDS, CPU of this process (cores): air off, air idle, and a paced riasim
   transmitter in another process sending a tone inside the band (every sample resampled and mixed).

    bash scripts/setup.sh && source scripts/env.sh && python bench/bench_riasim_air.py
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from gnuradio import blocks, gr, ria

TONE_TX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "riasim_tone_tx.py")


def source(extra, rate, pace):
    dev = f"driver=riasim,serial=airbench{extra.replace('=', '').replace(',', '')},pace={pace},{extra}"
    return ria.sdr_source(dev, 0, rate, 433.9e6, 30.0, False, 0.0, "", "reconnect", 1.0, 2.0)


def one_run(extra, samples, rate, pace):
    tb = gr.top_block()
    tb.connect(source(extra, rate, pace), blocks.head(gr.sizeof_gr_complex, samples),
               blocks.null_sink(gr.sizeof_gr_complex))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tb.run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return samples / wall / 1e6, cpu / wall


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=30_000_000, help="samples per unpaced run")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rate", type=float, default=10e6, help="paced receiver and transmitter rate")
    p.add_argument("--seconds", type=float, default=3.0, help="paced run length")
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        air = os.path.join(tmp, "air")
        os.environ["RIASIM_AIR"] = air
        with open(air, "wb"):
            pass  # an empty file: the first device to map it sizes it; so "air idle" really has a file
        idle = f"air={air}"
        one_run(idle, a.samples // 10, 61.44e6, "false")  # warm-up

        print(f"1. unpaced receiver at 61.44 MS/s, {a.samples / 1e6:.0f} M samples a run\n")
        print(f"{'round':>5}  {'air':<10}{'MS/s':>9}{'CPU':>7}")
        results = {"off": [], "idle": []}
        for r in range(a.rounds):
            for name in (["off", "idle"] if r % 2 == 0 else ["idle", "off"]):
                msps, cpu = one_run("air=off" if name == "off" else idle, a.samples, 61.44e6, "false")
                results[name].append(msps)
                print(f"{r + 1:>5}  {name:<10}{msps:>9.1f}{cpu:>7.2f}")
        off, on = statistics.median(results["off"]), statistics.median(results["idle"])
        print(f"\nmedian MS/s: air off {off:.1f}, air idle {on:.1f}, ratio idle/off {on / off:.3f}\n")

        n = int(a.rate * a.seconds)
        print(f"2. paced receiver at {a.rate / 1e6:g} MS/s for {a.seconds:g} s, CPU of the receiving process\n")
        print(f"{'air':<28}{'CPU (cores)':>12}")
        for name, extra in (("off", "air=off"), ("idle", idle)):
            print(f"{name:<28}{one_run(extra, n, a.rate, 'true')[1]:>12.3f}")
        tx = subprocess.Popen([sys.executable, TONE_TX, "airbenchtx", "433.95e6", str(a.rate), "40", "1e3", "0.5"],
                              stdout=subprocess.PIPE, text=True)
        try:
            assert tx.stdout.readline().strip() == "on"
            print(f"{'one transmitter in band':<28}{one_run(idle, n, a.rate, 'true')[1]:>12.3f}")
        finally:
            tx.terminate()
            tx.wait()


if __name__ == "__main__":
    main()
