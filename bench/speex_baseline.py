"""Plain speexdsp echo cancellation through ctypes: the baseline ria.aec is measured against."""

import ctypes
import ctypes.util

import numpy as np

SPEEX_ECHO_SET_SAMPLING_RATE = 24
SPEEX_PREPROCESS_SET_ECHO_STATE = 24

_lib = ctypes.CDLL(ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1")
_lib.speex_echo_state_init.restype = ctypes.c_void_p
_lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
_lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
_lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
_lib.speex_preprocess_state_init.restype = ctypes.c_void_p
_lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
_lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]


def cancel(mic, ref, rate, frame, tail, residual_suppression=False):
    """Runs speex_echo_cancellation frame by frame over float signals (-1..1); returns the float output."""
    st = _lib.speex_echo_state_init(frame, tail)
    r = ctypes.c_int(int(rate))
    _lib.speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(r))
    pp = None
    if residual_suppression:
        pp = _lib.speex_preprocess_state_init(frame, int(rate))
        _lib.speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(st))
    n = (min(len(mic), len(ref)) // frame) * frame
    to16 = lambda x: np.clip(np.rint(x[:n] * 32767), -32768, 32767).astype(np.int16)
    m, f = to16(mic), to16(ref)
    out = np.zeros(n, np.int16)
    for k in range(0, n, frame):
        _lib.speex_echo_cancellation(st, m[k:].ctypes.data, f[k:].ctypes.data, out[k:].ctypes.data)
        if pp:
            _lib.speex_preprocess_run(pp, out[k:].ctypes.data)
    if pp:
        _lib.speex_preprocess_state_destroy(pp)
    _lib.speex_echo_state_destroy(st)
    return out.astype(np.float32) / 32768.0
