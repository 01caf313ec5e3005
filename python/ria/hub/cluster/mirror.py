"""A node's local copy of a key-value bucket, for reads that must not wait on the network (and that go on
while NATS is away): loaded when the node starts, kept current by a plain subscription to the bucket's
subjects, loaded again after every reconnect (what changed while NATS was away is then picked up).

A load reads the bucket's stream itself (the last message of each key) up to the stream's last sequence, which
the stream's own state gives first: it ends when that message has come, not when the client library guesses the
replay is over (nats-py's kv.keys() can end its replay before the first key has arrived and answer NoKeysError
for a bucket that has keys). A load that fails (JetStream not answering yet) is tried again with backoff for as
long as the node is connected; the mirror keeps what it had until a load succeeds."""

import asyncio
import json
import logging
import time

from nats.js.api import DeliverPolicy

KV_OPERATION = "KV-Operation"
READ_TIMEOUT_S = 5.0  # for each message of a load, and for its stream state
RETRY_FIRST_S, RETRY_MAX_S = 0.25, 5.0


class BucketMirror:
    def __init__(self, link, bucket, limit=100000, log=None):
        self._link, self.bucket, self._limit = link, bucket, limit
        self._prefix = f"$KV.{bucket}."
        self.entries = {}  # key -> value (decoded JSON)
        self.updated = {}  # key -> time.monotonic() of the last put seen
        self._sub = None
        self._changed = None  # keys that changed while a load was under way
        self._generation = 0  # a newer reload (or stop) ends an older one's retries
        self.log = log or logging.getLogger("ria_hub")

    async def start(self):
        """Subscribes and loads the bucket once (the exception of a failed load goes to the caller)."""
        self._sub = await self._link.nc.subscribe(self._prefix + ">", cb=self._on_message)
        self._generation += 1
        await self._load(self._generation)
        self._link.on_reconnect.append(self.reload)

    async def reload(self):
        """Loads the bucket again, retrying while JetStream does not answer and the node stays connected."""
        self._generation += 1
        generation, delay, tries = self._generation, RETRY_FIRST_S, 0
        while generation == self._generation and self._link.connected:
            tries += 1
            try:
                await self._load(generation)
                if tries > 1:
                    self.log.info("reloaded %s (%d entries) at try %d", self.bucket, len(self.entries), tries)
                return
            except Exception as e:  # noqa: BLE001 - NATS or JetStream not answering (yet)
                if tries == 1:
                    self.log.warning("could not reload %s: %s; trying again while NATS is up", self.bucket,
                                     type(e).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _load(self, generation):
        self._changed = set()
        try:
            fresh = await self._read()
            if generation != self._generation:
                return  # a newer load is under way and applies its own read
            for key in self._changed:  # what the subscription brought meanwhile is newer than what was read
                if key in self.entries:
                    fresh[key] = self.entries[key]
                else:
                    fresh.pop(key, None)
            now = time.monotonic()
            self.entries = fresh
            self.updated = {key: now for key in fresh}
        finally:
            if generation == self._generation:
                self._changed = None

    async def _read(self):
        """{key: value} of the bucket as its stream holds it now; raises when JetStream does not answer."""
        js = self._link.js
        state = (await asyncio.wait_for(js.stream_info(f"KV_{self.bucket}"), READ_TIMEOUT_S)).state
        fresh = {}
        if state.messages == 0:
            return fresh
        sub = await js.subscribe(self._prefix + ">", ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
        try:
            while True:  # the message at last_seq is the last of its key: it comes, or a newer one does
                msg = await sub.next_msg(timeout=READ_TIMEOUT_S)
                key = msg.subject[len(self._prefix):]
                if msg.headers and msg.headers.get(KV_OPERATION) in ("DEL", "PURGE"):
                    fresh.pop(key, None)
                elif key in fresh or len(fresh) < self._limit:
                    try:
                        fresh[key] = json.loads(msg.data)
                    except ValueError:
                        pass
                if msg.metadata.sequence.stream >= state.last_seq:
                    return fresh
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - NATS went away: the consumer is ephemeral
                pass

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
        self._generation += 1
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 - closing
                pass
