"""A message sink that hands PMT messages to Python code waiting in another thread."""

import queue
import time

import pmt
from gnuradio import gr


class message_collector(gr.basic_block):
    """Collects every message on port `in`, converted with pmt.to_python.

    `wait_for(predicate, timeout)` blocks until a matching message arrives, so tests and
    apps wait on the event itself instead of sleeping.
    """

    def __init__(self):
        gr.basic_block.__init__(self, name="ria_message_collector", in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._handle)
        self._queue = queue.Queue()
        self.messages = []

    def _handle(self, msg):
        value = pmt.to_python(msg)
        self.messages.append(value)
        self._queue.put(value)

    def wait_for(self, predicate, timeout):
        """The first not yet consumed message for which predicate(msg) is true, or None at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                msg = self._queue.get(timeout=remaining)
            except queue.Empty:
                return None
            if predicate(msg):
                return msg

    def events(self, name=None):
        """Messages seen so far whose 'event' field is name (all dict messages when None)."""
        return [m for m in self.messages if isinstance(m, dict) and (name is None or m.get("event") == name)]
