"""Audio on the wire (docs/protocol.md §8): the formats of a voice agent's microphone stream and of the
hub's play sessions, shared by the agent side and the hub.

A play session is a TX session (§6) whose radio_config has `"media": "audio"`: it drives a speaker, not a
radio, so it needs no frequency and no TX opt-in, only an agent whose capabilities list `audio_out`.
"""

import math

import numpy as np

from . import framing
from .protocol import finite_number

MEDIA_AUDIO = "audio"
FORMATS = ("f32", "s16", "opus")
BYTES_PER_SAMPLE = {"f32": 4, "s16": 2}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_FRAME_SECONDS = 0.02
MAX_OPUS_PACKET = 1500  # one 20 ms mono packet is at most 1275 bytes
OPUS_BITRATES = (6000, 256000)
DEFAULT_OPUS_BITRATE = 32000
MIN_RATE, MAX_RATE = 8000, 48000
VOLUME_RANGE_DB = (-60.0, 20.0)
UNDERRUN_POLICIES = ("zero", "pause")  # audio conceals (Opus PLC) then plays silence; pause ends the session
PLAY_KEYS = ("media", "tx_sample_rate", "sample_format", "underrun_policy", "tx_gain", "buffer_size", "bitrate")
CAPABILITY_IN, CAPABILITY_OUT = "audio_in", "audio_out"
LEVEL_FLOOR_DBFS = -120.0  # the levels' floor: silence is -120 dBFS, not -inf


def is_audio(radio_config):
    return isinstance(radio_config, dict) and radio_config.get("media") == MEDIA_AUDIO


def level_dbfs(mean_square):
    """The mean square of samples in -1..1 full scale as dBFS, to 0.1 dB, floored at LEVEL_FLOOR_DBFS."""
    if not mean_square > 0:
        return LEVEL_FLOOR_DBFS
    return round(max(LEVEL_FLOOR_DBFS, 10.0 * math.log10(mean_square)), 1)


def frame_samples(sample_rate):
    """Samples in one 20 ms Opus frame at this rate."""
    return int(round(sample_rate * OPUS_FRAME_SECONDS))


def check_rate(sample_format, rate):
    """The rate as an int, or ValueError naming the problem: Opus takes only its five rates."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate != int(rate):
        raise ValueError(f"audio sample rate must be a whole number of Hz, got {rate!r}")
    rate = int(rate)
    if sample_format == "opus" and rate not in OPUS_RATES:
        raise ValueError(f"opus needs a sample rate of {', '.join(map(str, OPUS_RATES))} Hz, got {rate}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"audio sample rate must be {MIN_RATE} to {MAX_RATE} Hz, got {rate}")
    return rate


def check_bitrate(value):
    """An Opus bit rate in bit/s, or ValueError naming the problem."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"bitrate must be a positive integer, got {value!r}")
    if not OPUS_BITRATES[0] <= value <= OPUS_BITRATES[1]:
        raise ValueError(f"bitrate must be {OPUS_BITRATES[0]} to {OPUS_BITRATES[1]} bit/s, got {value}")
    return value


def normalize_play(rc):
    """Checks the radio_config of an audio tx_start. Returns (clean, errors) like wire.tx.normalize."""
    if not isinstance(rc, dict):
        return {}, [f"tx_start: radio_config must be an object, got {type(rc).__name__}"]
    clean, errors = {"media": MEDIA_AUDIO, "sample_format": "f32", "underrun_policy": "zero", "tx_gain": 0.0}, []
    for key, value in rc.items():
        try:
            if key not in PLAY_KEYS:
                raise ValueError(f"tx_start (audio): unknown radio_config key {key!r} (known: {', '.join(PLAY_KEYS)})")
            if key == "media":
                continue
            if key == "sample_format":
                if value not in FORMATS:
                    raise ValueError(f"sample_format must be one of {', '.join(FORMATS)} for audio, got {value!r}")
            elif key == "underrun_policy":
                if value not in UNDERRUN_POLICIES:
                    raise ValueError(f"underrun_policy must be one of {', '.join(UNDERRUN_POLICIES)} for audio, "
                                     f"got {value!r}")
            elif key == "tx_gain":
                value = finite_number(key, value)
                lo, hi = VOLUME_RANGE_DB
                if not lo <= value <= hi:
                    raise ValueError(f"tx_gain (speaker volume) must be {lo:g} to {hi:g} dB, got {value:g}")
            elif key == "bitrate":
                check_bitrate(value)
            elif key == "buffer_size":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{key} must be a positive integer, got {value!r}")
            clean[key] = value
        except ValueError as e:
            errors.append(str(e))
    if "tx_sample_rate" not in rc:
        errors.append("tx_start (audio): radio_config.tx_sample_rate is required")
    elif "tx_sample_rate" in clean:
        try:
            clean["tx_sample_rate"] = check_rate(clean["sample_format"], clean["tx_sample_rate"])
        except ValueError as e:
            errors.append(str(e))
            del clean["tx_sample_rate"]
    return clean, errors


_FRAMING_FORMAT = {"f32": "cf32", "s16": "cs16"}  # framing names each value's number type by the IQ names


def to_bytes(samples, sample_format):
    """Little-endian bytes of float32 samples in -1..1 as f32 or s16 (s16 clips at full scale ±32767)."""
    if sample_format not in _FRAMING_FORMAT:
        raise ValueError(f"to_bytes takes f32 or s16 (opus goes through wire.opus), got {sample_format!r}")
    return framing.convert(np.asarray(samples, dtype=np.float32), _FRAMING_FORMAT[sample_format])


def from_bytes(payload, sample_format):
    """float32 samples from one f32 or s16 frame; ValueError if the length is not whole samples."""
    size = BYTES_PER_SAMPLE.get(sample_format)
    if size is None:
        raise ValueError(f"from_bytes takes f32 or s16, got {sample_format!r}")
    if len(payload) % size:
        raise ValueError(f"a {sample_format} frame of {len(payload)} bytes is not a whole number of samples")
    return framing.to_real(payload, _FRAMING_FORMAT[sample_format])
