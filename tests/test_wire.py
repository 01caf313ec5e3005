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
    '{"type": "stop", "app_id": 18446744073709551615}',  # ids and app_ids: integers of 64 bits, signed or not
    '{"type": "ping", "id": -9223372036854775808}',
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
    '{"type": "stop", "app_id": 18446744073709551616}',
    '{"type": "stop", "app_id": -9223372036854775809}',
    '{"type": "stop", "app_id": 1e400}',
    '{"type": "ping", "id": "\\ud800"}',  # an id is echoed exactly, so it must be text
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


BIG = "9" * 400
# JSON text that nlohmann::json cannot hold as such: lone UTF-16 surrogates, numbers beyond a double
HOSTILE = [
    ('{"type": "configure", "app_id": "a", "radio_config": {"gain": "\\ud800"}}', "gain", '"\\ud800"'),
    ('{"type": "configure", "app_id": "a", "radio_config": {"antenna": "RX\\udc00x"}}', "antenna", '"RX\\udc00x"'),
    ('{"type": "configure", "app_id": "a", "radio_config": {"gain": 1e400}}', "gain", "1e400"),
    ('{"type": "configure", "app_id": "a", "radio_config": {"gain": -' + BIG + '}}', "gain", "-" + "9" * 63 + "..."),
]


@pytest.mark.parametrize("text,key,shown", HOSTILE)
def test_a_value_nothing_can_hold_is_read_as_unreadable_not_refused_with_the_message(text, key, shown):
    """Python reads these texts; the C++ transport used to refuse the whole message ("not valid JSON"), so the
    agent could not say which key was wrong. Now the value arrives marked, as the hub wrote it."""
    protocol.decode(text)  # Python's check takes it
    got = json.loads(wire_check_hub_message(text))  # (an unreadable value dumps as nlohmann's binary)
    assert got["radio_config"][key] == {"bytes": list(shown.encode()), "subtype": 82}


def test_a_key_with_a_lone_surrogate_becomes_its_json_text():
    got = json.loads(wire_check_hub_message('{"type": "configure", "app_id": "a", "radio_config": {"\\ud800": 1}}'))
    assert got["radio_config"] == {"\\ud800": 1}


@pytest.mark.parametrize("text", [
    '{"type": "ping", "id": "\\ud800"}',
    '{"type": "stop", "app_id": "\\udfff"}',
    '{"type": "stop", "app_id": 1e400}',
])
def test_ids_that_cannot_be_echoed_are_refused_naming_them(text):
    with pytest.raises(ValueError, match=r"\bid\b|app_id"):
        wire_check_hub_message(text)
