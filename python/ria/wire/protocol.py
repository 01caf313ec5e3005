"""Messages of the agent <-> hub protocol (docs/protocol.md): building and validating them.

Everything here is plain data: dicts in, dicts out, ValueError with a message that names
the offending field for anything a hub (or a person) got wrong.
"""

import json
import math

from . import devices

SAMPLE_FORMATS = ("cf32", "cs16", "cs8")
BYTES_PER_SAMPLE = {"cf32": 8, "cs16": 4, "cs8": 2}
HUB_TYPES = ("start", "stop", "configure", "ping", "tx_start", "tx_stop", "tx_configure", "tx_data_available")
TX_TYPES = ("tx_start", "tx_stop", "tx_configure")
DEFAULT_BUFFER_SIZE = 1024
# The hub's close code for a connection it replaced with a newer one on the same agent token (docs/protocol.md §2)
REPLACED_CLOSE_CODE = 4009
MAX_BUFFER_SIZE = 1 << 22

# radio_config key -> gr-soapy cmd key of ria.sdr_source (None: not a source setting)
SOURCE_KEYS = {"sample_rate": "rate", "center_frequency": "freq", "gain": "gain",
               "bandwidth": "bandwidth", "antenna": "antenna"}
KEY_ALIASES = {"center_freq": "center_frequency"}
RADIO_CONFIG_KEYS = ("device", "identifier", "sample_rate", "center_frequency", "gain", "bandwidth",
                     "antenna", "buffer_size", "sample_format")


class ProtocolError(ValueError):
    """A hub message that cannot be acted on; str() says what was wrong."""


def decode(text, max_chars=1 << 20):
    """Parses one text frame from the hub into a dict with a valid `type`."""
    if len(text) > max_chars:
        raise ProtocolError(f"message of {len(text)} characters is over the limit of {max_chars}")
    try:
        msg = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"message is not valid JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"message must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message has no string 'type' field")
    if kind not in HUB_TYPES:
        raise ProtocolError(f"unknown message type {kind!r} (known: {', '.join(HUB_TYPES)})")
    if "id" in msg and not _string_or_integer(msg["id"]):
        raise ProtocolError(f"message id must be a string or integer, got {msg['id']!r}")
    if kind in ("start", "stop", "configure") and not _string_or_integer(msg.get("app_id")):
        raise ProtocolError(f"{kind} needs an 'app_id' (string)")
    if kind in ("start", "configure"):
        rc = msg.get("radio_config", {})
        if not isinstance(rc, dict):
            raise ProtocolError(f"{kind}: radio_config must be an object, got {type(rc).__name__}")
    return msg


def _string_or_integer(value):
    """JSON types kept apart: true/false are not the integers 1/0. An id is echoed exactly, so it must be text
    (no lone UTF-16 surrogate) or an integer of at most 64 bits, signed or not."""
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 64)


def encode(msg):
    return json.dumps(msg, separators=(",", ":"), allow_nan=False)


def finite_number(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def normalize_radio_config(rc):
    """Checks types and names of a radio_config.

    Returns (clean, errors): clean holds the keys that are fine (aliases resolved,
    `device` turned into SoapySDR args under `device_args`); errors is a list of
    messages, one per key that was rejected. Ranges are the device's business.
    """
    clean, errors = {}, []
    for key, value in rc.items():
        key = KEY_ALIASES.get(key, key)
        try:
            if key in ("sample_rate", "center_frequency", "bandwidth"):
                v = finite_number(key, value)
                if v < 0 or (key == "sample_rate" and v == 0):
                    raise ValueError(f"{key} must be {'> 0' if key == 'sample_rate' else '>= 0'}, got {value!r}")
                clean[key] = v
            elif key == "gain":
                clean[key] = finite_number(key, value)
            elif key == "antenna":
                if not isinstance(value, str):
                    raise ValueError(f"antenna must be a string, got {value!r}")
                clean[key] = value
            elif key == "buffer_size":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUFFER_SIZE:
                    raise ValueError(f"buffer_size must be an integer from 1 to {MAX_BUFFER_SIZE}, got {value!r}")
                clean[key] = value
            elif key == "sample_format":
                if value not in SAMPLE_FORMATS:
                    raise ValueError(f"sample_format must be one of {', '.join(SAMPLE_FORMATS)}, got {value!r}")
                clean[key] = value
            elif key in ("device", "identifier"):
                clean[key] = value
            else:
                raise ValueError(f"unknown radio_config key {key!r} (known: {', '.join(RADIO_CONFIG_KEYS)})")
        except ValueError as e:
            errors.append(str(e))
    devices.args_from_config(clean, errors)
    return clean, errors


# ---- agent -> hub

def heartbeat(hardware, streaming, app_id=None, agent=None, stats=None):
    msg = {"type": "heartbeat", "hardware": list(hardware), "status": "streaming" if streaming else "idle",
           "capabilities": ["rx"], "tx_enabled": False}
    if streaming and app_id is not None:
        msg["app_id"] = app_id
    if agent:
        msg["agent"] = agent
    if stats is not None:
        msg["stats"] = stats
    return msg


def status(state, app_id):
    return {"type": "status", "status": state, "app_id": app_id}


def error(app_id, message):
    return {"type": "error", "app_id": app_id, "message": message}


def stream_info(app_id, sample_rate, center_frequency, gain, sample_format, sample_index):
    return {"type": "stream_info", "app_id": app_id, "sample_rate": sample_rate,
            "center_frequency": center_frequency, "gain": gain, "sample_format": sample_format,
            "sample_index": sample_index}


def gap(app_id, sample_index, dropped_samples, reason):
    return {"type": "gap", "app_id": app_id, "sample_index": sample_index,
            "dropped_samples": dropped_samples, "reason": reason}


def ack(msg_id):
    return {"type": "ack", "id": msg_id}


def pong(msg_id=None):
    return {"type": "pong"} if msg_id is None else {"type": "pong", "id": msg_id}
