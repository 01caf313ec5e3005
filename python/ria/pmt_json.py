"""PMT <-> JSON-friendly Python values, at the edges of the blocks only."""

import numpy as np
import pmt

# lib/pmt_json.h: a hub value the agent could not read arrives as the PMT tuple (UNREADABLE_TAG, JSON text)
UNREADABLE_TAG = "ria_unreadable_json"
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64_MAX = (1 << 64) - 1


class Unreadable:
    """A value in a hub message that the agent cannot represent: a string with a lone UTF-16 surrogate
    ("\\ud800") or a number beyond the range of a double (1e400). Its repr is the JSON text as sent, so
    a check that refuses it ("gain must be a finite number, got 1e400") names it as the hub wrote it."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text

    def __eq__(self, other):
        return isinstance(other, Unreadable) and other.text == self.text

    def __hash__(self):
        return hash(self.text)


def plain(value):
    """Python value from pmt.to_python made JSON-friendly (numpy -> lists, tuples -> lists)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == UNREADABLE_TAG:
        return Unreadable(str(value[1]))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_python(msg):
    return plain(pmt.to_python(msg))


def to_pmt(value):
    """pmt.to_pmt, with nested dicts and lists handled the same way at every depth.

    Integers keep their JSON meaning up to 64 bits as the C++ side reads them (int64, then uint64);
    a larger one raises ValueError (PMT has no such integer).
    """
    if isinstance(value, dict):
        d = pmt.make_dict()
        for k, v in value.items():
            d = pmt.dict_add(d, pmt.intern(str(k)), to_pmt(v))
        return d
    if isinstance(value, (list, tuple)):
        return pmt.make_vector(0, pmt.PMT_NIL) if not value else _vector(value)
    if isinstance(value, Unreadable):
        return pmt.make_tuple(pmt.intern(UNREADABLE_TAG), pmt.intern(value.text))
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        if 0 <= value <= UINT64_MAX:
            return pmt.from_uint64(value)
        raise ValueError(f"the integer {value} does not fit in 64 bits")
    return pmt.to_pmt(value)


def _vector(items):
    v = pmt.make_vector(len(items), pmt.PMT_NIL)
    for i, item in enumerate(items):
        pmt.vector_set(v, i, to_pmt(item))
    return v
