"""A simulated room between a voice agent's speaker and its microphone, as GNU Radio blocks.

speaker -> image-method impulse response (pyroomacoustics) -> bulk delay -> clock drift (fractional
resampling: the microphone's sound card runs `drift_ppm` faster) -> + near-end talker -> microphone.
The echo and the talker are tapped where they meet, so a test knows exactly what reached the microphone.
"""

import numpy as np
from gnuradio import blocks, filter, gr

import aec_rooms


class room(gr.hier_block2):
    """Input: what the speaker plays. Output: the microphone. `echo` and `talker` hold what was added."""

    def __init__(self, rate, talker, delay_s=0.15, drift_ppm=100.0, rt60=0.3, distance=1.0, echo_gain=0.8,
                 noise_db=-70.0, seed=1):
        gr.hier_block2.__init__(self, "voice_room", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(1, 1, gr.sizeof_float))
        self.impulse_response = aec_rooms.image_room(rate, rt60, distance, seed=seed) * np.float32(echo_gain)
        self.ir = filter.fft_filter_fff(1, self.impulse_response.tolist())
        self.delay = blocks.delay(gr.sizeof_float, int(round(delay_s * rate)))
        # mmse_resampler's ratio is input samples per output sample: a faster microphone clock takes fewer
        self.drift = filter.mmse_resampler_ff(0.0, 1.0 / (1.0 + drift_ppm * 1e-6))
        rng = np.random.default_rng(seed + 7)
        near = np.asarray(talker, np.float32)
        near = near + rng.standard_normal(len(near)).astype(np.float32) * np.float32(10 ** (noise_db / 20))
        self.talker = blocks.vector_source_f(near.tolist(), False)
        self.add = blocks.add_ff()
        self.echo_tap = blocks.vector_sink_f()
        self.talker_tap = blocks.vector_sink_f()
        self.connect(self, self.ir, self.delay, self.drift, (self.add, 0))
        self.connect(self.talker, (self.add, 1))
        self.connect(self.add, self)
        self.connect(self.drift, self.echo_tap)
        self.connect(self.talker, self.talker_tap)

    def echo(self):
        return np.array(self.echo_tap.data(), np.float32)

    def near(self):
        return np.array(self.talker_tap.data(), np.float32)
