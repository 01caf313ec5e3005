"""Load generator for bench_hub_load.py: many agent connections in one asyncio process.

Idle agents send a heartbeat every interval; streaming agents send a stream_info and then binary cf32
frames as fast as the hub takes them. The client is a minimal WebSocket writer with an all-zero mask
key (legal, and it keeps the generator's CPU cost low, so the machine's time goes to the hub, which
still unmasks every byte). Prints one JSON line with what it sent.
"""

import argparse
import asyncio
import base64
import json
import os
import struct
import time
import urllib.parse

import numpy as np


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + b"\0\0\0\0" + payload


async def connect(url, agent_id, token):
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /screens/agent/ws?agent_id={agent_id} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    response = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in response.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {response[:80]!r}")
    return reader, writer


def heartbeat(status="idle", app_id=None):
    msg = {"type": "heartbeat", "hardware": ["mock"], "status": status, "capabilities": ["rx"], "tx_enabled": False,
           "agent": {"name": "load", "version": "0"}}
    if app_id:
        msg["app_id"] = app_id
    return frame(0x1, json.dumps(msg).encode())


async def idle_agent(url, agent_id, token, interval, stop, counters):
    _, writer = await connect(url, agent_id, token)
    counters["connected"] += 1
    while not stop.is_set():
        writer.write(heartbeat())
        await writer.drain()
        counters["heartbeats"] += 1
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
    writer.close()


BYTES_PER_SAMPLE = {"cf32": 8, "cs16": 4, "cs8": 2}


async def streaming_agent(url, agent_id, token, payload, stop, counters, sample_format="cf32", rate=0.0):
    """Streams frames as fast as the hub takes them, or paced at `rate` samples per second."""
    _, writer = await connect(url, agent_id, token)
    counters["connected"] += 1
    writer.write(heartbeat("streaming", "load"))
    info = {"type": "stream_info", "app_id": "load", "sample_rate": 10e6, "center_frequency": 100e6, "gain": 0,
            "sample_format": sample_format, "sample_index": 0}
    if rate:
        info["sample_rate"] = rate
    writer.write(frame(0x1, json.dumps(info).encode()))
    data = frame(0x2, payload)
    nsamples = len(payload) // BYTES_PER_SAMPLE[sample_format]
    start = next_beat = time.monotonic()
    next_beat += 1.0
    sent = 0
    while not stop.is_set():
        if rate:
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                try:
                    await asyncio.wait_for(stop.wait(), ahead)
                    break
                except asyncio.TimeoutError:
                    pass
        writer.write(data)
        await writer.drain()
        sent += nsamples
        counters["samples"] += nsamples
        if time.monotonic() >= next_beat:
            writer.write(heartbeat("streaming", "load"))
            next_beat += 1.0
    writer.close()


async def main(args):
    with open(args.tokens) as f:
        agents = json.load(f)[args.first:args.first + args.idle + args.stream]
    stop = asyncio.Event()
    counters = {"connected": 0, "heartbeats": 0, "samples": 0}
    rng = np.random.default_rng(1)
    iq = rng.standard_normal(2 * args.frame_samples) * 0.1
    payload = {"cf32": lambda: iq.astype(np.float32), "cs16": lambda: (iq * 32767).astype(np.int16),
               "cs8": lambda: (iq * 127).astype(np.int8)}[args.format]().tobytes()
    tasks = []
    for i, (agent_id, token) in enumerate(agents):
        if i < args.stream:
            tasks.append(asyncio.create_task(streaming_agent(args.url, agent_id, token, payload, stop, counters,
                                                               args.format, args.rate)))
        else:
            tasks.append(asyncio.create_task(idle_agent(args.url, agent_id, token, args.interval, stop, counters)))
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the handshakes interleave
    await asyncio.sleep(args.duration)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, Exception)]
    print(json.dumps(dict(counters, errors=errors[:3], error_count=len(errors))), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--idle", type=int, default=0)
    p.add_argument("--stream", type=int, default=0)
    p.add_argument("--frame-samples", type=int, default=65536)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--format", choices=sorted(BYTES_PER_SAMPLE), default="cf32")
    p.add_argument("--rate", type=float, default=0.0, help="samples per second per streaming agent (0: flat out)")
    p.add_argument("--duration", type=float, default=10.0)
    asyncio.run(main(p.parse_args()))
