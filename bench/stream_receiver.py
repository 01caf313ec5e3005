#!/usr/bin/env python3
"""Receiving end for bench_websocket_sink.py: counts bytes from a WebSocket or a ZeroMQ PULL socket.

Prints "ready PORT" once listening (or connected, for zmq), then one JSON line when `--bytes` have arrived:
{"bytes": ..., "cpu_s": ...}.
"""

import argparse
import asyncio
import json
import resource
import sys


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def report(total):
    print(json.dumps({"bytes": total, "cpu_s": round(cpu_s(), 3)}), flush=True)


async def websocket_receiver(expected):
    from websockets.asyncio.server import serve

    done = asyncio.Event()
    total = 0

    async def handler(ws):
        nonlocal total
        async for message in ws:
            if isinstance(message, bytes):
                total += len(message)
                if total >= expected:
                    done.set()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None, max_queue=64) as server:
        print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
        await done.wait()
    report(total)


async def aiohttp_receiver(expected):
    from aiohttp import WSMsgType, web

    done = asyncio.Event()
    total = 0

    async def handler(request):
        nonlocal total
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                total += len(msg.data)
                if total >= expected:
                    done.set()
        return ws

    app = web.Application()
    app.router.add_get("/screens/agent/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"ready {site._server.sockets[0].getsockname()[1]}", flush=True)
    await done.wait()
    report(total)
    await runner.cleanup()


def raw_receiver(expected):
    """A WebSocket server reduced to what the PULL socket does: accept, then read every
    frame's payload into one buffer (no unmasking, no per-message objects)."""
    import base64
    import hashlib
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print(f"ready {srv.getsockname()[1]}", flush=True)
    conn, _ = srv.accept()
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = [line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
           if line.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    sink = memoryview(bytearray(1 << 22))
    rest = request.split(b"\r\n\r\n", 1)[1]

    def read_exact(n):
        nonlocal rest
        out = rest[:n]
        rest = rest[n:]
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def skip(n):
        nonlocal rest
        take = min(n, len(rest))
        rest = rest[take:]
        n -= take
        while n:
            n -= conn.recv_into(sink, min(n, len(sink)))

    total = 0
    while total < expected:
        b0, b1 = read_exact(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(read_exact(2), "big")
        elif length == 127:
            length = int.from_bytes(read_exact(8), "big")
        if b1 & 0x80:
            read_exact(4)  # mask key; the payload is counted, not looked at
        skip(length)
        if b0 & 0x0F == 2:
            total += length
    report(total)
    conn.close()
    srv.close()


def zmq_receiver(expected, port):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(f"tcp://127.0.0.1:{port}")  # gr-zeromq's push_sink binds
    print(f"ready {port}", flush=True)
    total = 0
    while total < expected:
        total += len(sock.recv(copy=False))
    report(total)
    sock.close(0)
    ctx.term()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=("ws", "aiohttp", "raw", "zmq"))
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--port", type=int, default=0, help="zmq: the port the push sink binds")
    a = p.parse_args()
    if a.kind == "ws":
        asyncio.run(websocket_receiver(a.bytes))
    elif a.kind == "raw":
        raw_receiver(a.bytes)
    elif a.kind == "aiohttp":
        asyncio.run(aiohttp_receiver(a.bytes))
    else:
        zmq_receiver(a.bytes, a.port)


if __name__ == "__main__":
    sys.exit(main())
