"""ria.control_handler: the session logic between the hub, the radio source and the sink."""

import pmt
from gnuradio import gr

from . import pmt_json
from .wire import protocol

# radio_config key -> (status field of ria.sdr_source's "opened" message, unit)
RANGE_FIELDS = {"center_frequency": ("freq_range", "Hz"), "sample_rate": ("rate_range", "S/s"),
                "gain": ("gain_range", "dB"), "bandwidth": ("bandwidth_range", "Hz")}
# radio_config keys that are the sink's business, not the radio's
FRAME_KEYS = ("buffer_size", "sample_format")


PROTOCOL_KEY = {v: k for k, v in protocol.SOURCE_KEYS.items()}


class control_handler(gr.basic_block):
    """See grc/ria_control_handler.block.yml for the user documentation."""

    def __init__(self, default_device="driver=riasim"):
        gr.basic_block.__init__(self, name="ria_control_handler", in_sig=None, out_sig=None)
        self.default_device = default_device
        self.app_id = None
        self.session = "idle"  # idle, starting, streaming, stopping
        self.pending_config = {}
        self.ranges = {}
        self.frame = {}  # buffer_size / sample_format for the sink
        for port in ("ctrl", "status"):
            self.message_port_register_in(pmt.intern(port))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)
        self.set_msg_handler(pmt.intern("status"), self._on_status)
        for port in ("cmd", "sink", "to_hub"):
            self.message_port_register_out(pmt.intern(port))

    # ---------------------------------------------------------------- outputs

    def _send(self, port, value):
        self.message_port_pub(pmt.intern(port), pmt_json.to_pmt(value))

    def _hub(self, msg):
        self._send("to_hub", msg)

    def _error(self, message, app_id=None):
        self.logger.warn(message)
        self._hub(protocol.error(self.app_id if app_id is None else app_id, message))

    # ---------------------------------------------------------------- hub -> agent

    def _on_ctrl(self, msg):
        value = pmt_json.to_python(msg)
        kind = value.get("type") if isinstance(value, dict) else None
        handler = {"start": self._start, "stop": self._stop, "configure": self._configure}.get(kind)
        if kind in protocol.TX_TYPES:
            self._hub(protocol.tx_unsupported(value.get("app_id")))
        elif handler is None:
            self._error(f"control message of type {kind!r} is not handled by this agent", value.get("app_id")
                        if isinstance(value, dict) else None)
        else:
            rc = value.get("radio_config")
            if rc is None:  # absent, or {}: an empty JSON object crosses the message port as PMT nil
                rc = {}
            if not isinstance(rc, dict):
                self._error(f"{kind}: radio_config must be an object", value.get("app_id"))
                return
            handler(value.get("app_id"), rc)

    def _clean(self, rc, app_id):
        clean, errors = protocol.normalize_radio_config(rc)
        for message in errors:
            self._error(message, app_id)
        return clean

    def _start(self, app_id, rc):
        clean = self._clean({**self.pending_config, **rc}, app_id)
        self.pending_config = {}
        if self.session in ("starting", "streaming"):
            self._send("sink", {"stream": False})
        self.app_id = app_id
        self.session = "starting"
        self.frame = self._frame_settings(clean)
        cmd = self._source_cmd(clean)
        cmd["open"] = clean.get("device_args", self.default_device)
        self._send("cmd", cmd)

    def _stop(self, app_id, rc):
        if self.session == "idle":
            self._hub(protocol.status("idle", app_id))
            return
        self._send("sink", {"stream": False})
        self.session = "stopping"
        self._send("cmd", {"close": True})

    def _configure(self, app_id, rc):
        if self.session == "idle":
            self._clean(rc, app_id)  # report bad keys now ...
            self.pending_config.update(rc)  # ... and apply the rest at the next start
            return
        clean = self._clean(rc, app_id)
        for key in list(clean):
            if key in RANGE_FIELDS and not self._in_range(key, clean[key], app_id):
                del clean[key]
        sink = self._frame_settings(clean)
        if sink:
            self.frame.update(sink)
            self._send("sink", sink)
        cmd = self._source_cmd(clean)
        if "device_args" in clean:
            cmd["open"] = clean["device_args"]
        if cmd:
            self._send("cmd", cmd)

    def _in_range(self, key, value, app_id):
        field, unit = RANGE_FIELDS[key]
        span = self.ranges.get(field)
        if not span or (key == "bandwidth" and value == 0):
            return True
        lo, hi = span
        if lo <= value <= hi:
            return True
        self._error(f"{key} {value:g} {unit} is outside the device range {lo:g} to {hi:g} {unit}", app_id)
        return False

    @staticmethod
    def _frame_settings(clean):
        return {k: clean[k] for k in FRAME_KEYS if k in clean}

    @staticmethod
    def _source_cmd(clean):
        return {protocol.SOURCE_KEYS[k]: v for k, v in clean.items() if k in protocol.SOURCE_KEYS}

    # ---------------------------------------------------------------- radio -> hub

    def _on_status(self, msg):
        event = pmt_json.to_python(msg)
        if not isinstance(event, dict):
            return
        name = event.get("event")
        if name in ("opened", "reconnected"):
            self.ranges = {field: event[field] for field, _ in RANGE_FIELDS.values() if event.get(field)}
        if name == "streaming" and self.session == "starting":
            self.session = "streaming"
            self._send("sink", {"stream": True, "app_id": self.app_id, **self.frame,
                                "sample_rate": event["rate"], "center_frequency": event["freq"],
                                "gain": event["gain"]})
            self._hub(protocol.status("streaming", self.app_id))
        elif name == "settings" and self.session == "streaming":
            self._send("sink", {"gain": event["gain"]})
        elif name == "closed" and self.session == "stopping":
            self.session = "idle"
            self._hub(protocol.status("idle", self.app_id))
        elif name == "disconnected" and self.session != "idle":
            self._error(f"SDR disconnected: {event.get('reason', 'unknown reason')}")
        elif name == "stopped" and self.session != "idle":
            self._error(f"SDR stopped: {event.get('reason', '')}")
        elif name == "overflow":
            self._send("sink", {"sdr_overflows": event.get("total", 0)})
        elif name == "error" and self.session != "idle":
            message = event.get("message", "SDR error")
            key = PROTOCOL_KEY.get(event.get("key"))
            if key:  # speak the hub's names: "cmd freq: ..." -> "center_frequency: ..."
                message = message.replace(f"cmd {event['key']}:", f"{key}:")
            self._error(message)
