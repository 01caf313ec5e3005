"""The registry of a hub cluster in JetStream key-value buckets: the same methods as store.Store, as coroutines.

Buckets (nats_link.REGISTRY_BUCKETS): ria_keys (key_id -> key record), ria_key_digests (digest -> key_id),
ria_agents (agent_id -> agent record), ria_tokens (token digest -> agent_id), ria_seen (agent_id -> last seen
and hardware), ria_config (the cluster's admin token), ria_access (token_id -> a page/API token with a role,
roles.py). Secrets are stored as digests only, as in SQLite.

Writes go to NATS and wait for it; reads that the API makes synchronously (agent_exists, count_agents,
list_agents, list_keys, access_for_token, list_access_tokens) come from the node's mirrors of the buckets (mirror.py), which also let the node take its
agents back while NATS is away.

A use of a key is taken by compare-and-set on the key record's revision: of any number of registrations that
race for the last use, on any nodes, exactly one update lands; the others read the record again and find it
consumed.
"""

import asyncio
import json
import random
import time

import nats.errors
import nats.js.errors

from .. import credentials, roles
from ..store import RegistrationRefused, check_key_settings, check_label, key_state
from .mirror import BucketMirror
from .nats_link import NatsUnavailable

MAX_CAS_ROUNDS = 500  # a reusable key under heavy contention; each round is one read and one write
MIRRORED = ("ria_keys", "ria_agents", "ria_tokens", "ria_seen", "ria_access")

_FAILURES = (nats.errors.TimeoutError, nats.errors.ConnectionClosedError, nats.errors.NoRespondersError,
             nats.errors.OutboundBufferLimitError, nats.js.errors.ServiceUnavailableError, OSError)


def _dumps(record):
    return json.dumps(record, separators=(",", ":")).encode()


