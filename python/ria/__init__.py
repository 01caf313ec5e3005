"""gr-ria: GNU Radio blocks that turn a flowgraph into a remote agent of a hub."""

from .ria_python import aec, disconnect_classifier, read_verdict, sdr_sink, sdr_source
from .message_collector import message_collector
from .websocket_iq_sink import websocket_iq_sink
from .websocket_source import websocket_source
from .control_handler import control_handler
from .iq_agent import iq_agent
from .voice_agent import voice_agent

__all__ = ["aec", "sdr_source", "sdr_sink", "disconnect_classifier", "read_verdict", "message_collector",
           "websocket_iq_sink", "websocket_source", "control_handler", "iq_agent",
           "voice_agent"]
