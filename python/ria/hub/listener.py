"""The hub's TCP listener: aiohttp's request handling behind a cap on connections and a deadline
for the first request's headers, so half-sent requests cannot hold the hub's file descriptors.

aiohttp alone has neither a connection cap nor (before 3.14) a header timeout; its keep-alive
timeout closes idle connections between requests.
"""

import asyncio
import collections
import ipaddress
import resource

BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                 b"Content-Length: 36\r\n\r\nthe hub has too many connections now")


class ConnectionLimits:
    def __init__(self, max_connections=512, max_per_client=64, header_timeout_s=10.0, trusted_proxies=()):
        self.max_connections, self.max_per_client = max_connections, max_per_client
        self.header_timeout_s = header_timeout_s
        self.trusted_proxies = trusted_proxies


def raise_descriptor_limit(wanted):
    """Lifts the soft open-files limit towards `wanted` (within the hard limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


class _Refused(asyncio.Protocol):
    """Answers 503 and closes; every other event is asyncio.Protocol's no-op."""

    def connection_made(self, transport):
        transport.write(BUSY_RESPONSE)
        transport.close()


class _Guarded(asyncio.Protocol):
    """Passes everything to aiohttp's protocol; closes the connection when its first request's headers
    are not complete within the deadline."""

    def __init__(self, inner, listener, client):
        self._inner, self._listener, self._client = inner, listener, client
        self._tail = b""
        self._timer = None
        self._transport = None

    def connection_made(self, transport):
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._listener.limits.header_timeout_s, self._expire)
        self._listener.waiting_for_headers[self] = None
        self._inner.connection_made(transport)

    def data_received(self, data):
        if self._timer is not None:
            seen = self._tail + data
            if not self._tail:
                seen = seen.lstrip(b"\r\n")  # empty lines before a request line are allowed, and not headers
            if b"\r\n\r\n" in seen:
                self._headers_done()
            elif seen:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def _headers_done(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._listener.waiting_for_headers.pop(self, None)

    def _expire(self):
        self._listener.counters["header_timeouts"] += 1
        self.evict()

    def evict(self):
        """Closes a connection that has not sent its request headers yet."""
        self._headers_done()
        self._transport.abort()

    def eof_received(self):
        return self._inner.eof_received()

    def pause_writing(self):
        self._inner.pause_writing()

    def resume_writing(self):
        self._inner.resume_writing()

    def connection_lost(self, exc):
        self._headers_done()
        self._listener.closed(self._client)
        self._inner.connection_lost(exc)


class GuardedListener:
    """Serves `server` (an aiohttp web server, i.e. AppRunner.server) on host:port within `limits`."""

    def __init__(self, server, limits, counters):
        self.server, self.limits, self.counters = server, limits, counters
        self.open = 0
        self.per_client = collections.Counter()
        self.waiting_for_headers = {}  # _Guarded -> None, oldest first
        self._asyncio_server = None

    async def start(self, host, port):
        loop = asyncio.get_running_loop()
        self._asyncio_server = await loop.create_server(self._accept, host, port, reuse_address=True)
        return self._asyncio_server.sockets[0].getsockname()[1]

    def _accept(self):
        return _Pending(self)

    def admitted(self, client):
        """Whether one more connection from `client` fits; counts it when it does. At the total cap the oldest
        connection still sending its headers makes room (a slow-headers flood from many addresses cannot
        lock out the class); only when every connection is a working one is the new one refused."""
        if self.per_client[client] >= self.limits.max_per_client and not is_trusted(client, self.limits):
            self.counters["connections_refused"] += 1
            return False
        if self.open >= self.limits.max_connections:
            if not self.waiting_for_headers:
                self.counters["connections_refused"] += 1
                return False
            self.counters["header_evictions"] += 1
            next(iter(self.waiting_for_headers)).evict()
        self.open += 1
        self.per_client[client] += 1
        return True

    def closed(self, client):
        self.open -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]

    def stop_listening(self):
        if self._asyncio_server:
            self._asyncio_server.close()

    async def wait_closed(self):
        """After aiohttp has closed its connections (on Python 3.12 this waits for them)."""
        if self._asyncio_server:
            await self._asyncio_server.wait_closed()


class _Pending(asyncio.Protocol):
    """The protocol asyncio gets for a new connection: it learns the peer address, then becomes either
    a refusal or a guarded aiohttp connection."""

    def __init__(self, listener):
        self._listener = listener
        self._actual = None

    def connection_made(self, transport):
        peer = transport.get_extra_info("peername")
        client = peer[0] if peer else "?"
        if self._listener.admitted(client):
            self._actual = _Guarded(self._listener.server(), self._listener, client)
        else:
            self._actual = _Refused()
        self._actual.connection_made(transport)

    def data_received(self, data):
        self._actual.data_received(data)

    def eof_received(self):
        return self._actual.eof_received()

    def pause_writing(self):
        self._actual.pause_writing()

    def resume_writing(self):
        self._actual.resume_writing()

    def connection_lost(self, exc):
        self._actual.connection_lost(exc)


def parse_proxies(text):
    """'10.0.0.1,192.168.0.0/24' -> networks; ValueError names a bad entry."""
    networks = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"--trusted-proxy {item!r} is not an IP address or network such as 10.0.0.0/8") from None
    return tuple(networks)


def _address(text):
    """An IP address from '1.2.3.4', '1.2.3.4:5678', '[2001:db8::1]:443' or '2001:db8::1'; None if none."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(address, limits):
    ip = _address(address)
    return ip is not None and any(ip in net for net in limits.trusted_proxies)


def client_address(request, limits):
    """The address a request came from: the peer, or, when the peer is a trusted proxy, the nearest
    address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.remote or "?"
    if not is_trusted(peer, limits):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            return peer  # a forged or broken header: the proxy itself is all we know
        if not is_trusted(hop, limits):
            return str(_address(hop))
    return peer
