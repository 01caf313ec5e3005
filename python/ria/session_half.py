"""What the TX half and the audio half of ria.control_handler share: the hub's three session messages
(tx_start / tx_stop / tx_configure, each numbered `_seq` by the transport) dispatched to _start, _stop and
_configure, and tx_status replies to the hub."""

from .wire import tx


class SessionHalf:
    def __init__(self, handler):
        self.handler = handler
        self.session = None

    def _status(self, app_id, state, message=None, **extra):
        self.handler._hub(tx.tx_status(app_id, state, message, **extra))

    def on_hub(self, kind, msg):
        seq = msg.get("_seq")
        if kind == "tx_start":
            self._start(seq, msg.get("app_id"), msg.get("radio_config"))
        elif kind == "tx_stop":
            self._stop(msg.get("app_id"))
        elif kind == "tx_configure":
            self._configure(seq, msg.get("app_id"), msg.get("radio_config"))

    def _start(self, seq, app_id, rc):
        raise NotImplementedError

    def _stop(self, app_id):
        raise NotImplementedError

    def _configure(self, seq, app_id, rc):
        raise NotImplementedError
