"""gr-ria: GNU Radio blocks that turn a flowgraph into a remote agent of a hub."""

from .ria_python import disconnect_classifier, read_verdict, sdr_source
from .message_collector import message_collector

__all__ = ["sdr_source", "disconnect_classifier", "read_verdict", "message_collector"]
