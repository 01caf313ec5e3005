"""The agent library on its own: config file, device names, protocol checks, backoff, redaction, detection."""

import json
import os
import stat

import pytest

from gnuradio.ria.agent import config, hardware
from gnuradio.ria.wire import devices, protocol
from gnuradio.ria.ria_python import backoff_delay, redact_url


def test_config_is_private_and_keeps_unknown_keys(tmp_path, monkeypatch):
    path = tmp_path / "ria" / "agent.json"
    monkeypatch.setenv("RIA_AGENT_CONFIG", str(path))
    path.parent.mkdir()
    path.write_text(json.dumps({"future_field": [1, 2], "name": "old"}))
    config.save({"hub_url": "http://hub:8000", "agent_id": "a1", "token": "t0k", "name": "bench-3"})
    data = json.loads(path.read_text())
    assert data == {"future_field": [1, 2], "name": "bench-3", "hub_url": "http://hub:8000", "agent_id": "a1",
                    "token": "t0k"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert config.load() == data


def test_config_with_a_token_others_can_read_is_refused_and_register_makes_it_private(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"hub_url": "http://hub:8000", "token": "t0k"}))
    path.chmod(0o604)
    with pytest.raises(config.ConfigError, match=r"readable by everyone \(mode 0604\).*chmod 600"):
        config.load(str(path))
    config.save({"agent_id": "a2"}, str(path))  # what `register` does: rewritten 0600, keys kept
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert config.load(str(path)) == {"hub_url": "http://hub:8000", "token": "t0k", "agent_id": "a2"}
    path.chmod(0o644)
    path.write_text(json.dumps({"name": "no token here"}))
    assert config.load(str(path)) == {"name": "no token here"}  # nothing secret: nothing to refuse


def test_broken_config_file_is_named(tmp_path):
    bad = tmp_path / "agent.json"
    bad.write_text("{oops")
    with pytest.raises(config.ConfigError, match=str(bad)):
        config.load(str(bad))


@pytest.mark.parametrize("hub,expected", [
    ("http://hub:8000", "ws://hub:8000/screens/agent/ws?agent_id=a1"),
    ("https://hub.example/", "wss://hub.example/screens/agent/ws?agent_id=a1"),
    ("ws://h/screens/agent/ws", "ws://h/screens/agent/ws?agent_id=a1"),
])
def test_ws_url(hub, expected):
    assert config.ws_url(hub, "a1") == expected


def test_ws_url_rejects_other_schemes():
    with pytest.raises(config.ConfigError, match="ftp://x"):
        config.ws_url("ftp://x", "a")


@pytest.mark.parametrize("device,identifier,args", [
    ("sim", "", "driver=riasim"), ("mock", "", "driver=riasim"), ("rtlsdr", "00000001", "driver=rtlsdr,serial=00000001"),
    ("blade", "", "driver=bladerf"), ("pluto", "ip:192.168.3.1", "driver=plutosdr,uri=ip:192.168.3.1"),
    ("driver=uhd,type=b200", "", "driver=uhd,type=b200"),
])
def test_device_names(device, identifier, args):
    assert devices.soapy_args(device, identifier) == args


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="'toaster'"):
        devices.soapy_args("toaster")


def test_radio_config_normalisation():
    clean, errors = protocol.normalize_radio_config(
        {"center_freq": 1e8, "sample_rate": 2e6, "gain": True, "buffer_size": 0, "antenna": "RX", "x": 1,
         "bandwidth": float("nan"), "device": "hackrf"})
    assert clean == {"center_frequency": 1e8, "sample_rate": 2e6, "antenna": "RX", "device_args": "driver=hackrf"}
    assert len(errors) == 4
    assert any("gain must be a finite number" in e for e in errors)
    assert any("buffer_size must be an integer from 1" in e for e in errors)
    assert any("unknown radio_config key 'x'" in e for e in errors)
    assert any("bandwidth must be a finite number" in e for e in errors)


@pytest.mark.parametrize("text,says", [
    ("nope", "not valid JSON"), ("3", "JSON object"), ('{"a": 1}', "no string 'type'"),
    ('{"type": "dance"}', "unknown message type 'dance'"), ('{"type": "stop"}', "needs an 'app_id'"),
    ('{"type": "start", "app_id": "a", "radio_config": 5}', "radio_config must be an object"),
    ('{"type": "ping", "id": [1]}', "id must be"),
])
def test_decode_names_what_is_wrong(text, says):
    with pytest.raises(protocol.ProtocolError, match=says):
        protocol.decode(text)


def test_heartbeat_fields():
    hb = protocol.heartbeat(["mock"], True, "app", {"name": "n", "version": "v"}, {"frames_sent": 1})
    assert hb == {"type": "heartbeat", "hardware": ["mock"], "status": "streaming", "capabilities": ["rx"],
                  "tx_enabled": False, "app_id": "app", "agent": {"name": "n", "version": "v"},
                  "stats": {"frames_sent": 1}}


def test_backoff_is_full_jitter_doubling_to_a_cap():
    """The C++ transport's schedule (lib/backoff.cc), driven with explicit random draws."""
    assert backoff_delay(0, 1.0) == 1.0
    assert backoff_delay(3, 1.0) == 8.0
    assert backoff_delay(10, 1.0) == 30.0
    assert backoff_delay(3, 0.25) == 2.0
    assert backoff_delay(50, 0.0) == 0.0
    assert backoff_delay(1000, 1.0) == 30.0


def test_tokens_are_redacted_from_urls():
    assert redact_url("ws://h/x?agent_id=a&token=SECRET") == "ws://h/x?agent_id=a&token=***"
    assert redact_url("ws://h/x?token=SECRET&agent_id=a") == "ws://h/x?token=***&agent_id=a"
    assert redact_url("ws://h/x?agent_id=a") == "ws://h/x?agent_id=a"


def test_detection_names_riasim_as_mock(serial):
    found = hardware.detect(f"driver=riasim,serial={serial}")
    assert found == [{"name": "mock", "driver": "riasim", "label": f"RIA simulated radio [{serial}]",
                      "serial": serial}]
    assert hardware.hardware_names(f"driver=riasim,serial={serial}") == ["mock"]
