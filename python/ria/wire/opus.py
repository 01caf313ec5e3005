"""Opus for the hub and the tests: mono 20 ms frames through Debian's libopus0 (ctypes, no PyPI).

The agent's blocks use libopus from C++ (lib/opus_codec.cc); this is the same codec on the hub's side.
"""

import ctypes
import ctypes.util

import numpy as np

from . import audio

_OK = 0
_APPLICATION_VOIP = 2048
_SET_BITRATE = 4002
_MAX_DECODE_SECONDS = 0.12  # the longest Opus packet


class OpusError(RuntimeError):
    """libopus refused: str() has its own message."""


def _library():
    name = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise OpusError(f"libopus is not installed (apt-get install libopus0): {e}") from None
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encode_float.restype = ctypes.c_int32
    lib.opus_encode_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int,
                                      ctypes.c_char_p, ctypes.c_int32]
    lib.opus_encoder_ctl.restype = ctypes.c_int
    lib.opus_encoder_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int32]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode_float.restype = ctypes.c_int
    lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                      ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_int]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    return lib


_lib = None


def _opus():
    global _lib
    if _lib is None:
        _lib = _library()
    return _lib


def _check(code, what):
    if code < _OK:
        raise OpusError(f"{what}: {_opus().opus_strerror(code).decode()}")
    return code


class Encoder:
    """Mono float samples in -1..1 to one Opus packet per 20 ms frame."""

    def __init__(self, sample_rate, bitrate=audio.DEFAULT_OPUS_BITRATE):
        sample_rate = audio.check_rate("opus", sample_rate)
        audio.check_bitrate(bitrate)
        err = ctypes.c_int()
        self._state = _opus().opus_encoder_create(sample_rate, 1, _APPLICATION_VOIP, ctypes.byref(err))
        _check(err.value, "opus_encoder_create")
        _check(_opus().opus_encoder_ctl(self._state, _SET_BITRATE, bitrate), "OPUS_SET_BITRATE")
        self.sample_rate = sample_rate
        self.frame_samples = audio.frame_samples(sample_rate)
        self._out = ctypes.create_string_buffer(audio.MAX_OPUS_PACKET)

    def encode(self, frame):
        """One packet (bytes) from exactly frame_samples float samples."""
        pcm = np.ascontiguousarray(frame, dtype=np.float32)
        if pcm.shape != (self.frame_samples,):
            raise ValueError(f"an Opus frame at {self.sample_rate} Hz is {self.frame_samples} samples, got {pcm.shape}")
        n = _check(_opus().opus_encode_float(self._state, pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                             self.frame_samples, self._out, audio.MAX_OPUS_PACKET), "opus_encode")
        return self._out.raw[:n]

    def encode_all(self, samples):
        """Packets for a whole signal, the last frame padded with silence."""
        samples = np.asarray(samples, dtype=np.float32)
        n = self.frame_samples
        padded = np.zeros(-(-len(samples) // n) * n, dtype=np.float32)
        padded[:len(samples)] = samples
        return [self.encode(padded[i:i + n]) for i in range(0, len(padded), n)]

    def __del__(self):
        if getattr(self, "_state", None):
            _opus().opus_encoder_destroy(self._state)
            self._state = None


class Decoder:
    """Opus packets to mono float samples; a missing packet (None) is concealed (PLC) for one frame."""

    def __init__(self, sample_rate):
        sample_rate = audio.check_rate("opus", sample_rate)
        err = ctypes.c_int()
        self._state = _opus().opus_decoder_create(sample_rate, 1, ctypes.byref(err))
        _check(err.value, "opus_decoder_create")
        self.sample_rate = sample_rate
        self.frame_samples = audio.frame_samples(sample_rate)
        self._pcm = np.zeros(int(sample_rate * _MAX_DECODE_SECONDS), dtype=np.float32)

    def decode(self, packet):
        """float32 samples of one packet; None (lost) gives one frame of concealment. OpusError on a bad packet."""
        if packet is not None and not 0 < len(packet) <= audio.MAX_OPUS_PACKET:
            raise OpusError(f"an Opus packet is 1 to {audio.MAX_OPUS_PACKET} bytes, got {len(packet)}")
        out = self._pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if packet is None:
            n = _opus().opus_decode_float(self._state, None, 0, out, self.frame_samples, 0)
        else:
            n = _opus().opus_decode_float(self._state, bytes(packet), len(packet), out, len(self._pcm), 0)
        _check(n, "opus_decode")
        return self._pcm[:n].copy()

    def __del__(self):
        if getattr(self, "_state", None):
            _opus().opus_decoder_destroy(self._state)
            self._state = None
