#!/usr/bin/env python3
"""Receiving end for bench_websocket_sink.py, run in its own process.

    python bench/stream_receiver.py {raw,aiohttp,websockets,zmq} [--bytes N] [--endpoint tcp://...]

Prints "ready PORT" once listening (zmq: once connected to the push sink's --endpoint), then one
JSON line: {"bytes", "frames", "gaps", "gap_samples", "sample_rate", "cpu_s"}. It reports when
--bytes of binary payload have arrived or, without --bytes, when the sender closes the connection.
The WebSocket receivers read the sink's text messages too: gaps (drops) and the stream_info's
sample_rate; the raw one only counts payload bytes.
"""

import argparse
import asyncio
import json
import resource
import sys

def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Tally:
    """Counts what arrives; reports once --bytes are in (then keeps reading until the sender
    closes, so that the sender sees a clean close) or, without --bytes, at the close."""

    def __init__(self, expected):
        self.expected = expected
        self.bytes = self.frames = self.gaps = self.gap_samples = 0
        self.sample_rate = None
        self.reported = False
        self.cpu0 = 0.0

    def ready(self, port):
        self.cpu0 = cpu_s()  # interpreter start and imports are not the receiver's work
        print(f"ready {port}", flush=True)

    def binary(self, n):
        self.bytes += n
        self.frames += 1
        if self.expected and self.bytes >= self.expected:
            self.report()

    def text(self, data):
        msg = json.loads(data)
        if msg.get("type") == "gap":
            self.gaps += 1
            self.gap_samples += msg["dropped_samples"]
        elif msg.get("type") == "stream_info":
            self.sample_rate = msg.get("sample_rate")

    def report(self):
        if not self.reported:
            self.reported = True
            print(json.dumps({"bytes": self.bytes, "frames": self.frames, "gaps": self.gaps,
                              "gap_samples": self.gap_samples, "sample_rate": self.sample_rate,
                              "cpu_s": round(cpu_s() - self.cpu0, 4)}), flush=True)


async def websockets_receiver(tally):
    from websockets.asyncio.server import serve

    done = asyncio.Event()

    async def handler(ws):
        try:
            async for message in ws:
                if isinstance(message, str):
                    tally.text(message)
                else:
                    tally.binary(len(message))
        finally:  # a clean close ends the loop, any other raises
            done.set()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        tally.ready(server.sockets[0].getsockname()[1])
        await done.wait()
    tally.report()


async def aiohttp_receiver(tally):
    from aiohttp import WSMsgType, web

    done = asyncio.Event()

    async def handler(request):
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                tally.text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                tally.binary(len(msg.data))
        done.set()
        return ws

    app = web.Application()
    app.router.add_get("/{path:.*}", handler)  # any path, as the other two receivers
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    tally.ready(runner.addresses[0][1])
    await done.wait()
    tally.report()
    await runner.cleanup()


def raw_receiver(tally):
    """A WebSocket server cut down to what a PULL socket does: accept, answer pings and the close, read
    every payload into one scratch buffer (no unmasking, no message objects, text skipped)."""
    import base64
    import hashlib
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        tally.ready(srv.getsockname()[1])
        conn, _ = srv.accept()
    with conn:
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += conn.recv(4096)
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        scratch = memoryview(bytearray(1 << 22))

        def read(n):  # exactly n bytes (frame headers and control payloads)
            nonlocal rest
            while len(rest) < n:
                chunk = conn.recv(max(n - len(rest), 4096))
                if not chunk:
                    raise EOFError
                rest += chunk
            out, rest = rest[:n], rest[n:]
            return out

        def skip(n):  # n payload bytes, whatever of them came with the last header read
            nonlocal rest
            take = min(n, len(rest))
            rest, n = rest[take:], n - take
            while n:
                got = conn.recv_into(scratch, min(n, len(scratch)))
                if not got:
                    raise EOFError
                n -= got

        binary = False  # the data message in progress is binary (continuations carry opcode 0)
        try:
            while True:
                b0, b1 = read(2)
                opcode, length = b0 & 0x0F, b1 & 0x7F
                if length >= 126:
                    length = int.from_bytes(read(2 if length == 126 else 8), "big")
                mask = read(4) if b1 & 0x80 else b""
                if opcode >= 8:  # control: a ping gets its pong, a close is echoed and ends the stream
                    payload = bytes(p ^ mask[i % 4] for i, p in enumerate(read(length)))
                    if opcode in (8, 9):
                        conn.sendall(bytes([0x88 if opcode == 8 else 0x8A, len(payload)]) + payload)
                    if opcode == 8:
                        break
                    continue
                if opcode:
                    binary = opcode == 2
                skip(length)
                if binary:
                    tally.binary(length)
        except EOFError:
            pass
    tally.report()


def zmq_receiver(tally, endpoint):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(endpoint)  # gr-zeromq's push_sink binds
    tally.ready(endpoint.rsplit(":", 1)[1])
    while not tally.reported:  # PUSH/PULL has no end of stream: stop at --bytes
        tally.binary(len(sock.recv(copy=False)))
    sock.close(0)
    ctx.term()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("raw", "aiohttp", "websockets", "zmq"))
    p.add_argument("--bytes", type=int, default=0, help="report once this many payload bytes are in (0: at close)")
    p.add_argument("--endpoint", help="zmq: the push sink's endpoint")
    a = p.parse_args()
    tally = Tally(a.bytes)
    if a.kind == "zmq":
        if not a.bytes or not a.endpoint:
            p.error("zmq needs --bytes and --endpoint")
        zmq_receiver(tally, a.endpoint)
    elif a.kind == "raw":
        raw_receiver(tally)
    else:
        asyncio.run((aiohttp_receiver if a.kind == "aiohttp" else websockets_receiver)(tally))


if __name__ == "__main__":
    sys.exit(main())