class KvStore:
    def __init__(self, link):
        self._link = link
        self._pending = set()  # seen-time writes under way
        self.mirrors = {bucket: BucketMirror(link, bucket) for bucket in MIRRORED}

    async def start(self):
        for mirror in self.mirrors.values():
            await mirror.start()

    def _kv(self, bucket, doing):
        if not self._link.connected:
            raise NatsUnavailable(f"NATS is unreachable; cannot {doing} now")
        return self._link.kv[bucket]

    async def _get(self, bucket, key, doing):
        """(record, revision), or (None, 0) when there is no such key."""
        kv = self._kv(bucket, doing)
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None, 0
        except _FAILURES as e:
            raise NatsUnavailable(f"NATS did not answer; cannot {doing} now ({type(e).__name__})") from None
        return json.loads(entry.value), entry.revision

    async def _call(self, doing, coroutine):
        try:
            return await coroutine
        except _FAILURES as e:
            raise NatsUnavailable(f"NATS did not answer; cannot {doing} now ({type(e).__name__})") from None

    async def close(self):
        if self._pending:
            await asyncio.wait(self._pending, timeout=2)
        for mirror in self.mirrors.values():
            await mirror.stop()

    # ---------------------------------------------------------------- registration keys

    async def create_key(self, uses=1, ttl_s=None, label="", now=None):
        check_key_settings(uses, ttl_s, label)
        now = time.time() if now is None else now
        key = credentials.new_secret(credentials.KEY_PREFIX)
        key_id = credentials.new_id("key-")
        digest = credentials.digest(key)
        record = {"key_id": key_id, "digest": digest, "label": label, "max_uses": uses, "uses": 0, "created_at": now,
                  "expires_at": None if ttl_s is None else now + ttl_s, "revoked_at": None}
        doing = "create a registration key"
        await self._call(doing, self._kv("ria_keys", doing).create(key_id, _dumps(record)))
        await self._call(doing, self._kv("ria_key_digests", doing).create(digest, _dumps(key_id)))
        return key_id, key

    def list_keys(self, now=None):
        now = time.time() if now is None else now
        rows = [dict(row, state=key_state(row, now)) for row in self.mirrors["ria_keys"].entries.values()]
        return sorted(rows, key=lambda r: r["created_at"])

    async def revoke_key(self, key_id, now=None):
        await self._revoke("ria_keys", key_id, "registration key", now)

    async def _revoke(self, bucket, entry_id, what, now):
        """Sets revoked_at on a record (a key, an access token) by compare-and-set; KeyError naming it when there
        is no such record or it is revoked already."""
        doing = f"revoke a {what}"
        if not _valid_id(entry_id):
            raise KeyError(f"no {what} with id {entry_id}")
        for _ in range(MAX_CAS_ROUNDS):
            row, revision = await self._get(bucket, entry_id, doing)
            if row is None:
                raise KeyError(f"no {what} with id {entry_id}")
            if row["revoked_at"] is not None:
                raise KeyError(f"{what} {entry_id} is already revoked")
            row["revoked_at"] = time.time() if now is None else now
            if await self._swap(bucket, entry_id, row, revision, doing):
                return
        raise NatsUnavailable(f"{what} {entry_id} changed too often to revoke; try again")

    async def _swap(self, bucket, key, record, revision, doing):
        """Writes record if the key is still at revision; False when another writer came first."""
        try:
            await self._call(doing, self._kv(bucket, doing).update(key, _dumps(record), last=revision))
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            return False

    async def register(self, key, name, now=None):
        now = time.time() if now is None else now
        try:
            key_digest = credentials.digest(key or "")
        except UnicodeEncodeError:
            raise RegistrationRefused("invalid_key") from None
        doing = "register an agent"
        found, _ = await self._get("ria_key_digests", key_digest, doing)  # the value is the key_id as JSON text
        if found is None:
            raise RegistrationRefused("invalid_key")
        key_id = str(found)
        row, _ = await self._get("ria_keys", key_id, doing)
        if row is None:
            raise RegistrationRefused("invalid_key")
        state = key_state(row, now)
        if state != "valid":
            raise RegistrationRefused(state)
        agent_id = credentials.new_id("agent-")
        token = credentials.new_secret(credentials.TOKEN_PREFIX)
        token_digest = credentials.digest(token)
        # The agent is written first (nobody holds its token yet), then the use is taken; a refused use takes
        # the agent back, so that a use is never taken without its agent, nor an agent kept without its use.
        agents, tokens = self._kv("ria_agents", doing), self._kv("ria_tokens", doing)
        try:
            await self._call(doing, agents.create(agent_id, _dumps(
                {"agent_id": agent_id, "name": name, "token_digest": token_digest, "key_id": key_id,
                 "created_at": now})))
            await self._call(doing, tokens.create(token_digest, _dumps(agent_id)))
            for _ in range(MAX_CAS_ROUNDS):
                row, revision = await self._get("ria_keys", key_id, doing)
                state = "invalid_key" if row is None else key_state(row, now)
                if state != "valid":
                    raise RegistrationRefused(state)
                row["uses"] += 1
                if await self._swap("ria_keys", key_id, row, revision, doing):
                    return agent_id, token
                await asyncio.sleep(random.uniform(0, 0.005))
            raise NatsUnavailable("the key is under too many registrations at once; try again")
        except BaseException:
            await self._forget_agent(agent_id, token_digest)
            raise

    async def _forget_agent(self, agent_id, token_digest):
        try:
            await asyncio.shield(asyncio.gather(self._link.kv["ria_tokens"].delete(token_digest),
                                                self._link.kv["ria_agents"].delete(agent_id),
                                                return_exceptions=True))
        except asyncio.CancelledError:
            pass

    # ---------------------------------------------------------------- agents

    async def agent_for_token(self, token):
        if not token:
            return None
        token_digest = credentials.digest(token)
        if self._link.connected:
            agent_id, _ = await self._get("ria_tokens", token_digest, "check an agent token")
            row, _ = (None, 0) if agent_id is None else await self._get("ria_agents", str(agent_id),
                                                                        "check an agent token")
        else:  # the node keeps taking its agents back from what it last knew
            agent_id = self.mirrors["ria_tokens"].get(token_digest)
            row = None if agent_id is None else self.mirrors["ria_agents"].get(str(agent_id))
        if row is None or row["token_digest"] != token_digest:
            return None
        return {"agent_id": row["agent_id"], "name": row["name"]}

    async def revoke_token(self, agent_id):
        await self._lock_out(agent_id, delete=False)

    async def delete_agent(self, agent_id):
        await self._lock_out(agent_id, delete=True)

    async def _lock_out(self, agent_id, delete):
        doing = "delete an agent" if delete else "revoke a token"
        if not _valid_id(agent_id):
            raise KeyError(f"no agent {agent_id}")
        for _ in range(MAX_CAS_ROUNDS):
            row, revision = await self._get("ria_agents", agent_id, doing)
            if row is None:
                raise KeyError(f"no agent {agent_id}")
            old = row["token_digest"]
            if delete:
                await self._call(doing, self._kv("ria_agents", doing).delete(agent_id, last=revision))
            else:
                row["token_digest"] = "revoked:" + credentials.new_id("")
                if not await self._swap("ria_agents", agent_id, row, revision, doing):
                    continue
            if not old.startswith("revoked:"):
                await self._call(doing, self._kv("ria_tokens", doing).delete(old))
            if delete:  # its page/API links go with it, as in SQLite
                for row in self.list_access_tokens():
                    if row["agent_id"] == agent_id:
                        await self._call(doing, self._kv("ria_access", doing).delete(row["token_id"]))
            return
        raise NatsUnavailable(f"agent {agent_id} changed too often; try again")

    def agent_exists(self, agent_id):
        return self.mirrors["ria_agents"].get(agent_id) is not None

    def count_agents(self):
        return len(self.mirrors["ria_agents"].entries)

    def list_agents(self):
        seen = self.mirrors["ria_seen"]
        out = []
        for row in list(self.mirrors["ria_agents"].entries.values()):
            last = seen.get(row["agent_id"]) or {}
            out.append({"agent_id": row["agent_id"], "name": row["name"], "key_id": row["key_id"],
                        "created_at": row["created_at"], "last_seen": last.get("last_seen"),
                        "hardware": last.get("hardware", []),
                        "token_revoked": row["token_digest"].startswith("revoked:")})
        return sorted(out, key=lambda r: r["created_at"])

    def save_seen(self, seen):
        """Stores {agent_id: (last_seen, hardware)} in the background; skipped while NATS is away (the node
        writes them all again when it is back)."""
        if not seen or not self._link.connected:
            return
        kv = self._link.kv["ria_seen"]

        async def write():
            await asyncio.gather(*(kv.put(agent_id, _dumps({"last_seen": t, "hardware": hw}))
                                   for agent_id, (t, hw) in seen.items()), return_exceptions=True)
        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


    # ---------------------------------------------------------------- access tokens (roles.py)

    async def create_access_token(self, role, agent_id=None, label="", now=None):
        roles.check_grant(role, agent_id)
        if agent_id is not None and not self.agent_exists(agent_id):
            raise ValueError(f"no agent {agent_id}")
        check_label(label)
        token = credentials.new_secret(roles.PREFIXES[role])
        token_id = credentials.new_id("tok-")
        record = {"token_id": token_id, "digest": credentials.digest(token), "role": role, "agent_id": agent_id,
                  "label": label, "created_at": time.time() if now is None else now, "revoked_at": None}
        doing = "create an access token"
        await self._call(doing, self._kv("ria_access", doing).create(token_id, _dumps(record)))
        return token_id, token

    def access_for_token(self, token):
        """{token_id, role, agent_id} of a live access token, or None (from the mirror: every request asks)."""
        token_digest = credentials.digest(token) if token else None
        for row in list(self.mirrors["ria_access"].entries.values()):
            if row["digest"] == token_digest and row["revoked_at"] is None:
                return {"token_id": row["token_id"], "role": row["role"], "agent_id": row["agent_id"]}
        return None

    def list_access_tokens(self):
        rows = [{k: v for k, v in row.items() if k != "digest"} for row in self.mirrors["ria_access"].entries.values()]
        return sorted(rows, key=lambda r: r["created_at"])

    async def revoke_access_token(self, token_id, now=None):
        await self._revoke("ria_access", token_id, "access token", now)


def _valid_id(text):
    """Whether text can be a key in a bucket (ids the hub made are letters, digits and '-')."""
    return isinstance(text, str) and 0 < len(text) <= 100 and all(c.isalnum() or c in "-_" for c in text) \
        and text.isascii()
