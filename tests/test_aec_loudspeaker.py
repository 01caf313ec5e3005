"""ria.aec and a saturating loudspeaker: the reference is shaped by a learned curve (lib/nonlinear_echo.h) once the
filter's error shows the loudspeaker's distortion, and a linear loudspeaker's reference is left alone."""

import os
import sys

import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio import ria

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import aec_metrics  # noqa: E402
import aec_rooms  # noqa: E402
import aec_runner  # noqa: E402
import aec_signals  # noqa: E402

RATE, FRAME, TAIL = 16000, 320, 0.4


@pytest.fixture(scope="module")
def voices():
    return aec_signals.voices(RATE)


@pytest.fixture(scope="module")
def rooms():
    """The bench's RT60 0.5 s room, speaker 1 m from the microphone."""
    return aec_rooms.image_room(RATE, 0.5, 1.0, 0), aec_rooms.image_room(RATE, 0.5, 1.7, 1)


def scene(voices, rooms, seconds=20, **kw):
    return aec_signals.scenario(rate=RATE, seconds=seconds, far=voices[0], near=voices[1], delay_s=0.3,
                                noise_db=-65, rooms=rooms, **kw)


@pytest.mark.parametrize("loudspeaker, floor", [(dict(saturate=3.0), 35.0), (dict(saturate=6.0), 30.0),
                                                 (dict(clip=0.3), 33.0)])
def test_a_saturating_loudspeaker_is_modelled(voices, rooms, loudspeaker, floor):
    """The bench's tanh(3 x) loudspeaker: 27.5 dB without the model (AEC3 31.2), 37.7 with it; tanh(6 x): 21.5
    without (AEC3 28.4), 33.0 with; a loudspeaker that clips hard at 0.3 (peaks of 0.5): 25.3 without (AEC3 31.7),
    35.4 with."""
    s = scene(voices, rooms, **loudspeaker)
    out, block, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert block.loudspeaker_nonlinear()
    assert aec_metrics.steady_erle_db(out, s) >= floor


@pytest.mark.parametrize("kw", [dict(), dict(drift_ppm=-150.0), dict(double_talk=True), dict(path_change_s=10.0),
                                dict(jump_s=10.0)])
def test_a_linear_loudspeaker_leaves_the_reference_alone(voices, rooms, kw):
    """No curve is taken on without distortion: the reference reaches the filter untouched, so the output is
    bit-identical to the canceller's without the model (its tests run on the side, every 10 s)."""
    s = scene(voices, rooms, **kw)
    _, block, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert not block.loudspeaker_nonlinear()


def test_music_through_a_linear_loudspeaker_leaves_the_reference_alone(rooms):
    s = aec_signals.scenario(rate=RATE, seconds=20, far=aec_signals.music(RATE, 20), delay_s=0.3, noise_db=-65,
                             rooms=rooms)
    _, block, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert not block.loudspeaker_nonlinear()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30])
def test_a_bad_sample_while_the_curve_is_in_use_disables_nothing(voices, rooms, bad):
    s = scene(voices, rooms, saturate=3.0)
    mic, ref = s["mic"].copy(), s["ref"].copy()
    for k in range(4):  # in the reference and the microphone, from 8 s on, while the curve is learned
        (ref if k % 2 else mic)[(8 + k) * RATE + 5 * k] = bad
    out, block, _ = aec_runner.run(mic, ref, RATE, FRAME, TAIL, 1.0, True)
    assert np.all(np.isfinite(out))
    assert block.loudspeaker_nonlinear()
    assert aec_metrics.steady_erle_db(out, s) >= 35.0


def _run(tb, block, mic, ref):
    tb.disconnect_all()
    sink = blocks.vector_sink_f()
    tb.connect(blocks.vector_source_f(mic.tolist(), False), (block, 0))
    tb.connect(blocks.vector_source_f(ref.tolist(), False), (block, 1))
    tb.connect(block, sink)
    tb.run()
    return np.array(sink.data(), np.float32)


def test_reset_forgets_the_curve(voices, rooms):
    """After a saturating loudspeaker, reset: the next (linear) loudspeaker's output is bit-identical to a new
    block's, so nothing of the curve, nor of its statistics, is left."""
    sat = scene(voices, rooms, saturate=3.0, seconds=12)
    lin = scene(voices, rooms, seconds=4)
    tb = gr.top_block()
    block = ria.aec(RATE, FRAME, TAIL, 1.0, True, False)
    _run(tb, block, sat["mic"], sat["ref"])
    assert block.loudspeaker_nonlinear()
    block.reset()  # handled before the next run's first frame
    after_reset = _run(tb, block, lin["mic"], lin["ref"])
    assert not block.loudspeaker_nonlinear()
    fresh, _, _ = aec_runner.run(lin["mic"], lin["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert np.array_equal(after_reset, fresh)


def test_a_far_end_turned_up_past_the_learned_range_keeps_its_cancellation(voices, rooms):
    """The curve is learned on peaks of 0.5; at 12 s the far end is turned up 6 dB (peaks of 1.0, the loudspeaker
    deeper in saturation). Past its loudest learned sample the curve goes on along its tangent, so it neither folds
    back nor explodes: 32.9 dB over 12-16 s and 34.9 over the last 6 s (the old build: 22.8 and 23.2)."""
    n = 24 * RATE
    ref = aec_signals.repeat_to(voices[0], n, int(0.4 * RATE))
    ref[12 * RATE:] *= 2.0
    played = np.concatenate([np.zeros(int(0.3 * RATE), np.float32), np.tanh(3 * ref) / 3])[:n].astype(np.float32)
    echo = aec_signals.convolve(played, rooms[0]) * 0.8
    noise = np.random.default_rng(8).standard_normal(n).astype(np.float32) * np.float32(10 ** (-65 / 20))
    mic = np.clip(echo + noise, -1, 1).astype(np.float32)
    s = {"echo": echo, "near": np.zeros(n, np.float32), "noise": noise, "rate": RATE}
    out, block, _ = aec_runner.run(mic, ref.astype(np.float32), RATE, FRAME, TAIL, 1.0, True)
    assert np.all(np.isfinite(out))
    assert block.loudspeaker_nonlinear()
    assert aec_metrics.erle_db(out, s, 12 * RATE, 16 * RATE) >= 30.0
    assert aec_metrics.erle_db(out, s, 18 * RATE, n) >= 32.0
