"""ria.websocket_iq_sink: streams a flowgraph's samples to a hub over one WebSocket.

The block is C++ (lib/websocket_iq_sink_impl.cc on the agent transport); this function only fills
in what a GNU Radio user may leave empty: the hub URL and token from the file that
`ria_agent.py register` wrote, and the hardware names from SoapySDR.
"""

from .agent import config, hardware
from .ria_python import websocket_iq_sink_block


def websocket_iq_sink(url="", token="", input_type="complex", buffer_size=1024, sample_format="cf32",
                      overflow="drop", queue_seconds=0.5, sample_rate=0.0, heartbeat_interval=30.0, autostart=False, app_id="",
                      hardware_names="", ca_file="", insecure=False, token_in_query=False, agent_name="gr-ria",
                      bitrate=32000):
    """See grc/ria_websocket_iq_sink.block.yml for the user documentation."""
    url, token = config.hub_connection(url, token)
    if isinstance(hardware_names, str):  # GRC: comma separated, empty for the radios attached now
        names = [h.strip() for h in hardware_names.split(",") if h.strip()] or hardware.hardware_names()
    else:  # Python: exactly these, none included
        names = [str(h) for h in hardware_names]
    if not isinstance(buffer_size, int) or isinstance(buffer_size, bool):
        raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
    return websocket_iq_sink_block(url=url, token=token, input_type=input_type, buffer_size=buffer_size,
                                   sample_format=sample_format, overflow=overflow, queue_seconds=float(queue_seconds),
                                   sample_rate=float(sample_rate),
                                   heartbeat_interval=float(heartbeat_interval), autostart=bool(autostart),
                                   app_id=str(app_id), hardware_names=names,
                                   ca_file=ca_file, insecure=bool(insecure), token_in_query=bool(token_in_query),
                                   agent_name=agent_name, bitrate=int(bitrate))
