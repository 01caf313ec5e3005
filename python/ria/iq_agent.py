"""ria.iq_agent: source, control handler and WebSocket sink wired for the one-drag case."""

import math

from gnuradio import gr

from .agent import config, hardware
from .control_handler import control_handler
from .ria_python import sdr_sink, sdr_source
from .websocket_iq_sink import websocket_iq_sink
from .websocket_source import websocket_source
from .wire import tx


class iq_agent(gr.hier_block2):
    """A whole remote agent: the hub opens, tunes and streams the radio. See the GRC documentation."""

    def __init__(self, url="", token="", device="driver=riasim", buffer_size=1024, sample_format="cf32",
                 overflow="drop", queue_seconds=0.5, heartbeat_interval=30.0, hardware_names="", ca_file="",
                 insecure=False, on_disconnect="reconnect", reopen_interval=1.0, disconnect_timeout=2.0,
                 agent_name="gr-ria", offer_simulator=True, allow_tx=False, tx_max_gain_db=None,
                 tx_max_duration_s=None, tx_allowed_freq_ranges=None):
        gr.hier_block2.__init__(self, "ria_iq_agent", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        # Closed until the hub says start; the start message names the device.
        self.source = sdr_source("", 0, 2.048e6, 100e6, 30.0, False, 0.0, "", on_disconnect,
                                 reopen_interval, disconnect_timeout)
        if hardware_names in ("", None) or device in ("", None):
            found = hardware.detect(simulator=offer_simulator)  # real radios first; the simulator if offered
            if hardware_names in ("", None):
                hardware_names = hardware.names(found)
            if device in ("", None):  # the first radio advertised, if any
                device = hardware.device_args(found[0]) if found else ""
        self.handler = control_handler(default_device=device, offer_simulator=offer_simulator, allow_tx=allow_tx,
                                       tx_max_gain_db=tx_max_gain_db, tx_max_duration_s=tx_max_duration_s,
                                       tx_allowed_freq_ranges=tx_allowed_freq_ranges)
        tx_interlocks = self.handler.tx.interlocks
        url, token = config.hub_connection(url, token)  # once: the TX side rides on the same connection
        self.sink = websocket_iq_sink(url=url, token=token, buffer_size=buffer_size, sample_format=sample_format,
                                      overflow=overflow, queue_seconds=queue_seconds,
                                      heartbeat_interval=heartbeat_interval, hardware_names=hardware_names,
                                      ca_file=ca_file, insecure=insecure,
                                      agent_name=agent_name)
        self.connect(self.source, self.sink)
        self.msg_connect(self.sink, "ctrl", self.handler, "ctrl")
        self.msg_connect(self.source, "status", self.handler, "status")
        self.msg_connect(self.handler, "cmd", self.source, "cmd")
        self.msg_connect(self.handler, "sink", self.sink, "cmd")
        self.msg_connect(self.handler, "to_hub", self.sink, "to_hub")
        if tx_interlocks.enabled:
            self._add_transmitter(url, token, heartbeat_interval, ca_file,
                                  insecure, tx_interlocks, on_disconnect, reopen_interval, disconnect_timeout)

    def _add_transmitter(self, url, token, heartbeat_interval, ca_file, insecure, interlocks, on_disconnect,
                         reopen_interval, disconnect_timeout):
        """The hub -> radio path, on the sink's connection: websocket_source -> sdr_sink, driven by the handler."""
        self.tx_stream = websocket_source(url=url, token=token, output_type="complex",
                                          heartbeat_interval=heartbeat_interval, ca_file=ca_file, insecure=insecure)
        self.tx_radio = sdr_sink(device="", allow_tx=True,
                                 max_gain_db=math.inf if interlocks.max_gain_db is None else interlocks.max_gain_db,
                                 max_duration_s=interlocks.max_duration_s or 0.0,
                                 allowed_freq_ranges=tx.ranges_arg(interlocks.allowed_freq_ranges),
                                 burst_tags="required", on_disconnect=on_disconnect, reopen_interval=reopen_interval,
                                 disconnect_timeout=disconnect_timeout)
        self.connect(self.tx_stream, self.tx_radio)
        self.msg_connect(self.handler, "tx_stream", self.tx_stream, "cmd")
        self.msg_connect(self.handler, "tx_radio", self.tx_radio, "cmd")
        self.msg_connect(self.tx_stream, "status", self.handler, "tx_stream_status")
        self.msg_connect(self.tx_radio, "status", self.handler, "tx_radio_status")
