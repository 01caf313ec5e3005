"""gr-ria: GNU Radio blocks that turn a flowgraph into a remote agent of a hub."""

from .ria_python import disconnect_classifier, read_verdict, sdr_source

__all__ = ["sdr_source", "disconnect_classifier", "read_verdict"]
