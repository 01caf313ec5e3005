"""Runs ria.aec over whole signals in a GNU Radio flowgraph, as fast as the block goes."""

import time

import numpy as np
from gnuradio import blocks, gr

from gnuradio import ria


def run(mic, ref, rate, frame, tail, max_delay=1.0, residual_suppression=False, noise_suppression=False):
    """(output, block, seconds of wall time) for float32 signals of equal length."""
    n = (min(len(mic), len(ref)) // frame) * frame
    tb = gr.top_block("aec run")
    mic_src = blocks.vector_source_f(np.asarray(mic[:n], np.float32).tolist(), False)
    ref_src = blocks.vector_source_f(np.asarray(ref[:n], np.float32).tolist(), False)
    aec = ria.aec(rate, frame, tail, max_delay, residual_suppression, noise_suppression)
    sink = blocks.vector_sink_f()
    tb.connect(mic_src, (aec, 0))
    tb.connect(ref_src, (aec, 1))
    tb.connect(aec, sink)
    t0 = time.perf_counter()
    tb.run()
    elapsed = time.perf_counter() - t0
    return np.array(sink.data(), np.float32), aec, elapsed
