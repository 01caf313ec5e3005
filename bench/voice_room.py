"""A simulated room between a voice agent's speaker and its microphone, as GNU Radio blocks.

speaker -> bulk delay -> image-method impulse response (pyroomacoustics) -> clock drift (fractional
resampling: the microphone's sound card runs `drift_ppm` faster) -> + near-end talker -> microphone.
The talker starts `talker_after_s` after the echo's first sound at the microphone (a barge-in), however long the
speaker was silent before.
The echo and the talker are tapped where they meet, so a test knows exactly what reached the microphone.
"""

import numpy as np
from gnuradio import analog, blocks, filter, gr

import aec_rooms

ONSET = 1e-4  # the speaker's first sample above this starts the talker's clock


class talker_gate(gr.sync_block):
    """Output: silence until the input (the speaker) first sounds, then `talker` after `after` samples, then silence."""

    def __init__(self, talker, after):
        gr.sync_block.__init__(self, "talker_gate", in_sig=[np.float32], out_sig=[np.float32])
        self.talker = np.asarray(talker, np.float32)
        self.after = int(after)
        self.onset = None  # output index where the talker's first sample goes
        self.written = 0

    def work(self, input_items, output_items):
        x, out = input_items[0], output_items[0]
        n = len(out)
        out[:] = 0
        if self.onset is None:
            loud = np.flatnonzero(np.abs(x) > ONSET)
            if len(loud):
                self.onset = self.written + int(loud[0]) + self.after
        if self.onset is not None:
            lo, hi = max(self.onset, self.written), min(self.onset + len(self.talker), self.written + n)
            if hi > lo:
                out[lo - self.written:hi - self.written] = self.talker[lo - self.onset:hi - self.onset]
        self.written += n
        return n


class room(gr.hier_block2):
    """Input: what the speaker plays (taken at `speed` times real time). Output: the microphone.
    echo() and near() are what reached the microphone from the speaker and from the talker (with the noise)."""

    def __init__(self, rate, talker, talker_after_s=5.0, delay_s=0.15, drift_ppm=50.0, rt60=0.3, distance=1.0,
                 echo_gain=0.8, noise_db=-70.0, seed=1, speed=1.0):
        gr.hier_block2.__init__(self, "voice_room", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(1, 1, gr.sizeof_float))
        self.impulse_response = aec_rooms.image_room(rate, rt60, distance, seed=seed) * np.float32(echo_gain)
        # The speaker's sound card: it takes samples at its rate (`speed` times as fast, for shorter tests)
        self.sound_card = blocks.throttle(gr.sizeof_float, rate * speed)
        self.delay = blocks.delay(gr.sizeof_float, int(round(delay_s * rate)))
        # A time-domain FIR: an FFT filter would hold back a block of thousands of samples, more than a voice
        # agent's speaker buffer lets the microphone lag the reference (and the flowgraph would stall).
        self.ir = filter.fir_filter_fff(1, self.impulse_response.tolist())
        # mmse_resampler's ratio is input samples per output sample: a faster microphone clock takes fewer
        self.drift = filter.mmse_resampler_ff(0.0, 1.0 / (1.0 + drift_ppm * 1e-6))
        self.talker = talker_gate(talker, talker_after_s * rate)  # (after the echo's onset)
        self.noise = analog.noise_source_f(analog.GR_GAUSSIAN, 10 ** (noise_db / 20), seed)
        self.near_sum = blocks.add_ff()
        self.add = blocks.add_ff()
        self.echo_tap = blocks.vector_sink_f()
        self.talker_tap = blocks.vector_sink_f()
        self.connect(self, self.sound_card, self.delay, self.ir, self.drift, (self.add, 0))
        self.connect(self.drift, self.echo_tap)
        # the talker's clock follows the same drift: it is heard by the microphone's card
        self.connect(self.drift, self.talker, (self.near_sum, 0))
        self.connect(self.noise, (self.near_sum, 1))
        self.connect(self.near_sum, (self.add, 1))
        self.connect(self.near_sum, self.talker_tap)
        self.connect(self.add, self)

    def echo(self):
        return np.array(self.echo_tap.data(), np.float32)

    def near(self):
        return np.array(self.talker_tap.data(), np.float32)
