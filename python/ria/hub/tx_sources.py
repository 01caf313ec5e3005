"""Where the IQ of a TX session comes from: a tone (plain, or keyed on/off or in frequency), a SigMF recording in
the hub's recordings folder, or an upload streamed through the API. Each hands out cf32_le bytes of whole
samples on demand, so the hub holds one frame at a time whatever the source."""

import asyncio
import json
import math
import os

import numpy as np

from ..wire.tx import BYTES_PER_SAMPLE
from . import limits

KINDS = ("tone", "recording", "upload")
KEYS = {"tone": ("kind", "offset_hz", "amplitude", "duration_s", "keying", "symbol_rate", "modulation", "shift_hz"),
        "recording": ("kind", "name"),
        "upload": ("kind", "name", "datatype", "sample_rate", "samples")}
DATATYPE = "cf32_le"
MAX_META_BYTES = 1 << 20
CF32 = np.dtype("<c8")


class SourceError(ValueError):
    """A source description or file the hub cannot transmit; str() names the field."""


class SourceStalled(Exception):
    """A source that stopped delivering (an upload that never came or stalled, a file that failed)."""


def _number(key, value, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SourceError(f"source.{key} must be a finite number, got {value!r}")
    below = low is not None and (value <= low if low_open else value < low)
    if below or (high is not None and value > high):
        allowed = f"{'(' if low_open else '['}{low:g}, {high:g}]" if high is not None else \
            f"{'>' if low_open else '>='} {low:g}"
        raise SourceError(f"source.{key} must be in {allowed}, got {value!r}")
    return float(value)


def sigmf_paths(path):
    """(data path, meta path) for 'x.sigmf-data', 'x.sigmf-meta' or 'x'."""
    base = path
    for suffix in (".sigmf-data", ".sigmf-meta"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
    return base + ".sigmf-data", base + ".sigmf-meta"


def read_sigmf_meta(meta_path):
    """The sample rate of a SigMF recording the hub can transmit; SourceError says why it cannot."""
    try:
        if os.path.getsize(meta_path) > MAX_META_BYTES:
            raise SourceError(f"{meta_path} is over {MAX_META_BYTES} bytes; not a SigMF meta file this hub reads")
        with open(meta_path, encoding="utf-8") as f:
            meta = limits.parse_json(f.read())
    except FileNotFoundError:
        raise SourceError(f"{meta_path} not found: a SigMF recording needs its .sigmf-meta next to the "
                          ".sigmf-data") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SourceError(f"{meta_path} is not a SigMF meta file the hub can read: {limits.printable(e, 200)}") \
            from None
    glob = meta.get("global") if isinstance(meta, dict) else None
    if not isinstance(glob, dict):
        raise SourceError(f"{meta_path} has no 'global' object")
    datatype = glob.get("core:datatype")
    if datatype != DATATYPE:
        raise SourceError(f"{meta_path}: core:datatype is {datatype!r}; TX sends {DATATYPE} only (interleaved "
                          "little-endian float32 I/Q): convert the recording first")
    rate = glob.get("core:sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        raise SourceError(f"{meta_path}: core:sample_rate must be a positive number, got {rate!r}")
    return float(rate)


def check_rate(source_rate, tx_rate):
    if source_rate != tx_rate:
        raise SourceError(f"source.sample_rate {source_rate:g} S/s differs from tx_sample_rate {tx_rate:g} S/s "
                          "(the hub does not resample): transmit at the recording's rate")


def make_source(desc, rate, recordings_dir):
    """The source a TX start describes, checked; SourceError names the field that is wrong."""
    if not isinstance(desc, dict):
        raise SourceError("source must be an object such as {\"kind\": \"tone\", \"offset_hz\": 10000, "
                          "\"duration_s\": 2}")
    kind = desc.get("kind")
    if kind not in KINDS:
        raise SourceError(f"source.kind must be one of {', '.join(KINDS)}, got {limits.printable(repr(kind))}")
    unknown = sorted(limits.printable(k, 40) for k in desc if k not in KEYS[kind])[:10]
    if unknown:
        raise SourceError(f"unknown source keys for kind {kind}: {', '.join(unknown)} (known: "
                          f"{', '.join(KEYS[kind][1:])})")
    if kind == "tone":
        return Tone.from_description(desc, rate)
    if kind == "recording":
        return Recording.from_description(desc, rate, recordings_dir)
    return Upload.from_description(desc, rate)


class Tone:
    """A complex tone `offset_hz` from the centre; with `keying` ("10110"), one symbol per 1/symbol_rate s: on/off
    (ook) or offset_hz ± shift_hz/2 (fsk). Without duration_s a keyed tone plays its pattern once; with it, the
    pattern repeats until the duration ends."""

    def __init__(self, rate, offset_hz=0.0, amplitude=0.5, duration_s=None, keying=None, symbol_rate=None,
                 modulation="ook", shift_hz=0.0):
        self.rate, self.offset_hz, self.amplitude = rate, offset_hz, amplitude
        self.bits = None if keying is None else np.array([c == "1" for c in keying])
        self.symbol_rate, self.modulation, self.shift_hz = symbol_rate, modulation, shift_hz
        if duration_s is None:
            duration_s = len(keying) / symbol_rate
        self.total_samples = max(1, round(duration_s * rate))
        self.duration_s = self.total_samples / rate
        self._position, self._phase = 0, 0.0
        self.description = {"kind": "tone", "offset_hz": offset_hz, "amplitude": amplitude,
                            "duration_s": self.duration_s}
        if keying is not None:
            self.description.update(keying=keying, symbol_rate=symbol_rate, modulation=modulation)
            if modulation == "fsk":
                self.description["shift_hz"] = shift_hz

    @classmethod
    def from_description(cls, desc, rate):
        nyquist = rate / 2
        offset = _number("offset_hz", desc.get("offset_hz", 0.0), -nyquist, nyquist)
        amplitude = _number("amplitude", desc.get("amplitude", 0.5), 0.0, 1.0, low_open=True)
        duration = desc.get("duration_s")
        if duration is not None:
            duration = _number("duration_s", duration, 0.0, limits.TX_MAX_SOURCE_S, low_open=True)
        keying = desc.get("keying")
        modulation, shift, symbol_rate = desc.get("modulation", "ook"), 0.0, None
        if keying is None:
            if duration is None:
                raise SourceError("source.duration_s is required for a tone (or give source.keying)")
            for key in ("symbol_rate", "modulation", "shift_hz"):
                if key in desc:
                    raise SourceError(f"source.{key} goes with source.keying")
        else:
            if not isinstance(keying, str) or not 0 < len(keying) <= limits.TX_MAX_KEYING_BITS or \
                    set(keying) - {"0", "1"}:
                raise SourceError(f"source.keying must be 1 to {limits.TX_MAX_KEYING_BITS} characters 0 or 1, "
                                  f"got {limits.printable(repr(keying), 60)}")
            if "symbol_rate" not in desc:
                raise SourceError("source.symbol_rate is required with source.keying")
            symbol_rate = _number("symbol_rate", desc["symbol_rate"], 0.0, rate, low_open=True)
            if duration is None and len(keying) / symbol_rate > limits.TX_MAX_SOURCE_S:
                raise SourceError(f"source.keying at source.symbol_rate lasts over {limits.TX_MAX_SOURCE_S:g} s")
            if modulation not in ("ook", "fsk"):
                raise SourceError(f"source.modulation must be ook or fsk, got {limits.printable(repr(modulation))}")
            if modulation == "fsk":
                shift = _number("shift_hz", desc.get("shift_hz"), 0.0, rate, low_open=True)
                if abs(offset) + shift / 2 > nyquist:
                    raise SourceError(f"source.offset_hz ± source.shift_hz/2 must stay within ±{nyquist:g} Hz")
            elif "shift_hz" in desc:
                raise SourceError("source.shift_hz goes with source.modulation fsk")
        return cls(rate, offset, amplitude, duration, keying, symbol_rate, modulation, shift)

    def _samples(self, n):
        index = np.arange(self._position, self._position + n, dtype=np.float64)
        envelope, freq = 1.0, self.offset_hz
        if self.bits is not None:
            symbols = (index * (self.symbol_rate / self.rate)).astype(np.int64) % len(self.bits)
            bits = self.bits[symbols]
            if self.modulation == "ook":
                envelope = bits.astype(np.float64)
            else:
                freq = self.offset_hz + np.where(bits, 0.5, -0.5) * self.shift_hz
        step = 2 * np.pi * np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,)) / self.rate
        phase = self._phase + np.concatenate(([0.0], np.cumsum(step[:-1])))
        self._phase = float((phase[-1] + step[-1]) % (2 * np.pi))
        self._position += n
        return (self.amplitude * envelope * np.exp(1j * phase)).astype(CF32)

    async def read(self, max_samples):
        n = min(max_samples, self.total_samples - self._position)
        return self._samples(n).tobytes() if n > 0 else b""

    def close(self):
        pass


class Recording:
    """A cf32_le SigMF recording in the hub's recordings folder, by file name."""

    def __init__(self, data_path, name):
        self._file = open(data_path, "rb")
        self.total_samples = os.fstat(self._file.fileno()).st_size // BYTES_PER_SAMPLE
        self.description = {"kind": "recording", "name": name, "samples": self.total_samples}
        self.duration_s = None

    @classmethod
    def from_description(cls, desc, rate, recordings_dir):
        name = desc.get("name")
        if not limits.is_printable_name(name, 200) or "/" in name or "\\" in name or name.startswith("."):
            raise SourceError("source.name must be the file name of a recording in the hub's recordings folder "
                              "(see GET /api/recordings)")
        data_path, meta_path = sigmf_paths(os.path.join(recordings_dir, name))
        if not os.path.isfile(data_path):
            raise SourceError(f"source.name: no recording {os.path.basename(data_path)} in the hub's recordings "
                              "folder")
        check_rate(read_sigmf_meta(meta_path), rate)
        source = cls(data_path, os.path.basename(data_path))
        source.duration_s = source.total_samples / rate
        return source

    async def read(self, max_samples):
        try:
            return await asyncio.to_thread(self._file.read, max_samples * BYTES_PER_SAMPLE)
        except (OSError, ValueError) as e:
            raise SourceStalled(f"the recording could not be read: {e}") from None

    def close(self):
        self._file.close()


class Upload:
    """IQ streamed in the body of POST /api/agents/{id}/tx/upload, read only as fast as it is transmitted (the
    request's own buffer is bounded, and TCP holds the client back)."""

    def __init__(self, description, total_samples, rate):
        self.description = description
        self.total_samples = total_samples
        self.duration_s = None if total_samples is None else total_samples / rate
        self._stream = None
        self._carry = b""
        self._ahead = b""  # the first frame, read before tx_start goes out
        self.bytes_received = 0
        self.note = None

    @classmethod
    def from_description(cls, desc, rate):
        if desc.get("datatype") != DATATYPE:
            raise SourceError(f"source.datatype must be {DATATYPE!r} (interleaved little-endian float32 I/Q), got "
                              f"{limits.printable(repr(desc.get('datatype')))}")
        if "sample_rate" in desc:
            check_rate(_number("sample_rate", desc["sample_rate"], 0.0, low_open=True), rate)
        total = desc.get("samples")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or not 0 < total < 2 ** 53):
            raise SourceError(f"source.samples must be a positive integer, got {limits.printable(repr(total))}")
        name = desc.get("name", "upload")
        if not limits.is_printable_name(name, 200):
            raise SourceError("source.name must be printable text of 1 to 200 characters")
        return cls({"kind": "upload", "name": name, "samples": total}, total, rate)

    @property
    def attached(self):
        return self._stream is not None

    def attach(self, stream):
        self._stream = stream

    async def prefetch(self, max_samples):
        """Reads the first frame ahead, so that the agent is armed only once there is something to send
        (the RIA agent 0.1.7 runs dry 0.1 s after armed without a frame)."""
        self._ahead = await self.read(max_samples)
        return len(self._ahead)

    async def read(self, max_samples):
        want = max_samples * BYTES_PER_SAMPLE
        if self._ahead:
            ahead, self._ahead = self._ahead[:want], self._ahead[want:]
            return ahead
        if self._stream is None:
            raise SourceStalled("no upload is attached")
        buffer = bytearray(self._carry)
        while len(buffer) < want:
            try:
                chunk = await asyncio.wait_for(self._stream.read(want - len(buffer)), limits.BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise SourceStalled(f"the upload stalled for {limits.BODY_TIMEOUT_S:g} s") from None
            except Exception as e:  # noqa: BLE001 - the client went away, or sent a broken chunked body
                raise SourceStalled(f"the upload failed: {limits.printable(e, 120)}") from None
            if not chunk:
                break
            self.bytes_received += len(chunk)
            buffer += chunk
        whole = len(buffer) - len(buffer) % BYTES_PER_SAMPLE
        self._carry = bytes(buffer[whole:])
        if len(buffer) < want:  # the end of the body
            if self._carry:
                self.note = f"the upload ended with {len(self._carry)} bytes that are not a whole sample; dropped"
                self._carry = b""
        return bytes(buffer[:whole])

    def close(self):
        pass
