"""ria.aec in image-method rooms (the bench's): the drift loop against a near-end talker and a reverberant room's
reflections, and what a talker keeps in double talk."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import aec_metrics  # noqa: E402
import aec_rooms  # noqa: E402
import aec_runner  # noqa: E402
import aec_signals  # noqa: E402

RATE, FRAME, TAIL = 16000, 320, 0.4


@pytest.fixture(scope="module")
def voices():
    return aec_signals.voices(RATE)


def bench_rooms(seed=0):
    """The bench's RT60 0.5 s room, speaker 1 m from the microphone (and 1.7 m after a move)."""
    return aec_rooms.image_room(RATE, 0.5, 1.0, seed), aec_rooms.image_room(RATE, 0.5, 1.7, seed + 1)


def near_attenuation_db(s, out):
    """The talker's gain in the output, against the block's own output for the microphone without echo and a
    zero reference (as bench/bench_aec.py measures it: what the block does to a lone talker is not damage)."""
    alone, _, _ = aec_runner.run(np.clip(s["near"] + s["noise"], -1, 1), np.zeros_like(s["ref"]), RATE, FRAME, TAIL,
                                 1.0, True)
    n = min(len(out), len(alone))
    talking = np.abs(s["near"][:n]) > 0
    gain = np.dot(out[:n][talking], alone[:n][talking]) / np.dot(alone[:n][talking], alone[:n][talking])
    return -20 * np.log10(gain)


@pytest.mark.parametrize("ppm, delay, floor", [(150.0, 0.3, 38.0), (-150.0, 0.3, 38.0), (-200.0, 0.1, 37.8)])
def test_drift_in_a_reverberant_room_is_learned_in_time_for_38_db(voices, ppm, delay, floor):
    """The last 5 s of 20 with the suppressor on: 39.0 / 39.0 / 38.4 dB. The slower loop before (median of 5,
    gain 0.3) reached -150 ppm only at 14 s after overshooting to 153: 38.2 / 37.3 / 36.9 dB."""
    s = aec_signals.scenario(rate=RATE, seconds=20, far=voices[0], delay_s=delay, drift_ppm=ppm, noise_db=-65,
                             rooms=bench_rooms())
    out, block, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert abs(block.drift_ppm() - ppm) <= 2.0
    assert block.delay_jumps() == 0
    # (38: the target for +-150 ppm; runs differ by up to 0.3 dB, with espeak-ng's voice through sox)
    assert aec_metrics.steady_erle_db(out, s) >= floor


def test_with_no_drift_the_reference_is_read_whole_samples_apart(voices):
    """A drift believed under 2 ppm is not followed: the loop's wander of a ppm or two around 0 had the filter
    chase a moving path (the old build reported a few tenths of a ppm here)."""
    s = aec_signals.scenario(rate=RATE, seconds=20, far=voices[0], delay_s=0.3, noise_db=-65, rooms=bench_rooms())
    _, block, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert block.drift_ppm() == 0.0


@pytest.mark.parametrize("seed", [0, 2])
def test_a_talker_over_the_echo_keeps_the_drift_loop_and_the_filter_still(voices, seed):
    """Double talk from 11 s on, no drift: the talker moves the background filter, which the faster drift loop
    took for drift (2.8 dB of near-end attenuation on seed 2's room before measurements were skipped while a
    talker is heard), and a block where the talker partly cancelled the echo started a relearning that let the
    suppressor take the talker for echo (seed 0 of the bench: 1.19 dB with that, 0.75 now; seed 2: 1.01 -> 0.83)."""
    s = aec_signals.scenario(rate=RATE, seconds=20, far=voices[0], near=voices[1], delay_s=0.3, double_talk=True,
                             noise_db=-65, rooms=bench_rooms(seed), seed=seed or 1)
    out, block, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert block.drift_ppm() == 0.0
    assert near_attenuation_db(s, out) <= 0.95


def test_a_reflection_stronger_than_the_direct_sound_does_not_move_a_working_filter():
    """48 kHz, reverberation 5 dB over the generated room's: the 4 kHz correlation's strongest peak moves
    between the direct sound and reflections 3 and 11 ms later. The tracker's jumps there are refused while the
    filter cancels 15 dB where the echo was (the old build took ten of them, each undone by the shift finder a
    third of a second later, and ended at 27 dB)."""
    rate = 48000
    far = aec_signals.speech(aec_signals.FAR_TEXT, "en-us", rate)
    s = aec_signals.scenario(rate=rate, seconds=30, far=far, delay_s=0.3, noise_db=-65, reverb_gain=3 ** 0.5)
    out, block, _ = aec_runner.run(s["mic"], s["ref"], rate, 960, TAIL)
    assert block.delay_jumps() <= 2  # (one round trip before the filter cancels 15 dB, at 3 s)
    assert 0.3015 <= block.delay() <= 0.3055
    assert aec_metrics.steady_erle_db(out, s) >= 35.0


