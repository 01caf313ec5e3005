"""The audio contract (docs/protocol.md §8) on the Python side: play-session checks, f32/s16 frames and the
hub's Opus codec (Debian's libopus0 through ctypes)."""

import subprocess

import numpy as np
import pytest

from gnuradio.ria.wire import audio, opus


def speech(rate):
    wav = subprocess.run(["espeak-ng", "--stdout", "a voice agent hears the hub and talks back"],
                         check=True, capture_output=True).stdout
    pcm = np.frombuffer(wav[44:], "<i2").astype(np.float32) / 32768.0  # espeak-ng: 22050 Hz mono s16
    t = np.arange(int(len(pcm) * rate / 22050)) / rate
    return np.interp(t, np.arange(len(pcm)) / 22050, pcm).astype(np.float32)


def test_a_good_play_session_gets_its_defaults():
    clean, errors = audio.normalize_play({"media": "audio", "tx_sample_rate": 16000})
    assert errors == []
    assert clean == {"media": "audio", "tx_sample_rate": 16000, "sample_format": "f32", "underrun_policy": "zero",
                     "tx_gain": 0.0}


@pytest.mark.parametrize("rc, message", [
    ({"media": "audio"}, "radio_config.tx_sample_rate is required"),
    ({"media": "audio", "tx_sample_rate": 44100, "sample_format": "opus"}, "opus needs a sample rate of 8000"),
    ({"media": "audio", "tx_sample_rate": 96000}, "audio sample rate must be 8000 to 48000 Hz, got 96000"),
    ({"media": "audio", "tx_sample_rate": 16000.5}, "whole number of Hz"),
    ({"media": "audio", "tx_sample_rate": True}, "whole number of Hz"),
    ({"media": "audio", "tx_sample_rate": 16000, "tx_gain": float("nan")}, "tx_gain"),
    ({"media": "audio", "tx_sample_rate": 16000, "tx_gain": 40}, "speaker volume) must be -60 to 20 dB, got 40"),
    ({"media": "audio", "tx_sample_rate": 16000, "sample_format": "cf32"}, "sample_format must be one of f32, s16, opus"),
    ({"media": "audio", "tx_sample_rate": 16000, "underrun_policy": "repeat"}, "underrun_policy must be one of zero, pause"),
    ({"media": "audio", "tx_sample_rate": 16000, "bitrate": 1e9}, "bitrate must be a positive integer"),
    ({"media": "audio", "tx_sample_rate": 16000, "bitrate": 500}, "bitrate must be 6000 to 256000"),
    ({"media": "audio", "tx_sample_rate": 16000, "tx_center_frequency": 1e8}, "unknown radio_config key 'tx_center_frequency'"),
    ([1, 2], "radio_config must be an object, got list"),
])
def test_a_bad_play_session_names_what_was_wrong(rc, message):
    _, errors = audio.normalize_play(rc)
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize("fmt, tolerance", [("f32", 0.0), ("s16", 0.5 / 32767)])
def test_f32_and_s16_frames_round_trip(fmt, tolerance):
    x = np.random.default_rng(1).uniform(-1, 1, 4001).astype(np.float32)
    payload = audio.to_bytes(x, fmt)
    assert len(payload) == len(x) * audio.BYTES_PER_SAMPLE[fmt]
    assert np.max(np.abs(audio.from_bytes(payload, fmt) - x)) <= tolerance + 1e-7
    assert np.frombuffer(audio.to_bytes(np.array([-3.0, 3.0]), "s16"), "<i2").tolist() == [-32767, 32767]


def test_a_frame_of_broken_samples_is_refused():
    with pytest.raises(ValueError, match="a s16 frame of 3 bytes is not a whole number of samples"):
        audio.from_bytes(b"abc", "s16")
    with pytest.raises(ValueError, match="opus goes through wire.opus"):
        audio.to_bytes(np.zeros(4), "opus")


@pytest.mark.parametrize("rate", [16000, 48000])
def test_opus_carries_speech_in_20_ms_packets_under_64_kbit(rate):
    x = 0.5 * speech(rate)
    enc, dec = opus.Encoder(rate, bitrate=32000), opus.Decoder(rate)
    packets = enc.encode_all(x)
    assert len(packets) == -(-len(x) // audio.frame_samples(rate))
    assert all(0 < len(p) <= audio.MAX_OPUS_PACKET for p in packets)
    assert sum(map(len, packets)) * 8 / (len(packets) * audio.OPUS_FRAME_SECONDS) < 64000
    y = np.concatenate([dec.decode(p) for p in packets])
    assert len(y) == len(packets) * audio.frame_samples(rate)
    # Opus delays by its look-ahead (6.5 ms); compare at the best lag
    lags = range(0, int(0.01 * rate))
    n = len(x) - len(lags)
    snr = max(10 * np.log10(np.sum(x[:n] ** 2) / np.sum((y[lag:lag + n] - x[:n]) ** 2)) for lag in lags)
    assert snr > 10, f"speech through opus at 32 kbit/s: SNR {snr:.1f} dB"


def test_a_lost_packet_is_concealed_and_a_corrupt_one_refused():
    enc, dec = opus.Encoder(16000), opus.Decoder(16000)
    t = np.arange(16000) / 16000
    packets = enc.encode_all(0.3 * np.sin(2 * np.pi * 300 * t))
    for p in packets[:20]:
        dec.decode(p)
    concealed = dec.decode(None)
    assert concealed.shape == (320,) and np.sqrt(np.mean(concealed ** 2)) > 0.05  # PLC continues the tone
    with pytest.raises(opus.OpusError, match="corrupted stream"):
        dec.decode(b"\xff\xff\xff")
    with pytest.raises(opus.OpusError, match="an Opus packet is 1 to 1500 bytes, got 0"):
        dec.decode(b"")
    assert dec.decode(packets[21]).shape == (320,)  # the decoder goes on after a bad packet


def test_the_codec_refuses_what_opus_cannot_do():
    with pytest.raises(ValueError, match="opus needs a sample rate"):
        opus.Encoder(44100)
    with pytest.raises(ValueError, match="bitrate must be 6000 to 256000"):
        opus.Encoder(16000, bitrate=1)
    with pytest.raises(ValueError, match="an Opus frame at 16000 Hz is 320 samples"):
        opus.Encoder(16000).encode(np.zeros(100))
