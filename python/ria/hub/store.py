"""The hub's SQLite database: registration keys, agents and access tokens (secrets stored as digests only)."""

import inspect
import json
import math
import sqlite3
import time

from . import credentials, roles

MAX_KEY_USES = 100000
MAX_KEY_TTL_S = 366 * 86400
MAX_LABEL_CHARS = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS registration_keys (
    key_id      TEXT PRIMARY KEY,
    digest      TEXT UNIQUE NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    max_uses    INTEGER,            -- NULL: reusable without limit
    uses        INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    expires_at  REAL,               -- NULL: never
    revoked_at  REAL
);
CREATE TABLE IF NOT EXISTS agents (
    agent_id    TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_digest TEXT UNIQUE NOT NULL,
    key_id      TEXT,
    created_at  REAL NOT NULL,
    last_seen   REAL,
    hardware    TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_id    TEXT PRIMARY KEY,
    digest      TEXT UNIQUE NOT NULL,
    role        TEXT NOT NULL,      -- roles.ROLES: teacher, control, view
    agent_id    TEXT,               -- NULL: every agent
    label       TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    revoked_at  REAL
);
"""

REASONS = ("invalid_key", "expired", "revoked", "already_consumed")


def check_key_settings(uses, ttl_s, label):
    """Raises ValueError naming the parameter that is not a whole number of uses from 1 to MAX_KEY_USES, a
    finite time to live up to MAX_KEY_TTL_S, or printable label text."""
    if uses is not None and (isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= MAX_KEY_USES):
        raise ValueError(f"uses must be a whole number from 1 to {MAX_KEY_USES} (or null: unlimited), got {uses!r}")
    if ttl_s is not None and (isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float))
                              or not math.isfinite(ttl_s) or not 0 < ttl_s <= MAX_KEY_TTL_S):
        raise ValueError(f"ttl_s must be a number of seconds above 0 and at most {MAX_KEY_TTL_S} "
                         f"(or null: no expiry), got {ttl_s!r}")
    check_label(label)


def check_label(label):
    """Raises ValueError unless label is printable text of at most MAX_LABEL_CHARS (a key's, a token's)."""
    if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise ValueError(f"label must be printable text of at most {MAX_LABEL_CHARS} characters")


def key_state(row, now):
    """A key's state: valid, or the reason a registration with it is refused."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and now >= row["expires_at"]:
        return "expired"
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "already_consumed"
    return "valid"


async def answer(value):
    """A store's answer: the SQLite store's as it is, the cluster store's (a coroutine) awaited."""
    return await value if inspect.isawaitable(value) else value


