"""Test material for echo cancellers: real speech from espeak-ng, rooms generated in code, delay and drift.

A scenario is a far-end reference (what the speaker plays), the microphone signal (the room's echo of
it, plus near-end speech and noise), and the parts kept apart (echo, near, noise) so that a bench can
measure echo reduction and near-end damage exactly.
"""

import subprocess

import numpy as np

FAR_TEXT = ("Good morning. This is the hub speaking. The receiver on channel three is streaming again, "
            "and the waterfall shows a strong carrier near one hundred megahertz. Please confirm the gain "
            "setting and report the signal to noise ratio when you are ready.")
NEAR_TEXT = ("Copy that. Gain is thirty decibels and the carrier is about forty decibels above the noise. "
             "I will retune in a minute.")


def speech(text, voice, rate, speed=165):
    """espeak-ng speech at `rate` Hz as float32 in -1..1; the same samples every run (sox -R: its dither repeats)."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], check=True,
                         capture_output=True).stdout
    raw = subprocess.run(["sox", "-R", "-t", "wav", "-", "-t", "raw", "-r", str(int(rate)), "-c", "1", "-b", "16",
                          "-e", "signed-integer", "-"], input=wav, check=True, capture_output=True).stdout
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return x / (np.max(np.abs(x)) + 1e-9) * 0.5


def voices(rate):
    """The far end (the hub's sentence) and the near-end talker of the bench and the tests: two espeak-ng voices."""
    return speech(FAR_TEXT, "en-us", rate), speech(NEAR_TEXT, "en-gb+f3", rate)


def room_impulse_response(rate, rt60, seed, length_s=None, direct_delay_s=0.002, reverb_gain=1.0):
    """Exponentially decaying noise after a direct path: energy falls 60 dB in rt60 seconds.

    The reverberation's energy per second against the direct sound is the same at every sample rate
    (per sample it falls with the rate); reverb_gain scales it, for rooms where the direct sound is weak.
    """
    rng = np.random.default_rng(seed)
    n = int(rate * (length_s or rt60))
    t = np.arange(n) / rate
    h = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60) * (0.3 * reverb_gain * np.sqrt(16000 / rate))
    d = int(direct_delay_s * rate)
    h[:d] = 0
    h[d] += 1.0
    return (h / np.sqrt(np.sum(h ** 2))).astype(np.float32)


def resample(x, ratio, half_taps=16, chunk=65536):
    """x played on a clock `ratio` times as fast (ratio = 1 + ppm * 1e-6): windowed-sinc interpolation.

    The interpolator has to be clean, or a drifting echo path would carry a time-varying low-pass that no
    canceller could learn, and the drift figures would measure the test signal instead of the canceller.
    """
    positions = np.arange(int((len(x) - 1 - half_taps) / ratio)) * ratio
    padded = np.concatenate([np.zeros(half_taps, np.float64), x.astype(np.float64), np.zeros(half_taps + 1)])
    taps = np.arange(-half_taps + 1, half_taps + 1)
    out = np.empty(len(positions), np.float32)
    for k in range(0, len(positions), chunk):
        p = positions[k:k + chunk]
        base = np.floor(p).astype(np.int64)
        offsets = (p - base)[:, None] - taps[None, :]
        edge = np.clip(1 - (offsets / half_taps) ** 2, 0, 1)
        kernel = np.sinc(offsets) * np.i0(8.0 * np.sqrt(edge)) / np.i0(8.0)
        out[k:k + chunk] = np.sum(padded[base[:, None] + taps[None, :] + half_taps] * kernel, axis=1)
    return out


def convolve(x, h):
    """Linear convolution through the FFT, cut to len(x) (np.convolve takes minutes at 48 kHz)."""
    size = 1 << int(np.ceil(np.log2(len(x) + len(h) - 1)))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return y[:len(x)].astype(np.float32)


def repeat_to(x, n, gap):
    out = np.zeros(n, np.float32)
    pos = 0
    while pos < n:
        take = min(len(x), n - pos)
        out[pos:pos + take] = x[:take]
        pos += len(x) + gap
    return out


def music(rate, seconds, seed=3):
    """Chords of decaying harmonic tones with noise bursts between them, as float32 in -1..1."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    out = np.zeros(n, np.float32)
    t = np.arange(int(0.6 * rate)) / rate
    for start in range(0, n - len(t), int(0.7 * rate)):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        chord = sum(np.sin(2 * np.pi * root * r * k * t) / k for r in (1, 1.26, 1.5) for k in range(1, 6))
        out[start:start + len(t)] = chord * np.exp(-3 * t)
        burst = rng.standard_normal(int(0.05 * rate)) * 0.3
        out[start + len(t):start + len(t) + len(burst)] = burst[:n - start - len(t)]
    return out / np.max(np.abs(out)) * 0.5


def scenario(rate=16000, seconds=30.0, rt60=0.3, delay_s=0.0, drift_ppm=0.0, double_talk=False, path_change_s=None,
             echo_gain=0.8, noise_db=-50.0, seed=1, far=None, near=None, reverb_gain=1.0, rooms=None,
             jump_s=None, jump_by_s=0.02, saturate=None, clip=None):
    """A dict with ref, mic, echo, near (float32 arrays of one length) and the conditions.

    rooms: two impulse responses (before and after path_change_s) instead of the generated ones;
    jump_s: the delay grows by jump_by_s from then on; saturate: the loudspeaker plays tanh(saturate * x);
    clip: it clips hard at +-clip.
    """
    n = int(rate * seconds)
    far = far if far is not None else speech(FAR_TEXT, "en-us", rate)
    ref = repeat_to(far, n, int(0.4 * rate))
    h = rooms[0] if rooms else room_impulse_response(rate, rt60, seed, reverb_gain=reverb_gain)
    played = resample(ref, 1 + drift_ppm * 1e-6) if drift_ppm else ref
    if saturate:
        played = (np.tanh(saturate * played) / saturate).astype(np.float32)
    if clip:
        played = np.clip(played, -clip, clip).astype(np.float32)
    played = np.concatenate([np.zeros(int(delay_s * rate), np.float32), played])[:n]
    played = np.pad(played, (0, n - len(played)))
    if jump_s is not None:  # a buffer underrun in the sound card: the rest comes later
        k, d = int(jump_s * rate), int(jump_by_s * rate)
        played = np.concatenate([played[:k], np.zeros(d, np.float32), played[k:]])[:n]
    echo = convolve(played, h) * echo_gain
    if path_change_s is not None:  # someone moves: a different room from then on
        k = int(path_change_s * rate)
        h2 = rooms[1] if rooms else room_impulse_response(rate, rt60, seed + 100, reverb_gain=reverb_gain)
        echo[k:] = (convolve(played, h2) * echo_gain)[k:]
    near_sig = np.zeros(n, np.float32)
    if double_talk:
        talk = near if near is not None else speech(NEAR_TEXT, "en-gb+f3", rate)
        start = int(seconds * rate * 0.55)  # in the second half: the canceller has converged
        take = min(len(talk), n - start)
        near_sig[start:start + take] = talk[:take] * 0.5
    rng = np.random.default_rng(seed + 7)
    noise = rng.standard_normal(n).astype(np.float32) * np.float32(10 ** (noise_db / 20))
    mic = np.clip(echo + near_sig + noise, -1, 1).astype(np.float32)
    return {"ref": ref, "mic": mic, "echo": echo.astype(np.float32), "near": near_sig, "noise": noise, "rate": rate,
            "delay_s": delay_s, "drift_ppm": drift_ppm, "rt60": rt60}
