"""What a play session (docs/protocol.md §8) sends to a voice agent's speaker: text spoken by espeak-ng on the
hub, or an uploaded WAV file; either is read whole (both are bounded), resampled to the session's rate with a
polyphase low-pass filter, and encoded frame by frame as the agent takes it (f32, s16, or one Opus packet per
20 ms)."""

import asyncio
import io
import math
import re
import shutil
import struct
import wave

import numpy as np
from scipy.signal import resample_poly

from ..wire import audio
from ..wire import opus
from . import limits
from .tx_sources import SourceError

MAX_TEXT_CHARS = 2000
MAX_WAV_BYTES = 32 << 20
MAX_PLAY_S = 600.0
WAV_RATES = (4000, 192000)
ESPEAK = "espeak-ng"
ESPEAK_TIMEOUT_S = 30.0
MAX_SPEECH_BYTES = 64 << 20
VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,39}")  # en, en-us, en+f3, mb-fr1: no paths
_FORMAT_NAMES = {1: "PCM", 3: "IEEE float", 6: "A-law", 7: "µ-law", 0xFFFE: "extensible"}


def _wav_format_tag(data):
    """The format tag of a RIFF/WAVE file's fmt chunk (None when there is none): to name what is not PCM."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        name, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if name == b"fmt " and size >= 2 and pos + 10 <= len(data):
            tag = struct.unpack("<H", data[pos + 8:pos + 10])[0]
            if tag == 0xFFFE and size >= 26 and pos + 34 <= len(data):  # the sub-format's first two bytes
                tag = struct.unpack("<H", data[pos + 32:pos + 34])[0] or tag
            return tag
        pos += 8 + size + (size & 1)
    return None


def read_wav(data, what="the WAV file"):
    """(mono float32 samples in −1..1, sample rate) of a PCM WAV file (8/16/24/32-bit integer, mono or stereo,
    which is mixed down); SourceError names what is wrong."""
    if len(data) > MAX_WAV_BYTES:
        raise SourceError(f"{what} is {len(data)} bytes; the hub plays WAV files of at most {MAX_WAV_BYTES} bytes")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SourceError(f"{what} is not a WAV file (no RIFF/WAVE header)")
    tag = _wav_format_tag(data)
    if tag is not None and tag != 1:
        raise SourceError(f"{what} is {_FORMAT_NAMES.get(tag, f'format {tag}')} WAV; the hub plays PCM WAV only "
                          "(8, 16, 24 or 32-bit integer): convert it first, e.g. sox in.wav -b 16 out.wav")
    try:
        with wave.open(io.BytesIO(data)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            if channels not in (1, 2):
                raise SourceError(f"{what} has {channels} channels; the hub plays mono or stereo (mixed to mono)")
            if not WAV_RATES[0] <= rate <= WAV_RATES[1]:
                raise SourceError(f"{what} has a sample rate of {rate} Hz; the hub plays {WAV_RATES[0]} to "
                                  f"{WAV_RATES[1]} Hz")
            raw = w.readframes(w.getnframes())
    except SourceError:
        raise
    except (wave.Error, EOFError, struct.error, ValueError) as e:
        raise SourceError(f"{what} is not a WAV file the hub can read: {limits.printable(e, 120)}") from None
    raw = raw[:len(raw) - len(raw) % (width * channels)]
    if not raw:
        raise SourceError(f"{what} holds no samples")
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        x = (((b[:, 2] << 24) | (b[:, 1] << 16) | (b[:, 0] << 8)) >> 8).astype(np.float32) / 8388608.0
    else:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    if channels == 2:
        x = x.reshape(-1, 2).mean(axis=1)
    if len(x) / rate > MAX_PLAY_S:
        raise SourceError(f"{what} lasts {len(x) / rate:.1f} s; the hub plays at most {MAX_PLAY_S:g} s")
    return x.astype(np.float32), rate


def resample(samples, rate_in, rate_out):
    """float32 samples at rate_out: a polyphase FIR (Kaiser-windowed low-pass at the lower Nyquist)."""
    if rate_in == rate_out:
        return np.asarray(samples, dtype=np.float32)
    g = math.gcd(int(rate_in), int(rate_out))
    out = resample_poly(np.asarray(samples, dtype=np.float64), int(rate_out) // g, int(rate_in) // g)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def check_text(text, voice):
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise SourceError(f"text must be 1 to {MAX_TEXT_CHARS} characters to speak")
    if any(not (c.isprintable() or c in "\n\t") for c in text):
        raise SourceError("text must be printable (no control characters)")
    if voice is not None and (not isinstance(voice, str) or not VOICE_NAME.fullmatch(voice)):
        raise SourceError("voice must be an espeak-ng voice name such as en, en-us or en+f3 (letters, digits, "
                          f"+, _ and -; at most 40 characters), got {limits.printable(repr(voice), 60)}")


async def speak(text, voice=None):
    """(samples, rate) of `text` spoken by espeak-ng; SourceError when it cannot (not installed, unknown voice)."""
    check_text(text, voice)
    program = shutil.which(ESPEAK)
    if program is None:
        raise SourceError("espeak-ng is not installed on the hub (apt-get install espeak-ng)")
    args = [program, "--stdout"] + (["-v", voice] if voice else [])
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:  # the text goes in on stdin: never an option, never a shell
        out, err = await asyncio.wait_for(proc.communicate(text.encode()), ESPEAK_TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SourceError(f"espeak-ng did not finish within {ESPEAK_TIMEOUT_S:g} s") from None
    message = limits.printable(err.decode("utf-8", "replace").strip(), 200)
    if proc.returncode != 0 or len(out) <= 44:
        raise SourceError(f"espeak-ng could not speak this{f' with voice {voice}' if voice else ''}: "
                          f"{message or f'exit status {proc.returncode}'}")
    if len(out) > MAX_SPEECH_BYTES:
        raise SourceError("the speech is too long")
    # espeak-ng writing to a pipe cannot go back to fill in the sizes: its header says "very long"
    data = out[:4] + struct.pack("<I", len(out) - 8) + out[8:40] + struct.pack("<I", len(out) - 44) + out[44:] \
        if out[36:40] == b"data" else out
    return read_wav(data, "espeak-ng's output")


class AudioPlay:
    """Samples ready to play, handed out as encoded frames: read_frames(max) -> [(payload, decoded samples)]."""

    def __init__(self, samples, rate, sample_format, description, bitrate=audio.DEFAULT_OPUS_BITRATE):
        self.samples = np.asarray(samples, dtype=np.float32)
        self.rate, self.sample_format = rate, sample_format
        self.encoder = opus.Encoder(rate, bitrate) if sample_format == "opus" else None
        self.frame = audio.frame_samples(rate)
        self.total_samples = len(self.samples)
        if self.encoder:  # the last Opus frame is padded with silence
            self.total_samples = -(-len(self.samples) // self.frame) * self.frame
        self.duration_s = self.total_samples / rate
        self.description = dict(description, sample_rate=rate, sample_format=sample_format,
                                samples=self.total_samples, duration_s=round(self.duration_s, 3))
        self._position = 0
        self.note = None

    async def read_frames(self, max_samples):
        start = self._position
        if start >= len(self.samples):
            return []
        if self.encoder:
            chunk = np.zeros(self.frame, dtype=np.float32)
            part = self.samples[start:start + self.frame]
            chunk[:len(part)] = part
            self._position += self.frame
            return [(self.encoder.encode(chunk), self.frame)]
        n = min(max_samples, len(self.samples) - start)
        self._position += n
        return [(audio.to_bytes(self.samples[start:start + n], self.sample_format), n)]

    def close(self):
        pass