class RegistrationRefused(Exception):
    """Registration with a key failed; .reason is one of the protocol's REASONS."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Store:
    def __init__(self, path):
        self.path = path
        # One connection used from the hub's event loop (and by CLI commands in their own process);
        # WAL lets `ria_hub.py keys create` write while a hub is serving.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self):
        self._db.close()

    # ---------------------------------------------------------------- registration keys

    def create_key(self, uses=1, ttl_s=None, label="", now=None):
        """A new registration key; returns (key_id, key). uses=None makes it reusable without limit.

        Raises ValueError naming the parameter that is not a whole number of uses from 1 to
        MAX_KEY_USES, a finite time to live up to MAX_KEY_TTL_S, or printable label text."""
        check_key_settings(uses, ttl_s, label)
        now = time.time() if now is None else now
        key = credentials.new_secret(credentials.KEY_PREFIX)
        key_id = credentials.new_id("key-")
        self._db.execute(
            "INSERT INTO registration_keys (key_id, digest, label, max_uses, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, credentials.digest(key), label, uses, now, None if ttl_s is None else now + ttl_s))
        return key_id, key

    def list_keys(self, now=None):
        now = time.time() if now is None else now
        rows = self._db.execute("SELECT * FROM registration_keys ORDER BY created_at").fetchall()
        return [dict(row, state=key_state(row, now)) for row in rows]

    def revoke_key(self, key_id, now=None):
        cur = self._db.execute("UPDATE registration_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                               (time.time() if now is None else now, key_id))
        if cur.rowcount == 0:
            if self._db.execute("SELECT 1 FROM registration_keys WHERE key_id = ?", (key_id,)).fetchone():
                raise KeyError(f"registration key {key_id} is already revoked")
            raise KeyError(f"no registration key with id {key_id}")

    def register(self, key, name, now=None):
        """Consumes one use of `key` and creates an agent; returns (agent_id, token).

        Raises RegistrationRefused with the protocol reason.
        """
        now = time.time() if now is None else now
        try:
            key_digest = credentials.digest(key or "")
        except UnicodeEncodeError:  # text no client could have been given: not one of our keys
            raise RegistrationRefused("invalid_key") from None
        row = self._db.execute("SELECT * FROM registration_keys WHERE digest = ?", (key_digest,)).fetchone()
        if row is None:
            raise RegistrationRefused("invalid_key")
        state = key_state(row, now)
        if state != "valid":
            raise RegistrationRefused(state)
        agent_id = credentials.new_id("agent-")
        token = credentials.new_secret(credentials.TOKEN_PREFIX)
        # One transaction: a use is taken only together with the agent it made. The use count is
        # checked again inside the UPDATE, so two racing registrations cannot both take the last use.
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("UPDATE registration_keys SET uses = uses + 1 WHERE key_id = ?"
                                   " AND (max_uses IS NULL OR uses < max_uses)", (row["key_id"],))
            if cur.rowcount == 0:
                raise RegistrationRefused("already_consumed")
            self._db.execute("INSERT INTO agents (agent_id, name, token_digest, key_id, created_at)"
                             " VALUES (?, ?, ?, ?, ?)",
                             (agent_id, name, credentials.digest(token), row["key_id"], now))
        return agent_id, token

    # ---------------------------------------------------------------- agents

    def agent_for_token(self, token):
        """The agent row whose token this is, or None."""
        if not token:
            return None
        row = self._db.execute("SELECT agent_id, name FROM agents WHERE token_digest = ?",
                               (credentials.digest(token),)).fetchone()
        return dict(row) if row else None

    def revoke_token(self, agent_id):
        """The agent's token stops working; the agent stays listed (register it again for a new token)."""
        cur = self._db.execute("UPDATE agents SET token_digest = ? WHERE agent_id = ?",
                               ("revoked:" + credentials.new_id(""), agent_id))
        if cur.rowcount == 0:
            raise KeyError(f"no agent {agent_id}")

    def delete_agent(self, agent_id):
        with self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute("DELETE FROM agents WHERE agent_id = ?", (agent_id,))
            if cur.rowcount == 0:
                raise KeyError(f"no agent {agent_id}")
            self._db.execute("DELETE FROM access_tokens WHERE agent_id = ?", (agent_id,))

    def agent_exists(self, agent_id):
        return self._db.execute("SELECT 1 FROM agents WHERE agent_id = ?", (agent_id,)).fetchone() is not None

    def count_agents(self):
        return self._db.execute("SELECT COUNT(*) FROM agents").fetchone()[0]

    def list_agents(self):
        rows = self._db.execute("SELECT agent_id, name, key_id, created_at, last_seen, hardware,"
                                " token_digest LIKE 'revoked:%' AS token_revoked FROM agents"
                                " ORDER BY created_at").fetchall()
        return [dict(row, hardware=json.loads(row["hardware"]), token_revoked=bool(row["token_revoked"]))
                for row in rows]

    def save_seen(self, seen):
        """Stores {agent_id: (last_seen, hardware)} in one transaction."""
        if not seen:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE agents SET last_seen = ?, hardware = ? WHERE agent_id = ?",
                                 [(t, json.dumps(hw), agent_id) for agent_id, (t, hw) in seen.items()])

    # ---------------------------------------------------------------- access tokens (docs/security.md, roles)

    def create_access_token(self, role, agent_id=None, label="", now=None):
        """A new page/API token with a role, scoped to one agent or (agent_id None) to all; returns
        (token_id, token). Raises ValueError naming what is wrong (role, agent, label)."""
        roles.check_grant(role, agent_id)
        if agent_id is not None and not self.agent_exists(agent_id):
            raise ValueError(f"no agent {agent_id}")
        check_label(label)
        token = credentials.new_secret(roles.PREFIXES[role])
        token_id = credentials.new_id("tok-")
        self._db.execute("INSERT INTO access_tokens (token_id, digest, role, agent_id, label, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         (token_id, credentials.digest(token), role, agent_id, label,
                          time.time() if now is None else now))
        return token_id, token

    def access_for_token(self, token):
        """{token_id, role, agent_id} of a live access token, or None."""
        if not token:
            return None
        try:
            token_digest = credentials.digest(token)
        except UnicodeEncodeError:
            return None
        row = self._db.execute("SELECT token_id, role, agent_id FROM access_tokens WHERE digest = ?"
                               " AND revoked_at IS NULL", (token_digest,)).fetchone()
        return dict(row) if row else None

    def list_access_tokens(self):
        rows = self._db.execute("SELECT token_id, role, agent_id, label, created_at, revoked_at FROM access_tokens"
                                " ORDER BY created_at").fetchall()
        return [dict(row) for row in rows]

    def revoke_access_token(self, token_id, now=None):
        cur = self._db.execute("UPDATE access_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                               (time.time() if now is None else now, token_id))
        if cur.rowcount == 0:
            if self._db.execute("SELECT 1 FROM access_tokens WHERE token_id = ?", (token_id,)).fetchone():
                raise KeyError(f"access token {token_id} is already revoked")
            raise KeyError(f"no access token with id {token_id}")
