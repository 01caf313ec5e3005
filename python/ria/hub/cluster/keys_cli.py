"""`ria_hub.py keys|tokens ... --nats URL`: the registration keys and access tokens of a hub cluster, for the CLI,
with the methods of the SQLite store (store.Store) it uses when there is no cluster."""

import asyncio

from .kv_store import KvStore
from .nats_link import NatsLink, NatsUnavailable


class ClusterKeys:
    def __init__(self, nats_urls):
        self._loop = asyncio.new_event_loop()
        self._link = NatsLink(nats_urls, "ria-hub keys")
        try:
            self._loop.run_until_complete(self._link.connect())
            self._store = KvStore(self._link)
            self._loop.run_until_complete(self._store.start())
        except NatsUnavailable as e:
            self.close()
            raise ValueError(str(e)) from None

    def create_key(self, uses=1, ttl_s=None, label=""):
        return self._run(self._store.create_key(uses=uses, ttl_s=ttl_s, label=label))

    def list_keys(self):
        return self._store.list_keys()

    def revoke_key(self, key_id):
        return self._run(self._store.revoke_key(key_id))

    def create_access_token(self, role, agent_id=None, label=""):
        return self._run(self._store.create_access_token(role, agent_id, label))

    def list_access_tokens(self):
        return self._store.list_access_tokens()

    def revoke_access_token(self, token_id):
        return self._run(self._store.revoke_access_token(token_id))

    def _run(self, coroutine):
        try:
            return self._loop.run_until_complete(coroutine)
        except NatsUnavailable as e:
            raise ValueError(str(e)) from None

    def close(self):
        self._loop.run_until_complete(self._link.close())
        self._loop.close()
