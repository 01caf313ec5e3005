"""A sliding-window limit on registration attempts per client address."""

import collections
import time


class RateLimiter:
    def __init__(self, limit, window_s, clock=time.monotonic):
        self.limit, self.window = limit, window_s
        self._clock = clock
        self._attempts = collections.defaultdict(collections.deque)

    def attempt(self, client):
        """Records an attempt; returns 0 when allowed, else the seconds until the next one is."""
        now = self._clock()
        seen = self._attempts[client]
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return max(self.window - (now - seen[0]), 1.0)
        seen.append(now)
        if len(self._attempts) > 10000:  # forget clients idle for a window, so the table cannot grow without bound
            for key in [k for k, v in self._attempts.items() if not v or now - v[-1] >= self.window]:
                del self._attempts[key]
        return 0
