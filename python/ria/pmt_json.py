"""PMT <-> JSON-friendly Python values, at the edges of the blocks only."""

import numpy as np
import pmt


def plain(value):
    """Python value from pmt.to_python made JSON-friendly (numpy -> lists, tuples -> lists)."""
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
    """pmt.to_pmt, with nested dicts and lists handled the same way at every depth."""
    if isinstance(value, dict):
        d = pmt.make_dict()
        for k, v in value.items():
            d = pmt.dict_add(d, pmt.intern(str(k)), to_pmt(v))
        return d
    if isinstance(value, (list, tuple)):
        return pmt.make_vector(0, pmt.PMT_NIL) if not value else _vector(value)
    return pmt.to_pmt(value)


def _vector(items):
    v = pmt.make_vector(len(items), pmt.PMT_NIL)
    for i, item in enumerate(items):
        pmt.vector_set(v, i, to_pmt(item))
    return v
