"""What ria.aec costs against plain speexdsp with the same frame and tail: CPU seconds, interleaved rounds.

ria.aec runs in a flowgraph (vector sources and a sink); that flowgraph's own cost is measured with an
adder in the canceller's place and taken off, so the ratio compares the two cancellers, not GNU Radio
against a ctypes loop.
"""

import time

import numpy as np
from gnuradio import blocks, gr

import aec_runner
import speex_baseline


def _passthrough(mic, ref):
    tb = gr.top_block("aec cost pass-through")
    a = blocks.vector_source_f(np.asarray(mic, np.float32).tolist(), False)
    b = blocks.vector_source_f(np.asarray(ref, np.float32).tolist(), False)
    add, sink = blocks.add_ff(), blocks.vector_sink_f()
    tb.connect(a, (add, 0))
    tb.connect(b, (add, 1))
    tb.connect(add, sink)
    tb.run()


def _cpu(fn):
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def measure(s, frame, tail, rounds=5):
    """(speex, ria.aec net of the flowgraph, flowgraph) CPU seconds, each the least of `rounds` interleaved runs."""
    rate, mic, ref = s["rate"], s["mic"], s["ref"]
    n = (len(mic) // frame) * frame
    mic, ref = mic[:n], ref[:n]
    speex, ria, graph = [], [], []
    for _ in range(rounds):
        speex.append(_cpu(lambda: speex_baseline.cancel(mic, ref, rate, frame, int(tail * rate))))
        ria.append(_cpu(lambda: aec_runner.run(mic, ref, rate, frame, tail, 1.0, True)))
        graph.append(_cpu(lambda: _passthrough(mic, ref)))
    return min(speex), min(ria) - min(graph), min(graph)
