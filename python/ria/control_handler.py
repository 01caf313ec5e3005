"""ria.control_handler: the session logic between the hub, the radio source and the sink."""

import pmt
from gnuradio import gr

from . import pmt_json, radio_ranges
from .tx_control import TxControl
from .voice_control import VoiceControl
from .wire import protocol, tx
from .wire.devices import is_simulator

# radio_config key -> (status field of ria.sdr_source's "opened" message, unit)
RANGE_FIELDS = {"center_frequency": ("freq_range", "Hz"), "sample_rate": ("rate_range", "S/s"),
                "gain": ("gain_range", "dB"), "bandwidth": ("bandwidth_range", "Hz")}
# radio_config keys that are the sink's business, not the radio's
FRAME_KEYS = ("buffer_size", "sample_format")
NO_RADIO_AT_ALL = "this agent has no radio (a voice agent: its microphone streams on its own)"
NO_RADIO = ("no radio attached: the start names no device and this agent has no default one (attach a radio, "
            "name a device in radio_config, or run ria_agent.py with --simulator to offer the simulated radio)")


PROTOCOL_KEY = {v: k for k, v in protocol.SOURCE_KEYS.items()}


class control_handler(gr.basic_block):
    """See grc/ria_control_handler.block.yml for the user documentation."""

    def __init__(self, default_device="driver=riasim", offer_simulator=True, allow_tx=False, tx_max_gain_db=None,
                 tx_max_duration_s=None, tx_allowed_freq_ranges=None, audio_in=False, audio_out=False, radio=True):
        gr.basic_block.__init__(self, name="ria_control_handler", in_sig=None, out_sig=None)
        self.voice = VoiceControl(self, speaker=audio_out, microphone=audio_in)
        self.radio = bool(radio)
        self.level_probes = {}  # name -> blocks.probe_signal_f of an RMS (ria.voice_agent's meters)
        self.tx = TxControl(self, tx.Interlocks(allow_tx, _optional(tx_max_gain_db),
                                                _optional(tx_max_duration_s) or None, tx_allowed_freq_ranges))
        self.default_device = default_device
        self.offer_simulator = bool(offer_simulator)
        self.app_id = None
        self.session = "idle"  # idle, starting, streaming, stopping
        self.replaced = None  # app_id of a streaming session that a start ended, until that start streams
        self.open_seq = 0  # of the last start's open command: the source's events about it carry it
        self.started = {}  # seq -> app_id of the recent starts, for the source's errors about their opens
        self.pending_config = {}
        self.ranges = {}  # of the device open now
        self.known_ranges = radio_ranges.Remembered()  # of every device that opened
        self.frame = {}  # buffer_size / sample_format for the sink
        for port in ("ctrl", "status", "tx_radio_status", "tx_stream_status", "speaker_status", "aec_status"):
            self.message_port_register_in(pmt.intern(port))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)
        self.set_msg_handler(pmt.intern("status"), self._on_status)
        self.set_msg_handler(pmt.intern("tx_radio_status"), self._on_tx_radio)
        self.set_msg_handler(pmt.intern("tx_stream_status"), self._on_tx_stream)
        self.set_msg_handler(pmt.intern("speaker_status"), self._on_speaker)
        self.set_msg_handler(pmt.intern("aec_status"), self._on_aec)
        for port in ("cmd", "sink", "to_hub", "tx_radio", "tx_stream", "speaker"):
            self.message_port_register_out(pmt.intern(port))

    def start(self):
        fields = {}
        if self.tx.interlocks.enabled:  # the heartbeat advertises TX and its interlocks
            fields = self.tx.interlocks.heartbeat_fields()
        if self.voice.capabilities() or not self.radio:  # ... and a voice agent's microphone and speaker
            radio = (["rx"] if self.radio else []) + (["tx"] if self.tx.interlocks.enabled else [])
            fields = dict(fields, capabilities=radio + self.voice.capabilities())
        if fields:
            self._send("sink", {"heartbeat": fields})
        return True

    # ---------------------------------------------------------------- outputs

    def _send(self, port, value):
        self.message_port_pub(pmt.intern(port), pmt_json.to_pmt(value))

    def _hub(self, msg):
        self._send("to_hub", msg)

    def _error(self, message, app_id=None):
        self.logger.warn(message)
        self._hub(protocol.error(self.app_id if app_id is None else app_id, message))

    def _unforeseen(self, what, e):
        """Catch-all at the message-port boundary: an exception out of a handler would end this block's thread
        (and with it every later command), so it becomes one log line and, where possible, an error to the hub."""
        message = f"{what} not handled: {type(e).__name__}: {e}"
        try:
            self._error(message)
        except Exception:  # the error itself cannot go out (an app_id PMT cannot hold): the log line is all
            self.logger.error(message)

    # ---------------------------------------------------------------- hub -> agent

    def _on_ctrl(self, msg):
        try:
            self._dispatch(pmt_json.to_python(msg))
        except Exception as e:
            self._unforeseen("control message", e)

    def _dispatch(self, value):
        kind = value.get("type") if isinstance(value, dict) else None
        handler = {"start": self._start, "stop": self._stop, "configure": self._configure}.get(kind)
        if kind in protocol.TX_TYPES and self.voice.owns(kind, value):
            self.voice.on_hub(kind, value)
        elif kind in protocol.TX_TYPES:
            self.tx.on_hub(kind, value)
        elif kind == "tx_data_available":
            pass  # advisory
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
        """All or nothing: any bad key refuses the start (an error per key) and leaves the session as it was."""
        if not self.radio:
            self._error(NO_RADIO_AT_ALL, app_id)
            return
        merged = {**self.pending_config, **rc}
        clean, errors = protocol.normalize_radio_config(merged)
        device = clean.get("device_args", self.default_device)
        if "device_args" in clean or not {"device", "identifier"} & merged.keys():  # (else: already an error)
            errors += self._device_errors(device, merged.get("device", device))
        errors += [e for e in (self._range_error(k, v, self.known_ranges.get(device)) for k, v in clean.items()
                               if k in RANGE_FIELDS) if e]
        if errors:
            for message in errors:
                self._error(message, app_id)
            return
        self.pending_config = {}
        if self.session == "streaming":
            self.replaced = self.app_id
        elif self.session != "starting":
            self.replaced = None
        if self.session in ("starting", "streaming"):
            self._send("sink", {"stream": False})
        self.app_id = app_id
        self.session = "starting"
        self.frame = self._frame_settings(clean)
        self.open_seq += 1
        self.started = {seq: app for seq, app in self.started.items() if seq > self.open_seq - 16}
        self.started[self.open_seq] = app_id
        cmd = self._source_cmd(clean)
        cmd.update(open=device, seq=self.open_seq)
        self._send("cmd", cmd)

    def _device_errors(self, device, named):
        if not device:
            return [NO_RADIO]
        if not self.offer_simulator and is_simulator(device):
            return [f"device {named!r} is the simulated radio, which this agent does not offer "
                    "(ria_agent.py run --simulator offers it)"]
        return []

    def _stop(self, app_id, rc):
        if self.session == "idle":
            self._hub(protocol.status("idle", app_id))
            return
        self._send("sink", {"stream": False})
        self.session = "stopping"
        self._send("cmd", {"close": True})

    def _configure(self, app_id, rc):
        """Key by key: a bad key gets an error naming it, the good ones still apply."""
        if self.session == "idle":
            self._clean(rc, app_id)  # report bad keys now ...
            # ... and remember the good ones for the next start
            self.pending_config.update({k: v for k, v in rc.items() if not protocol.normalize_radio_config({k: v})[1]})
            return
        clean = self._clean(rc, app_id)
        for key in list(clean):
            error = self._range_error(key, clean[key], self.ranges) if key in RANGE_FIELDS else None
            if error:
                self._error(error, app_id)
                del clean[key]
        refused = self._device_errors(clean["device_args"], rc.get("device", clean["device_args"])) \
            if "device_args" in clean else []
        for error in refused:
            self._error(error, app_id)
        if refused:
            del clean["device_args"]
        sink = self._frame_settings(clean)
        if sink:
            self.frame.update(sink)
            self._send("sink", sink)
        if "device_args" in clean:  # another radio, opened as it is; then this configure's keys, each on its own
            self._send("cmd", {"open": clean["device_args"]})
        cmd = self._source_cmd(clean)
        if cmd:
            self._send("cmd", cmd)

    @staticmethod
    def _range_error(key, value, ranges):
        """The error for a value outside the device's range (None when inside, or when the range is unknown)."""
        if key == "bandwidth" and value == 0:  # (0: the radio's default)
            return None
        field, unit = RANGE_FIELDS[key]
        return radio_ranges.outside(key, value, ranges.get(field), unit, "the device range")

    @staticmethod
    def _frame_settings(clean):
        return {k: clean[k] for k in FRAME_KEYS if k in clean}

    @staticmethod
    def _source_cmd(clean):
        return {protocol.SOURCE_KEYS[k]: v for k, v in clean.items() if k in protocol.SOURCE_KEYS}

    # ---------------------------------------------------------------- radio -> hub

    def _on_tx_radio(self, msg):  # (GNU Radio's Python gateway wants named methods as handlers)
        self._on_tx_event(self.tx.on_radio, msg)

    def _on_tx_stream(self, msg):
        self._on_tx_event(self.tx.on_stream, msg)

    def _on_speaker(self, msg):
        self._on_tx_event(self.voice.on_stream, msg)

    def _on_aec(self, msg):
        try:
            event = pmt_json.to_python(msg)
            if isinstance(event, dict):
                self.voice.on_aec(event)
                self.voice.on_levels({name: probe.level() for name, probe in self.level_probes.items()})
                self._send("sink", {"heartbeat": {"stats": self.voice.stats()}})  # goes with the next heartbeat
        except Exception as e:
            self._unforeseen("aec status", e)

    def _on_tx_event(self, handle, msg):
        try:
            event = pmt_json.to_python(msg)
            if isinstance(event, dict):
                handle(event)
        except Exception as e:
            self._unforeseen("TX status", e)

    def _on_status(self, msg):
        try:
            event = pmt_json.to_python(msg)
            if isinstance(event, dict):
                self._on_event(event.get("event"), event)
        except Exception as e:
            self._unforeseen("radio status", e)

    def _on_event(self, name, event):
        if name in ("streaming", "refused") and event.get("seq", self.open_seq) != self.open_seq:
            return  # about the open of a start that a later start replaced
        if name in ("opened", "reconnected"):
            self.ranges = radio_ranges.from_event(event)
            if isinstance(event.get("device"), str):
                self.known_ranges.note(event["device"], self.ranges)
        if name == "streaming" and self.session == "starting":
            self.session = "streaming"
            self.replaced = None
            # The source's values are what the radio took (read back); later changes come as stream tags.
            self._send("sink", {"stream": True, "app_id": self.app_id, **self.frame,
                                "sample_rate": event["rate"], "center_frequency": event["freq"],
                                "gain": event["gain"]})
            self._hub(protocol.status("streaming", self.app_id))
        elif name == "refused" and self.session == "starting":
            # The radio refused a value of the start (each refusal came as an error) and is closed again.
            self.session = "idle"
            if self.replaced is not None:  # the session the start ended is over too
                self._hub(protocol.status("idle", self.replaced))
                self.replaced = None
        elif name == "reconnected" and self.session == "streaming":
            self._hub(protocol.status("streaming", self.app_id))  # the lost radio is back: the hub clears its error
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
            self._error(message, self.started.get(event.get("seq")))  # (about a start's open: that start's)


def _optional(value):
    """A cap as a number; None or an empty string (GRC's empty field) for "no cap"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"TX cap {value!r} must be a number (or empty for no cap)") from None
    return value
