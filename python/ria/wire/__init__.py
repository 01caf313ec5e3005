"""The agent <-> hub wire contract (docs/protocol.md), shared by the agent side and the hub.

Its C++ mirror is lib/wire.{h,cc}; tests check that both put the same bytes on the wire.
"""
