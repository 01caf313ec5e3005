"""TX sessions of the protocol (docs/protocol.md §6): the radio_config of tx_start / tx_configure, the
operator's interlocks, and the agent's tx_* messages. Used by the agent (to decide) and by the hub (to
build requests and to read the agent's answers)."""

from . import devices
from .protocol import finite_number

REQUIRED_KEYS = ("tx_sample_rate", "tx_center_frequency", "tx_gain")
UNDERRUN_POLICIES = ("pause", "zero", "repeat")
GAIN_MODES = ("manual",)
START_KEYS = ("device", "identifier", "buffer_size", "tx_sample_rate", "tx_center_frequency", "tx_gain",
              "tx_channel", "tx_gain_mode", "underrun_policy", "tx_bandwidth", "tx_antenna")
CONFIGURE_KEYS = ("tx_sample_rate", "tx_center_frequency", "tx_gain", "tx_bandwidth", "tx_antenna")
STATES = ("armed", "transmitting", "underrun", "done", "error")
BYTES_PER_SAMPLE = 8  # interleaved float32 I/Q
MAX_FRAME_BYTES = 1 << 20
MAX_RANGES = 64


def normalize(rc, kind):
    """Checks the types and names of a tx_start (kind "tx_start") or tx_configure radio_config.

    Returns (clean, errors); `device`/`identifier` become SoapySDR args under `device_args`. A tx_start
    missing a required key gets an error naming it."""
    known = START_KEYS if kind == "tx_start" else CONFIGURE_KEYS
    clean, errors = {}, []
    if not isinstance(rc, dict):
        return {}, [f"{kind}: radio_config must be an object, got {type(rc).__name__}"]
    for key, value in rc.items():
        try:
            if key not in known:
                raise ValueError(f"{kind}: unknown radio_config key {key!r} (known: {', '.join(known)})")
            if key in ("tx_sample_rate", "tx_center_frequency", "tx_bandwidth"):
                v = finite_number(key, value)
                if v < 0 or (key == "tx_sample_rate" and v == 0):
                    raise ValueError(f"{key} must be {'> 0' if key == 'tx_sample_rate' else '>= 0'}, got {value!r}")
                clean[key] = v
            elif key == "tx_gain":
                clean[key] = finite_number(key, value)
            elif key in ("tx_channel", "buffer_size"):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= (1 << 22):
                    raise ValueError(f"{key} must be a small non-negative integer, got {value!r}")
                clean[key] = value
            elif key == "underrun_policy":
                if value not in UNDERRUN_POLICIES:
                    raise ValueError(f"underrun_policy must be one of {', '.join(UNDERRUN_POLICIES)}, got {value!r}")
                clean[key] = value
            elif key == "tx_gain_mode":
                if value not in GAIN_MODES:
                    raise ValueError(f"tx_gain_mode must be one of {', '.join(GAIN_MODES)}, got {value!r}")
                clean[key] = value
            elif key == "tx_antenna":
                if not isinstance(value, str):
                    raise ValueError(f"tx_antenna must be a string, got {value!r}")
                clean[key] = value
            else:  # device, identifier
                clean[key] = value
        except ValueError as e:
            errors.append(str(e))
    if kind == "tx_start":
        errors += [f"tx_start: radio_config.{key} is required" for key in REQUIRED_KEYS if key not in rc]
    devices.args_from_config(clean, errors)
    return clean, errors


