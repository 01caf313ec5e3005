"""A hub cluster on this machine for the cluster tests: a real nats-server with JetStream in a temporary folder,
hub nodes (`ria_hub.py serve --nats`) and a recorder worker as processes."""

import json
import os
import re
import shutil
import urllib.request

from gnuradio.ria.hub.client import HubClient
from processes import HUB_APP, Process, python

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsServer:
    def __init__(self, folder):
        self.folder = folder
        self.port = -1  # a free one, chosen by the server; kept for a restart
        self.process = None

    def start(self):
        self.process = Process([NATS_SERVER, "-js", "-sd", os.path.join(self.folder, "jetstream"), "-a", "127.0.0.1",
                                "-p", str(self.port)])
        m = self.process.wait_line(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
        self.process.wait_line(r"Server is ready")
        self.port = int(m.group(1))
        return self

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def stop(self):
        if self.process:
            self.process.stop()
            self.process = None


class Node:
    """One hub node process and a client of its API."""

    def __init__(self, name, process, url, data_dir):
        self.name, self.process, self.url, self.data_dir = name, process, url, data_dir
        with open(os.path.join(data_dir, "admin_token")) as f:
            self.api = HubClient(url, f.read().strip())

    def health(self):
        with urllib.request.urlopen(self.url + "/health", timeout=10) as response:
            return json.loads(response.read())


class Cluster:
    def __init__(self, folder, nats):
        self.folder, self.nats = folder, nats
        self.nodes = {}
        self.processes = []

    def start_node(self, name, *flags):
        data_dir = os.path.join(self.folder, f"node-{name}")
        process = Process(python(HUB_APP, "--data-dir", data_dir, "serve", "--port", "0", "--zmq", "",
                                 "--nats", self.nats.url, "--register-limit", "1000", *flags))
        self.processes.append(process)
        m = process.wait_line(r"listening on (http://\S+)")
        node = self.nodes[name] = Node(name, process, m.group(1), data_dir)
        return node

    def start_recorder(self, folder):
        process = Process(python(HUB_APP, "recorder", "--nats", self.nats.url, "--folder", folder))
        self.processes.append(process)
        process.wait_line(r"ria recorder on")
        return process

    def start_bridge(self):
        """The ZeroMQ bridge on a free port; (Process, endpoint)."""
        process = Process(python(HUB_APP, "bridge", "--nats", self.nats.url, "--zmq", "tcp://127.0.0.1:*"))
        self.processes.append(process)
        return process, process.wait_line(r"IQ republished on (\S+)").group(1)

    def close(self):
        for p in reversed(self.processes):
            p.stop()
        self.processes = []
