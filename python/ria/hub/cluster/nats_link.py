"""A hub node's connection to NATS: it reconnects by itself for as long as the node runs, and says whether it
is up (for /health) and when it came back (so that presence and the seen-times catch up)."""

import asyncio
import logging
import time

import nats
from nats.js.api import KeyValueConfig, StorageType

# The registry buckets keep every entry; the presence bucket forgets what its node stopped refreshing.
REGISTRY_BUCKETS = ("ria_keys", "ria_key_digests", "ria_agents", "ria_tokens", "ria_seen", "ria_config", "ria_access")
PRESENCE_BUCKET = "ria_presence"
PRESENCE_TTL_S = 15.0
CONNECT_TIMEOUT_S = 5
MAX_VALUE_BYTES = 64 * 1024


class NatsUnavailable(Exception):
    """NATS could not answer (down, or did not answer in time); str() says what the node was doing."""


def check_url(text):
    """'nats://host:4222' (or several, comma separated) -> list of URLs; ValueError names a bad one."""
    urls = [u.strip() for u in (text or "").split(",") if u.strip()]
    if not urls:
        raise ValueError("--nats needs a URL such as nats://127.0.0.1:4222")
    for url in urls:
        if not url.startswith(("nats://", "tls://")) or len(url) > 300 or not url.isprintable():
            raise ValueError(f"--nats {url!r} is not a nats:// or tls:// URL")
    return urls


class NatsLink:
    def __init__(self, urls, name, log=None):
        self.urls, self.name = list(urls), name
        self.log = log or logging.getLogger("ria_hub")
        self.nc = self.js = None
        self.kv = {}
        self.disconnected_at = None  # wall clock, while NATS is away
        self.outages = 0
        self.on_reconnect = []  # coroutine functions, called after each reconnect

    async def connect(self):
        """Connects (NatsUnavailable when no server answers) and opens the buckets, making them if needed."""
        try:  # nats-py retries a first connection for ever when told to reconnect for ever: bounded here
            self.nc = await asyncio.wait_for(nats.connect(
                self.urls, name=self.name, connect_timeout=CONNECT_TIMEOUT_S, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, ping_interval=5, max_outstanding_pings=2, allow_reconnect=True,
                disconnected_cb=self._disconnected, reconnected_cb=self._reconnected, error_cb=self._error),
                CONNECT_TIMEOUT_S + 1)
        except Exception as e:  # noqa: BLE001 - nats-py raises its own, OSError, or a timeout
            why = f"no server answered within {CONNECT_TIMEOUT_S + 1} s" if isinstance(e, asyncio.TimeoutError) \
                else str(e) or type(e).__name__
            raise NatsUnavailable(f"cannot connect to NATS at {', '.join(self.urls)}: {why}") from None
        self.js = self.nc.jetstream(timeout=5)
        try:
            for bucket in REGISTRY_BUCKETS:
                self.kv[bucket] = await self.js.create_key_value(KeyValueConfig(
                    bucket=bucket, history=1, storage=StorageType.FILE, max_value_size=MAX_VALUE_BYTES))
            self.kv[PRESENCE_BUCKET] = await self.js.create_key_value(KeyValueConfig(
                bucket=PRESENCE_BUCKET, history=1, ttl=PRESENCE_TTL_S, storage=StorageType.FILE,
                max_value_size=MAX_VALUE_BYTES))
        except Exception as e:  # noqa: BLE001 - JetStream off, or out of room
            await self.close()
            raise NatsUnavailable(f"NATS at {', '.join(self.urls)} did not make the hub's key-value buckets (is "
                                  f"JetStream on? nats-server -js): {str(e) or type(e).__name__}") from None

    @property
    def connected(self):
        return self.nc is not None and self.nc.is_connected

    def state(self):
        if self.connected:
            return {"nats": "connected", "outages": self.outages}
        since = self.disconnected_at or time.time()
        return {"nats": "unreachable", "since": since, "outages": self.outages}

    async def _disconnected(self):
        if self.disconnected_at is None:
            self.disconnected_at = time.time()
            self.outages += 1
            self.log.warning("NATS is unreachable: this node keeps serving the agents it holds")

    async def _reconnected(self):
        self.disconnected_at = None
        self.log.info("NATS is back: catching up")
        for hook in list(self.on_reconnect):
            asyncio.get_running_loop().create_task(hook())

    async def _error(self, e):
        self.log.debug("NATS: %s", e)

    async def close(self):
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), 2)
            except Exception:  # noqa: BLE001 - closing anyway
                await self.nc.close()
