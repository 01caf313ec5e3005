"""ria.websocket_source: what a hub sends in a TX session, as a stream in the flowgraph.

The block is C++ (lib/websocket_source_impl.cc on the agent transport); this function fills in the hub
URL and token from the file that `ria_agent.py register` wrote when they are left empty, exactly as
ria.websocket_iq_sink does, so the two share the agent's one connection.
"""

from .agent import config
from .ria_python import websocket_source_block


def websocket_source(url="", token="", output_type="complex", queue_seconds=0.5, sample_rate=0.0,
                     underrun_timeout=0.1, heartbeat_interval=30.0, ca_file="", insecure=False, token_in_query=False,
                     idle_output="auto"):
    """See grc/ria_websocket_source.block.yml for the user documentation."""
    url, token = config.hub_connection(url, token)
    return websocket_source_block(url=url, token=token, output_type=output_type, queue_seconds=float(queue_seconds),
                                  sample_rate=float(sample_rate), underrun_timeout=float(underrun_timeout),
                                  heartbeat_interval=float(heartbeat_interval), ca_file=ca_file,
                                  insecure=bool(insecure), token_in_query=bool(token_in_query),
                                  idle_output=str(idle_output))
