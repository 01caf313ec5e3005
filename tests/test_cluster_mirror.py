"""A hub node's mirror of a key-value bucket (python/ria/hub/cluster/mirror.py) on a real nats-server: a load reads
the bucket as its stream holds it, and a reload after a reconnect that meets a JetStream not answering yet is tried
again until it has read the bucket."""

import asyncio
import json
import logging
import os
import threading

import nats
import pytest

from gnuradio.ria.hub.cluster.mirror import BucketMirror
from gnuradio.ria.hub.cluster.nats_link import NatsLink
from helpers import wait_until
from nats_cluster import NATS_SERVER
from processes import Process


class ConfigNats:
    """nats-server run from a config file, so that JetStream can be turned on in the running server (SIGHUP)."""

    def __init__(self, folder):
        self.folder = folder
        self.config = os.path.join(folder, "nats.conf")
        self.store = os.path.join(folder, "jetstream")
        self.process = None

    def _write(self, port, jetstream):
        js = f'jetstream {{ store_dir: "{self.store}" }}' if jetstream else "jetstream: disabled"
        with open(self.config, "w") as f:
            f.write(f"host: 127.0.0.1\nport: {port}\n{js}\n")

    def start(self, port=-1, jetstream=True):
        """Starts it on `port` (-1: a free one); returns the port."""
        self._write(port, jetstream)
        self.process = Process([NATS_SERVER, "-c", self.config])
        m = self.process.wait_line(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
        self.process.wait_line(r"Server is ready")
        return int(m.group(1))

    def turn_jetstream_on(self, port):
        start = self.process.line_count()
        self._write(port, True)
        self.process.proc.send_signal(1)  # SIGHUP: reload the configuration
        self.process.wait_line(r"Reloaded server configuration", start=start)

    def stop(self):
        if self.process:
            self.process.stop()
            self.process = None


@pytest.fixture
def nats_conf(tmp_path):
    server = ConfigNats(str(tmp_path))
    yield server
    server.stop()


@pytest.fixture
def run():
    """Runs coroutines on an event loop of its own thread (the mirror lives there; the test reads it from here)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield lambda coroutine, timeout=20: asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


async def change_bucket(url, bucket, put=(), delete=()):
    """Writes as another node would: puts {key: value} and deletes keys, with a client of its own."""
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream(timeout=5).key_value(bucket)
        for key, value in dict(put).items():
            await kv.put(key, json.dumps(value).encode())
        for key in delete:
            await kv.delete(key)
    finally:
        await nc.close()


def new_mirror(bucket, url):
    """(NatsLink, BucketMirror of bucket, the warnings they log)."""
    log = logging.getLogger(f"mirror-test.{bucket}")
    records = Records()
    log.addHandler(records)
    link = NatsLink([url], "mirror-test", log)
    return link, BucketMirror(link, bucket, log=log), records


def test_a_reload_that_meets_jetstream_not_answering_yet_is_tried_again_until_it_has_read_the_bucket(nats_conf, run):
    port = nats_conf.start()
    url = f"nats://127.0.0.1:{port}"
    link, mirror, records = new_mirror("ria_agents", url)
    run(link.connect())
    try:
        run(change_bucket(url, "ria_agents", put={"agent-0": {"n": 0}, "agent-1": {"n": 1}}))
        run(mirror.start())
        assert mirror.entries == {"agent-0": {"n": 0}, "agent-1": {"n": 1}}

        nats_conf.stop()
        assert wait_until(lambda: not link.connected, 10)
        # while this node is away, another one changes the registry (a server of its own on the same store)
        side = nats_conf.start()
        run(change_bucket(f"nats://127.0.0.1:{side}", "ria_agents", put={"agent-2": {"n": 2}}, delete=["agent-1"]))
        nats_conf.stop()

        nats_conf.start(port, jetstream=False)  # back, but JetStream does not answer yet
        assert wait_until(lambda: any("could not reload ria_agents" in line for line in records.lines), 15), \
            records.lines
        assert link.connected and mirror.entries == {"agent-0": {"n": 0}, "agent-1": {"n": 1}}  # kept, not emptied

        nats_conf.turn_jetstream_on(port)
        assert wait_until(lambda: mirror.entries == {"agent-0": {"n": 0}, "agent-2": {"n": 2}}, 15), \
            (mirror.entries, records.lines)
    finally:
        run(mirror.stop())
        run(link.close())


def test_a_load_reads_every_live_key_and_no_deleted_one_each_time(nats_conf, run):
    url = f"nats://127.0.0.1:{nats_conf.start()}"
    link, mirror, _ = new_mirror("ria_tokens", url)
    run(link.connect())
    try:
        run(change_bucket(url, "ria_tokens", put={"t0": "agent-0", "gone": "x", "t1": "agent-1", "t2": "agent-2"},
                          delete=["gone"]))
        run(change_bucket(url, "ria_tokens", put={"t1": "agent-1b"}))  # the newest value of a key counts
        run(mirror.start())
        expected = {"t0": "agent-0", "t1": "agent-1b", "t2": "agent-2"}
        for _ in range(100):  # a read that ended early would show as a missing key
            run(mirror.reload())
            assert mirror.entries == expected
        empty = BucketMirror(link, "ria_seen")  # a bucket with nothing in it loads as empty
        run(empty.start())
        assert empty.entries == {}
        run(empty.stop())
    finally:
        run(mirror.stop())
        run(link.close())
