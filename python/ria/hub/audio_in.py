"""A voice agent's microphone stream as the hub receives it (docs/protocol.md §8): each binary frame decoded
(f32 / s16 / one Opus packet), each gap concealed (Opus PLC for the first 100 ms, then silence; silence for PCM)
and counted, and the level measured (RMS over the last second, dBFS: 0 dB is a constant of full scale, so a
full-scale sine reads −3 dB). It is not IQ: nothing of it goes to the spectrum meter."""

import collections
import math

import numpy as np

from ..wire import audio
from ..wire import opus

PLC_S = 0.1  # a gap is concealed with Opus PLC this long, then with silence
MAX_CONCEAL_S = 60.0  # samples made up for one gap at most (a longer gap is counted, not filled)
LEVEL_BLOCK_S = 0.1
LEVEL_WINDOW_BLOCKS = 10  # the level is the RMS over this many blocks: one second


def stream_settings(msg):
    """The audio settings of a stream_info (§8), checked: {sample_format, sample_rate, frame_samples, bitrate};
    ValueError naming the field."""
    fmt = msg.get("sample_format")
    if fmt not in audio.FORMATS:
        raise ValueError(f"sample_format must be one of {', '.join(audio.FORMATS)} for audio, got {fmt!r}")
    rate = audio.check_rate(fmt, msg.get("sample_rate"))
    channels = msg.get("channels", 1)
    if channels != 1 or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 (mono) for audio, got {channels!r}")
    settings = {"sample_format": fmt, "sample_rate": rate, "frame_samples": None, "bitrate": None}
    if fmt == "opus":
        frame = msg.get("frame_samples", audio.frame_samples(rate))
        if frame != audio.frame_samples(rate) or isinstance(frame, bool):
            raise ValueError(f"frame_samples must be {audio.frame_samples(rate)} (20 ms) at {rate} Hz, got {frame!r}")
        bitrate = msg.get("bitrate")
        if bitrate is not None:
            audio.check_bitrate(bitrate)
        settings.update(frame_samples=frame, bitrate=bitrate)
    return settings


class LevelMeter:
    """RMS over the last second in blocks of 100 ms; level_dbfs is None until the first block."""

    def __init__(self, rate):
        self.block = max(1, int(rate * LEVEL_BLOCK_S))
        self._blocks = collections.deque(maxlen=LEVEL_WINDOW_BLOCKS)
        self._sum, self._n = 0.0, 0

    def feed(self, samples):
        x = np.asarray(samples, dtype=np.float64)
        i = 0
        while i < len(x):
            take = min(len(x) - i, self.block - self._n)
            chunk = x[i:i + take]
            self._sum += float(np.dot(chunk, chunk))
            self._n += take
            i += take
            if self._n == self.block:
                self._blocks.append(self._sum)
                self._sum, self._n = 0.0, 0

    @property
    def level_dbfs(self):
        if not self._blocks:
            return None
        mean = sum(self._blocks) / (len(self._blocks) * self.block)
        if not math.isfinite(mean):
            return None
        return audio.level_dbfs(mean)


class AudioIn:
    def __init__(self, settings):
        self.sample_format, self.rate = settings["sample_format"], settings["sample_rate"]
        self.frame_samples = settings["frame_samples"] or audio.frame_samples(self.rate)
        self.decoder = opus.Decoder(self.rate) if self.sample_format == "opus" else None
        self.meter = LevelMeter(self.rate)
        self.frames = self.samples = 0
        self.concealed_frames = self.concealed_samples = 0
        self.unfilled_samples = 0  # of gaps longer than MAX_CONCEAL_S: counted, not made up
        self.decode_errors = 0

    def decode(self, payload):
        """(samples, concealed frames) of one binary frame; an Opus packet libopus refuses is concealed as a lost
        frame. ValueError when the frame cannot be audio in this format (its length)."""
        if self.decoder is None:
            samples = audio.from_bytes(payload, self.sample_format)
            if self.sample_format == "f32":  # (only raw floats can be non-finite)
                samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
            concealed = 0
        else:
            if len(payload) > audio.MAX_OPUS_PACKET:
                raise ValueError(f"an Opus packet of {len(payload)} bytes (at most {audio.MAX_OPUS_PACKET})")
            try:
                samples, concealed = self.decoder.decode(payload), 0
            except opus.OpusError:
                self.decode_errors += 1
                samples, concealed = self.decoder.decode(None), 1
                self.concealed_frames += 1
                self.concealed_samples += len(samples)
        self.frames += 1
        self.samples += len(samples)
        self.meter.feed(samples)
        return samples, concealed

    def conceal(self, dropped, keep=True):
        """(samples, frames) standing in for `dropped` lost samples: PLC for the first 100 ms, silence after,
        never more than MAX_CONCEAL_S. With keep=False (nothing records them) only the PLC part is returned,
        and the level meter sees the rest as at most a second of silence."""
        dropped = max(0, int(dropped))
        fill = min(dropped, int(MAX_CONCEAL_S * self.rate))
        self.unfilled_samples += dropped - fill
        frames = -(-dropped // self.frame_samples)
        parts, done = [], 0
        if self.decoder is not None:
            plc_end = min(fill, int(PLC_S * self.rate))
            while done < plc_end:
                frame = self.decoder.decode(None)[:plc_end - done]
                if not len(frame):
                    break
                parts.append(frame)
                done += len(frame)
        silence = fill - done
        self.meter.feed(np.concatenate(parts + [np.zeros(min(silence, self.rate), np.float32)]))
        if keep:
            parts.append(np.zeros(silence, dtype=np.float32))
        self.concealed_frames += frames
        self.concealed_samples += dropped
        return (np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)), frames

    def as_dict(self):
        return {"sample_format": self.sample_format, "sample_rate": self.rate, "frames": self.frames,
                "samples": self.samples, "level_dbfs": self.meter.level_dbfs,
                "concealed_frames": self.concealed_frames, "concealed_samples": self.concealed_samples,
                "unfilled_samples": self.unfilled_samples, "decode_errors": self.decode_errors}
