#!/usr/bin/env python3
"""ria.sdr_source against GNU Radio's soapy.source on the same unpaced riasim device.

Both read CF32 from riasim with pace=false into head -> null_sink; runs alternate in one
process so that both see the same machine load. Prints MS/s and CPU per run, the medians,
and the ratio ria/soapy (target >= 1.0).

    bash scripts/setup.sh && source scripts/env.sh && python bench/bench_sdr_source.py
"""

import argparse
import statistics
import time

from gnuradio import blocks, gr, ria, soapy

RATE = 61.44e6
FREQ = 100e6
DEVICE = "driver=riasim,serial=bench0,pace=false"


def ria_source():
    return ria.sdr_source(DEVICE, 0, RATE, FREQ, 30.0, False, 0.0, "", "reconnect", 1.0, 2.0)


def soapy_source():
    src = soapy.source(DEVICE, "fc32", 1, "", "", [""], [""])
    src.set_sample_rate(0, RATE)
    src.set_frequency(0, FREQ)
    src.set_gain(0, 30.0)
    return src


def one_run(make_source, samples):
    tb = gr.top_block()
    tb.connect(make_source(), blocks.head(gr.sizeof_gr_complex, samples), blocks.null_sink(gr.sizeof_gr_complex))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tb.run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return samples / wall / 1e6, cpu / wall


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=100_000_000, help="samples per run")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    a = p.parse_args()

    contenders = {"ria.sdr_source": ria_source, "soapy.source": soapy_source}
    results = {name: [] for name in contenders}
    print(f"riasim unpaced, CF32, {a.samples / 1e6:.0f} M samples per run, {a.rounds} alternating rounds\n")
    for make_source in contenders.values():  # warm-up: page in code and the noise table
        one_run(make_source, a.samples // 10)
    print(f"{'round':>5}  {'source':<16}{'MS/s':>9}{'CPU (cores)':>13}")
    for r in range(a.rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            msps, cpu = one_run(contenders[name], a.samples)
            results[name].append((msps, cpu))
            print(f"{r + 1:>5}  {name:<16}{msps:>9.1f}{cpu:>13.2f}")
    print(f"\n{'source':<16}{'median MS/s':>12}{'median CPU':>12}")
    med = {}
    for name, runs in results.items():
        med[name] = statistics.median(m for m, _ in runs)
        print(f"{name:<16}{med[name]:>12.1f}{statistics.median(c for _, c in runs):>12.2f}")
    print(f"\nratio ria.sdr_source / soapy.source: {med['ria.sdr_source'] / med['soapy.source']:.3f}")


if __name__ == "__main__":
    main()
