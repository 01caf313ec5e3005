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
    p.add_argument("kind", choices=("ws", "aiohttp", "zmq"))
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--port", type=int, default=0, help="zmq: the port the push sink binds")
    a = p.parse_args()
    if a.kind == "ws":
        asyncio.run(websocket_receiver(a.bytes))
    elif a.kind == "aiohttp":
        asyncio.run(aiohttp_receiver(a.bytes))
    else:
        zmq_receiver(a.bytes, a.port)


if __name__ == "__main__":
    sys.exit(main())
