"""Cluster mode of the hub: hub nodes that share registry, presence, control and data through NATS JetStream.

Without `--nats` none of this is imported: the hub is one process with its SQLite store.
"""