def parse_ranges(value):
    """Allowed TX ranges from a config file ([[lo, hi], ...]) or a flag ("433.05e6:434.79e6,2.4e9:2.5e9").
    None or "" means no limit. Raises ValueError naming what is wrong."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            bounds = part.strip().split(":")
            if len(bounds) != 2:
                raise ValueError(f"TX frequency range {part.strip()!r} must be LO:HI in Hz")
            try:
                pairs.append([float(bounds[0]), float(bounds[1])])
            except ValueError:
                raise ValueError(f"TX frequency range {part.strip()!r} must be two numbers, LO:HI in Hz") from None
        value = pairs
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_RANGES:
        raise ValueError(f"TX frequency ranges must be a list of 1 to {MAX_RANGES} [lo, hi] pairs, got {value!r}")
    ranges = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"TX frequency range {pair!r} must be a [lo, hi] pair in Hz")
        lo, hi = (finite_number("TX frequency range bound", v) for v in pair)
        if not 0 <= lo <= hi:
            raise ValueError(f"TX frequency range [{lo:g}, {hi:g}] must have 0 <= lo <= hi")
        ranges.append([lo, hi])
    return ranges


def format_ranges(ranges):
    return ", ".join(f"{lo:g}–{hi:g}" for lo, hi in ranges)


class Interlocks:
    """What the operator allows; checked by the agent whatever the hub sends."""

    def __init__(self, enabled=False, max_gain_db=None, max_duration_s=None, allowed_freq_ranges=None):
        self.enabled = bool(enabled)
        self.max_gain_db = None if max_gain_db is None else finite_number("tx_max_gain_db", max_gain_db)
        self.max_duration_s = None if max_duration_s is None else finite_number("tx_max_duration_s", max_duration_s)
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError(f"tx_max_duration_s must be > 0, got {max_duration_s!r}")
        self.allowed_freq_ranges = parse_ranges(allowed_freq_ranges)

    def errors(self, clean):
        """The refusals for the TX settings in `clean` (normalized keys)."""
        errors = []
        gain = clean.get("tx_gain")
        if gain is not None and self.max_gain_db is not None and gain > self.max_gain_db:
            errors.append(f"tx_gain {gain:g} dB is above this agent's cap of {self.max_gain_db:g} dB")
        freq = clean.get("tx_center_frequency")
        if freq is not None and self.allowed_freq_ranges is not None and \
                not any(lo <= freq <= hi for lo, hi in self.allowed_freq_ranges):
            errors.append(f"tx_center_frequency {freq:g} Hz is outside this agent's allowed ranges "
                          f"{format_ranges(self.allowed_freq_ranges)} Hz")
        return errors

    def heartbeat_fields(self):
        if not self.enabled:
            return {"capabilities": ["rx"], "tx_enabled": False}
        return {"capabilities": ["rx", "tx"], "tx_enabled": True, "tx_max_gain_db": self.max_gain_db,
                "tx_max_duration_s": self.max_duration_s, "tx_allowed_freq_ranges": self.allowed_freq_ranges}


def describe(interlocks):
    """The operator's caps in one line, for a log."""
    caps = [f"gain <= {interlocks.max_gain_db:g} dB" if interlocks.max_gain_db is not None else "any gain",
            f"at most {interlocks.max_duration_s:g} s a session" if interlocks.max_duration_s is not None
            else "no time limit",
            f"in {format_ranges(interlocks.allowed_freq_ranges)} Hz" if interlocks.allowed_freq_ranges
            else "at any frequency"]
    return ", ".join(caps)


def ranges_arg(ranges):
    """Ranges as ria.sdr_sink's allowed_freq_ranges argument ("lo:hi,lo:hi"; "" for no limit)."""
    return ",".join(f"{lo!r}:{hi!r}" for lo, hi in ranges or ())


# ---- agent -> hub

def tx_status(app_id, state, message=None, **extra):
    msg = {"type": "tx_status", "app_id": app_id, "state": state}
    if message is not None:
        msg["message"] = message
    msg.update(extra)
    return msg


def tx_info(app_id, sample_index, sample_rate, center_frequency, gain):
    return {"type": "tx_info", "app_id": app_id, "sample_index": sample_index, "tx_sample_rate": sample_rate,
            "tx_center_frequency": center_frequency, "tx_gain": gain}


def tx_progress(app_id, received, played, queued):
    return {"type": "tx_progress", "app_id": app_id, "received": received, "played": played, "queued": queued}


