"""The TX half of ria.control_handler: a hub's TX session (docs/protocol.md §6) driven through
ria.websocket_source (port `tx_stream`) and ria.sdr_sink (port `tx_radio`).

The session's state changes only on what those blocks report: `armed` goes out once the radio is open
and the stream is armed, `done` once the radio has closed. Every refusal leaves nothing open."""

from . import radio_ranges
from .session_half import SessionHalf
from .wire import tx

# sdr_sink cmd key for each radio_config key that is the radio's business at once (not at a sample)
RADIO_KEYS = {"tx_sample_rate": "rate", "tx_center_frequency": "freq", "tx_gain": "gain",
              "tx_bandwidth": "bandwidth", "tx_antenna": "antenna"}
# websocket_source tag for each key applied at an exact sample
TAG_KEYS = {"tx_sample_rate": "tx_rate", "tx_center_frequency": "tx_freq", "tx_gain": "tx_gain"}
RANGE_FIELDS = {"tx_center_frequency": ("freq_range", "Hz"), "tx_sample_rate": ("rate_range", "S/s"),
                "tx_gain": ("gain_range", "dB")}


class TxSession:
    def __init__(self, seq, app_id, policy, device):
        self.seq = seq
        self.app_id = app_id
        self.policy = policy
        self.device = device
        self.state = "opening"  # opening, armed, transmitting, ending
        self.radio_errors = []
        self.settings = {}  # what the radio took: tx_sample_rate, tx_center_frequency, tx_gain
        self.ranges = {}
        self.final = None  # (state, message, extra) to send once the radio has closed


