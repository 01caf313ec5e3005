"""A node's local copy of a key-value bucket, for reads that must not wait on the network (and that go on
while NATS is away): loaded when the node starts, kept current by a plain subscription to the bucket's
subjects, loaded again after every reconnect (what changed while NATS was away is then picked up)."""

import json
import logging
import time

import nats.js.errors

KV_OPERATION = "KV-Operation"


class BucketMirror:
    def __init__(self, link, bucket, limit=100000, log=None):
        self._link, self.bucket, self._limit = link, bucket, limit
        self._prefix = f"$KV.{bucket}."
        self.entries = {}  # key -> value (decoded JSON)
        self.updated = {}  # key -> time.monotonic() of the last put seen
        self._sub = None
        self._changed = None  # keys that changed while a reload was under way
        self.log = log or logging.getLogger("ria_hub")

    async def start(self):
        self._sub = await self._link.nc.subscribe(self._prefix + ">", cb=self._on_message)
        await self.reload()
        self._link.on_reconnect.append(self.reload)

    async def reload(self):
        self._changed = set()
        try:
            await self._reload()
        finally:
            self._changed = None

    async def _reload(self):
        kv = self._link.kv[self.bucket]
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            keys = []
        except Exception as e:  # noqa: BLE001 - NATS went away again: the next reconnect reloads
            self.log.warning("could not reload %s: %s", self.bucket, type(e).__name__)
            return
        fresh = {}
        for key in keys[:self._limit]:
            try:
                fresh[key] = json.loads((await kv.get(key)).value)
            except nats.js.errors.KeyNotFoundError:
                continue
            except Exception:  # noqa: BLE001 - as above
                return
        for key in self._changed:  # what the subscription brought meanwhile is newer than what was read
            if key in self.entries:
                fresh[key] = self.entries[key]
            else:
                fresh.pop(key, None)
        now = time.monotonic()
        self.entries = fresh
        self.updated = {key: now for key in fresh}

    async def _on_message(self, msg):
        key = msg.subject[len(self._prefix):]
        if self._changed is not None and len(self._changed) < self._limit:
            self._changed.add(key)
        if msg.headers and msg.headers.get(KV_OPERATION) in ("DEL", "PURGE"):
            self.entries.pop(key, None)
            self.updated.pop(key, None)
            return
        if key not in self.entries and len(self.entries) >= self._limit:
            return
        try:
            self.entries[key] = json.loads(msg.data)
        except ValueError:
            return
        self.updated[key] = time.monotonic()

    def get(self, key, max_age=None):
        if max_age is not None and time.monotonic() - self.updated.get(key, -1e18) > max_age:
            return None
        return self.entries.get(key)

    async def stop(self):
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 - closing
                pass