# ---- hub -> agent

def tx_start(app_id, radio_config):
    return {"type": "tx_start", "app_id": app_id, "radio_config": dict(radio_config)}


def tx_configure(app_id, radio_config):
    return {"type": "tx_configure", "app_id": app_id, "radio_config": dict(radio_config)}


def tx_stop(app_id):
    return {"type": "tx_stop", "app_id": app_id}


# ---- reading the agent's side (what a hub needs; ValueError names the field)

COUNT_LIMIT = 1 << 63  # sample counts and indexes are JSON integers below this


def _count(msg, key):
    value = msg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < COUNT_LIMIT:
        raise ValueError(f"{msg.get('type', 'message')}.{key} must be a non-negative integer, got {value!r}")
    return value


def _app_id(msg):
    value = msg.get("app_id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{msg.get('type', 'message')}.app_id must be text or an integer, got {value!r}")
    return value


def interlocks_from_heartbeat(msg):
    """The interlocks an agent advertises (§6) as Interlocks: TX is enabled only with `tx_enabled: true` and
    "tx" in `capabilities`; an absent or null cap means none. Raises ValueError naming a field it cannot read."""
    enabled = msg.get("tx_enabled", False)
    if not isinstance(enabled, bool):
        raise ValueError(f"tx_enabled must be true or false, got {enabled!r}")
    capabilities = msg.get("capabilities", [])
    if not isinstance(capabilities, list):
        raise ValueError(f"capabilities must be a list, got {capabilities!r}")
    if not (enabled and "tx" in capabilities):
        return Interlocks(False)
    ranges = msg.get("tx_allowed_freq_ranges")
    if isinstance(ranges, str):  # the flag syntax is the operator's, not the wire's
        raise ValueError("tx_allowed_freq_ranges must be a list of [lo, hi] pairs in Hz")
    try:
        ranges = parse_ranges(ranges or None)  # [] is no limit, as the RIA agent reads it
    except ValueError as e:
        raise ValueError(f"tx_allowed_freq_ranges: {e}") from None
    return Interlocks(True, msg.get("tx_max_gain_db"), msg.get("tx_max_duration_s"), ranges)


def duration_errors(interlocks, seconds):
    """The refusal of a transmission that would last `seconds` (None: unknown) under `interlocks`."""
    cap = interlocks.max_duration_s
    if seconds is None or cap is None or seconds <= cap:
        return []
    return [f"the source lasts {seconds:g} s, above this agent's tx_max_duration_s of {cap:g} s"]


def parse_tx_status(msg):
    """A tx_status from an agent: {app_id, state, message?, and the (ext) numbers it carries}."""
    state = msg.get("state")
    if state not in STATES:
        raise ValueError(f"tx_status.state must be one of {', '.join(STATES)}, got {state!r}")
    out = {"app_id": _app_id(msg), "state": state}
    if msg.get("message") is not None:
        if not isinstance(msg["message"], str):
            raise ValueError(f"tx_status.message must be text, got {msg['message']!r}")
        out["message"] = msg["message"]
    for key in ("queue_samples", "samples_played"):
        if msg.get(key) is not None:
            out[key] = _count(msg, key)
    for key in ("tx_sample_rate", "tx_center_frequency", "tx_gain"):
        if msg.get(key) is not None:
            out[key] = finite_number(f"tx_status.{key}", msg[key])
    return out


def parse_tx_progress(msg):
    return {"app_id": _app_id(msg), **{key: _count(msg, key) for key in ("received", "played", "queued")}}


def parse_tx_info(msg):
    out = {"app_id": _app_id(msg), "sample_index": _count(msg, "sample_index")}
    for key in ("tx_sample_rate", "tx_center_frequency", "tx_gain"):
        out[key] = None if msg.get(key) is None else finite_number(f"tx_info.{key}", msg[key])
    return out
