"""Two agent processes on one agent's credentials: each new connection replaces the other, about once a second,
and without a word neither streams. The hub counts the replacements per agent, says so in the log (at most once a
minute per agent), in the API and on the page, and closes the replaced connection with its own close code so the
agent can say what happened and wait longer before it comes back."""

import collections
import time

from ..wire.protocol import REPLACED_CLOSE_CODE as CLOSE_CODE
WINDOW_S = 60.0
MAX_AGENTS = 4096  # agents with a replacement in the window; the oldest entry goes first


def close_reason(address):
    return f"replaced by another connection with this agent's token (from {address})".encode()[:120]


class TwinConnections:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._seen = collections.OrderedDict()  # agent_id -> deque of (time, address), newest last
        self._warned = {}  # agent_id -> time of the last log line

    def replaced(self, agent_id, old_address, new_address):
        """A connection of agent_id was replaced; returns the log line to write now, or None."""
        now = self._clock()
        events = self._seen.pop(agent_id, None) or collections.deque(maxlen=64)
        events.append((now, old_address, new_address))
        self._seen[agent_id] = events
        while len(self._seen) > MAX_AGENTS:
            gone, _ = self._seen.popitem(last=False)
            self._warned.pop(gone, None)
        view = self.view(agent_id)
        if view is None or now - self._warned.get(agent_id, -1e9) < WINDOW_S:
            return None
        self._warned[agent_id] = now
        return (f"agent {agent_id}: {view['last_minute']} connections replaced in the last minute, from "
                f"{' and '.join(view['addresses'])}: two processes use this agent's token (is the agent running "
                f"twice?); neither streams for long")

    def view(self, agent_id):
        """{"last_minute": n, "addresses": [...]} while connections keep being replaced (two or more in the last
        minute; one is an agent that came back before the hub noticed its old connection die), else None."""
        events = self._seen.get(agent_id)
        if not events:
            return None
        now = self._clock()
        recent = [e for e in events if now - e[0] <= WINDOW_S]
        if len(recent) < 2:
            return None
        addresses = sorted({a for e in recent for a in e[1:]})[:8]
        return {"last_minute": len(recent), "addresses": addresses}