class TxControl(SessionHalf):
    def __init__(self, handler, interlocks):
        super().__init__(handler)
        self.interlocks = interlocks
        self.known_ranges = radio_ranges.Remembered()  # of the TX side, from every open

    # ---------------------------------------------------------------- outputs

    def _stream(self, cmd):
        self.handler._send("tx_stream", cmd)

    def _radio(self, cmd):
        self.handler._send("tx_radio", cmd)

    # ---------------------------------------------------------------- hub -> agent

    def _refuse_start(self, seq, app_id, message):
        self.handler.logger.warn(f"tx_start refused: {message}")
        self._status(app_id, "error", message)
        if seq is not None:
            self._stream({"refuse": seq})

    def _start(self, seq, app_id, rc):
        if not self.interlocks.enabled:
            return self._refuse_start(seq, app_id, "TX is disabled on this agent (its operator has not opted in)")
        if self.session is not None:
            return self._refuse_start(seq, app_id, f"TX is already active (app_id {self.session.app_id!r})")
        clean, errors = tx.normalize({} if rc is None else rc, "tx_start")
        errors += self.interlocks.errors(clean)
        device = clean.get("device_args", self.handler.default_device)
        if not errors:
            errors += self.handler._device_errors(device, (rc or {}).get("device", device))
        known = self.known_ranges.get(device)
        errors += [e for e in (range_error(k, v, known) for k, v in clean.items() if k in RANGE_FIELDS) if e]
        if errors:
            return self._refuse_start(seq, app_id, "; ".join(errors))
        self.session = TxSession(seq, app_id, clean.get("underrun_policy", "pause"), device)
        cmd = {RADIO_KEYS[k]: v for k, v in clean.items() if k in RADIO_KEYS}
        cmd.update(open=device, seq=seq)
        self._radio(cmd)

    def _stop(self, app_id):
        s = self.session
        if s is None:
            self._status(app_id, "done", "no TX session")
            return
        self._end(("done", None, {}))

    def _end(self, final):
        """Ends the session: the stream stops at once, the radio closes, `final` goes out when it has."""
        s = self.session
        if s.final is None:
            s.final = final
        s.state = "ending"
        self._stream({"stop": True})
        self._radio({"close": True})

    def _configure(self, seq, app_id, rc):
        s = self.session
        if s is None or s.state not in ("armed", "transmitting"):
            self.handler._error("tx_configure: no TX session is active", app_id)
            if seq is not None:
                self._stream({"configure": seq, "refused": True})
            return
        clean, errors = tx.normalize({} if rc is None else rc, "tx_configure")
        errors += self.interlocks.errors(clean)
        errors += [e for e in (range_error(k, v, s.ranges) for k, v in clean.items() if k in RANGE_FIELDS) if e]
        if errors:  # all or nothing
            for message in errors:
                self.handler._error(message, s.app_id)
            self._stream({"configure": seq, "refused": True})
            return
        tags = {TAG_KEYS[k]: v for k, v in clean.items() if k in TAG_KEYS}
        self._stream({"configure": seq, "tags": tags})
        now = {RADIO_KEYS[k]: v for k, v in clean.items() if k in ("tx_bandwidth", "tx_antenna")}
        if now:
            self._radio(now)

    # ---------------------------------------------------------------- radio (ria.sdr_sink) -> hub

    def on_radio(self, event):
        name = event.get("event")
        s = self.session
        if name == "opened" and isinstance(event.get("device"), str):
            self.known_ranges.note(event["device"], radio_ranges.from_event(event))
        if s is None:
            return
        if name == "opened" and event.get("seq") == s.seq and s.state == "opening":
            s.ranges = self.known_ranges.get(event.get("device"))
            s.settings = {"tx_sample_rate": event.get("rate"), "tx_center_frequency": event.get("freq"),
                          "tx_gain": event.get("gain")}
            self._stream({"arm": s.seq, "app_id": s.app_id, "sample_rate": event["rate"],
                          "center_frequency": event["freq"], "gain": event["gain"], "underrun_policy": s.policy})
        elif name == "error" and event.get("seq", s.seq) == s.seq and s.state == "opening":
            s.radio_errors.append(radio_message(event))
        elif name == "refused" and event.get("seq") == s.seq:
            message = "; ".join(s.radio_errors) or event.get("message") or "the radio refused the TX settings"
            self.session = None
            self._refuse_start(s.seq, s.app_id, message)
        elif name == "error" and s.state in ("armed", "transmitting"):
            if event.get("key") in ("bandwidth", "antenna"):
                self.handler._error(radio_message(event), s.app_id)  # a setting refused; TX goes on
            else:
                self._end(("error", radio_message(event), {}))
        elif name == "disconnected" and s.state != "ending":
            self._end(("error", f"SDR disconnected: {event.get('reason', 'unknown reason')}", {}))
        elif name == "limit" and s.state != "ending":
            self._end(("done", event.get("reason", "max duration reached"), {}))
        elif name == "tuned" and s.state in ("armed", "transmitting"):
            settings = {"tx_sample_rate": event.get("rate"), "tx_center_frequency": event.get("freq"),
                        "tx_gain": event.get("gain")}
            if settings == s.settings and not event.get("index"):
                return  # the session's first sample carries the settings `armed` reported
            s.settings = settings
            self.handler._hub(tx.tx_info(s.app_id, event.get("index", 0), event.get("rate"), event.get("freq"),
                                         event.get("gain")))
        elif name == "closed" and s.state == "ending":
            state, message, extra = s.final
            self.session = None
            self._status(s.app_id, state, message, **extra)

    # ---------------------------------------------------------------- stream (ria.websocket_source) -> hub

    def on_stream(self, event):
        name = event.get("event")
        s = self.session
        if s is None:
            return
        if name == "armed" and event.get("seq") == s.seq and s.state == "opening":
            s.state = "armed"
            self._status(s.app_id, "armed", queue_samples=event.get("queue_samples"), **s.settings)
        elif name == "stale" and event.get("seq") == s.seq and s.state == "opening":
            # A tx_stop (or another tx_start) came before the radio was open: the session ends unarmed.
            self._end(("done", "stopped before it was armed", {}))
        elif name == "transmitting" and s.state == "armed":
            s.state = "transmitting"
            self._status(s.app_id, "transmitting")
        elif name == "underrun" and s.state in ("armed", "transmitting"):
            s.final = ("underrun", None, {"samples_played": event.get("played", 0)})
            self._end(s.final)
        elif name == "ended" and event.get("reason") == "hub connection lost" and s.state in ("armed", "transmitting"):
            self._end(("error", "the connection to the hub was lost: TX stopped", {}))
        elif name == "ended" and event.get("active") and s.final and s.final[0] == "done":
            s.final = (s.final[0], s.final[1], {"samples_played": event.get("played", 0)})
        elif name == "configure_lost":
            self.handler._error("tx_configure came when no TX frames were taken for this session; not applied",
                                s.app_id)


def range_error(key, value, ranges):
    field, unit = RANGE_FIELDS[key]
    return radio_ranges.outside(key, value, ranges.get(field), unit, "the radio's TX range")


def radio_message(event):
    """A radio block's message in the hub's words ("cmd freq: ..." -> "tx_center_frequency: ...")."""
    message = event.get("message", "SDR error")
    key = {v: k for k, v in RADIO_KEYS.items()}.get(event.get("key"))
    if key:
        message = message.replace(f"cmd {event['key']}:", f"{key}:")
    return message

