"""The wire contract has two implementations, python/ria/wire (hub, tests) and lib/wire.cc (the C++ sink):
they must put the same bytes on the wire and accept the same hub messages."""

import json

import numpy as np
import pytest

from gnuradio.ria.ria_python import wire_check_hub_message, wire_convert
from gnuradio.ria.wire import framing, protocol

EDGES = np.array([0.0, -0.0, 1.0, -1.0, 1.5, -1.5, 1e9, -1e9, 0.5 / 32767, 1.5 / 32767, 2.5 / 32767, -2.5 / 32767,
                  0.5 / 127, 1.5 / 127, -0.5 / 127, 0.999999, -0.999999, 1e-30], np.float32)


@pytest.mark.parametrize("fmt", ["cf32", "cs16", "cs8"])
def test_cpp_and_python_convert_alike(fmt):
    rng = np.random.default_rng(3)
    values = np.concatenate([EDGES, rng.uniform(-1.2, 1.2, 100_001).astype(np.float32)])
    assert wire_convert(values, fmt) == framing.convert(values, fmt)


def test_full_scale_is_symmetric():
    assert np.frombuffer(wire_convert(np.array([-1e9, 1e9], np.float32), "cs16"), "<i2").tolist() == [-32767, 32767]
    assert np.frombuffer(wire_convert(np.array([-1e9, 1e9], np.float32), "cs8"), "i1").tolist() == [-127, 127]


def test_a_bad_format_is_named():
    with pytest.raises(ValueError, match="sample_format must be one of cf32, cs16, cs8, got 'cu4'"):
        wire_convert(np.zeros(2, np.float32), "cu4")


HUB_MESSAGES = [
    '{"type": "start", "app_id": "a", "radio_config": {"gain": 1}}',
    '{"type": "stop", "app_id": 7}',
    '{"type": "configure", "app_id": "a", "radio_config": {}, "id": "x"}',
    '{"type": "ping"}',
    '{"type": "ping", "id": 9007199254740993}',
    '{"type": "tx_start", "app_id": "a"}',
    # refused
    "{not json",
    "[1, 2]",
    '"start"',
    '{"type": 5}',
    '{"type": "launch"}',
    '{"type": "start"}',
    '{"type": "stop", "app_id": null}',
    '{"type": "start", "app_id": "a", "radio_config": [1]}',
    '{"type": "ping", "id": false}',
    '{"type": "ping", "id": 1.5}',
    '{"type": "ping", "id": {"a": 1}}',
    '{"type": "configure", "app_id": true, "radio_config": {}}',
]


@pytest.mark.parametrize("text", HUB_MESSAGES)
def test_cpp_and_python_accept_the_same_hub_messages(text):
    try:
        expected = protocol.decode(text)
    except protocol.ProtocolError:
        expected = None
    try:
        got = json.loads(wire_check_hub_message(text))
    except ValueError as e:
        assert expected is None, f"C++ refused what Python accepts: {e}"
        return
    assert expected is not None, "C++ accepted what Python refuses"
    assert got == expected