def steady_erle_in_image_room(voices, rt60, distance, seed, delay=0.3):
    rooms = (aec_rooms.image_room(RATE, rt60, distance, seed), aec_rooms.image_room(RATE, rt60, distance + 0.7, seed + 1))
    s = aec_signals.scenario(rate=RATE, seconds=20, far=voices[0], delay_s=delay, noise_db=-65, rooms=rooms)
    out, _, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    return aec_metrics.steady_erle_db(out, s)


@pytest.mark.parametrize("rt60, distance, seed, floor", [(0.25, 0.5, 0, 43.5), (0.25, 0.5, 1, 43.5),
                                                         (0.5, 1.0, 0, 41.8), (0.5, 1.0, 1, 41.8)])
def test_steady_erle_behind_an_unknown_300_ms_in_image_rooms(voices, rt60, distance, seed, floor):
    """The bench's first two rows (seed 0) and another room each: the last 5 s of 20 with the suppressor on. The
    background's step per bin shrinks as only noise is left in its error there, and that noise regularises the
    bin's normalisation, and the suppressor subtracts more under 500 Hz and predicts the residual there from the
    reference's power over the tail: 44.1 / 44.0 and 42.0 / 41.6 dB (without the tail's power 43.8 / 43.6 and
    40.8 / 40.8; with the step of 0.8 falling to 0.5 before, 41.6 / 41.4 and 39.4 / 39.2 dB). With the reference
    read 9 ms ahead of the echo and the late partitions' echo taken as residual: 44.1 / 44.0 and 42.4 / 42.3 dB."""
    assert steady_erle_in_image_room(voices, rt60, distance, seed) >= floor


@pytest.mark.parametrize("seed", [0, 2])
def test_the_half_second_room_reaches_42_db_behind_an_unknown_300_ms(voices, seed):
    """The issue's target in the bench's RT60 0.5 s room (seed 0) and another one: 42.01 and 42.89 dB. The filter
    alone cancels 35.6 dB there, and the suppressor's output above 500 Hz is already at the microphone's noise;
    under 500 Hz the residual is predicted from the reference's power over the tail, and the floor that rose into
    that residual no longer takes it for noise (40.83 and 41.38 dB before). With the reference read 9 ms ahead of
    the echo and the late partitions' echo taken as residual: 42.43 and 43.96 dB."""
    assert steady_erle_in_image_room(voices, 0.5, 1.0, seed) >= 42.0


def test_a_room_longer_than_the_tail_reaches_34_db_behind_500_ms(voices):
    """The bench's RT60 0.8 s room, speaker 2 m away, behind 500 ms, with a 0.4 s tail: the echo past the tail and
    what the late partitions send, taken as residual under 1 kHz, give 34.8 dB (29.3 before the tail's power, 30.75
    with it)."""
    assert steady_erle_in_image_room(voices, 0.8, 2.0, 0, delay=0.5) >= 34.0


def test_a_talker_in_a_long_room_is_attenuated_by_under_0_95_db():
    """RT60 0.8 s, speaker 2 m away, 500 ms, double talk from 11 s: the extra scene where the suppressor took
    most of the talker (0.96 dB; the bench's scenes 0.72 to 0.83). While a talker is heard the suppressor
    over-subtracts 2x instead of 3x: 0.90 dB; 0.93 with the residual under 500 Hz predicted from the tail's power
    (used only from 60 ms after the talker was last heard; without that wait, half that prediction gave 0.95);
    0.92 with the late partitions' echo taken as residual outside the talker's blocks (held 0.1 s) and bins."""
    far, near = aec_signals.voices(RATE)
    rooms = (aec_rooms.image_room(RATE, 0.8, 2.0, 3), aec_rooms.image_room(RATE, 0.8, 2.7, 4))
    s = aec_signals.scenario(rate=RATE, seconds=20, far=far, near=near, delay_s=0.5, double_talk=True, noise_db=-65,
                             rooms=rooms, seed=3)
    out, _, _ = aec_runner.run(s["mic"], s["ref"], RATE, FRAME, TAIL, 1.0, True)
    assert near_attenuation_db(s, out) <= 0.95
