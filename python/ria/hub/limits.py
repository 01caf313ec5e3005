"""What the hub accepts from an agent or a client, and the helpers that hold input to it.

Every figure here is in docs/security.md with the reason for it.
"""

import asyncio
import json
import math

MAX_AGENT_TEXT = 64 * 1024  # one text message from an agent, characters
MAX_ERROR_CHARS = 500  # an agent's error message as stored, shown and logged
MAX_NAME_CHARS = 100  # agent names, device names, app ids, labels
MAX_HARDWARE = 32  # device names in a heartbeat
MAX_STATS = 64  # entries of a heartbeat's stats object (a voice agent adds 13 counters)
MAX_ERRORS_KEPT = 20  # an agent's recent errors
MAX_JSON_DEPTH = 32  # nesting of any JSON the hub parses
MAX_REFUSED_MESSAGES = 100  # refused text messages on one connection before the hub closes it
BODY_TIMEOUT_S = 10.0  # a request body must arrive within this
LOG_BURST, LOG_WINDOW_S = 10, 10.0  # log lines per agent per window; more are counted, not written
SEGMENT_BURST, SEGMENT_RATE = 50, 5.0  # recording segments: a burst, then this many per second
MAX_CAPTURES_PER_FILE = 1000  # captures of one SigMF file before the next file starts
META_WRITE_PERIOD_S = 1.0  # the live meta file is rewritten at most this often
TX_ANSWER_TIMEOUT_S = 10.0  # an agent's armed / done / tx_info after tx_start / tx_stop / tx_configure
TX_UPLOAD_WAIT_S = 10.0  # an armed upload session whose data has not started by then is stopped
TX_KEPT = 20  # tx_info answers and configures kept per TX session
TX_MAX_SOURCE_S = 86400.0  # a generated source (tone, keyed tone) lasts at most this
TX_MAX_KEYING_BITS = 4096
TX_MIN_FRAME, TX_MAX_FRAME = 16, 1 << 17  # samples per frame to an agent (1 MiB of cf32 at most)


def printable(value, limit=MAX_NAME_CHARS):
    """`value` as text a terminal and a log can show: non-printable characters (controls,
    surrogates, line breaks) replaced by '?', cut to `limit` characters with an ellipsis."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "".join(c if c.isprintable() else "?" for c in text)


def is_printable_name(value, limit=MAX_NAME_CHARS):
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def finite(value):
    """A JSON number that is finite, as float; None for anything else (bool, NaN, inf, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond a double
        return None
    return value if math.isfinite(value) else None


def json_safe(value, depth=0):
    """A copy of a JSON-like value in which no number is NaN or infinite (they become null), so
    that every client's JSON.parse can read what the API serves."""
    if depth > MAX_JSON_DEPTH:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return value


def dumps(value):
    """The API's JSON encoder: strict JSON, whatever an agent sent."""
    return json.dumps(json_safe(value), allow_nan=False)


def within_depth(text, limit=MAX_JSON_DEPTH):
    """False when JSON text nests deeper than `limit` (counted over brackets outside strings),
    so that the parser's recursion never meets a hostile depth."""
    if text.count("[") + text.count("{") <= limit:
        return True  # the common case, at C speed
    depth, in_string, escaped = 0, False, False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > limit:
                return False
        elif c in "]}":
            depth -= 1
    return True


def parse_json(text, limit=MAX_JSON_DEPTH):
    """json.loads with a depth limit; ValueError names what was wrong."""
    if not within_depth(text, limit):
        raise ValueError(f"JSON nested deeper than {limit} levels")
    return json.loads(text)


async def json_body(request, timeout_s=BODY_TIMEOUT_S):
    """A request's body as JSON; ValueError says what was wrong (slow, not UTF-8, not JSON, too deep).
    The charset the client names is not trusted: JSON is UTF-8 (RFC 8259)."""
    try:
        raw = await asyncio.wait_for(request.read(), timeout_s)
    except asyncio.TimeoutError:
        raise ValueError(f"the body did not arrive within {timeout_s:g} s") from None
    except ConnectionError:
        raise ValueError("the client went away before the body arrived") from None
    try:
        return parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None


class TokenBucket:
    """`burst` events at once, then `rate` per second."""

    def __init__(self, burst, rate, clock):
        self.burst, self.rate, self._clock = burst, rate, clock
        self._tokens, self._last = float(burst), clock()

    def take(self):
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class LogLimiter:
    """At most LOG_BURST lines per LOG_WINDOW_S from one source; the rest are counted, and the
    count is written with the next line that gets through."""

    def __init__(self, log, clock, burst=LOG_BURST, window_s=LOG_WINDOW_S):
        self._log, self._clock = log, clock
        self.burst, self.window = burst, window_s
        self._window_start, self._lines = clock(), 0
        self.suppressed = 0  # since the last line written
        self.suppressed_total = 0

    def __call__(self, level, fmt, *args):
        now = self._clock()
        if now - self._window_start >= self.window:
            self._window_start, self._lines = now, 0
        if self._lines >= self.burst:
            self.suppressed += 1
            self.suppressed_total += 1
            return
        self._lines += 1
        if self.suppressed:
            fmt += f" ({self.suppressed} more lines from this agent were not logged)"
            self.suppressed = 0
        self._log.log(level, fmt, *args)
