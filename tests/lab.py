"""A lab on this machine for the end-to-end tests: a hub process, agent processes, and the hub's API."""

import json
import os
import re
import time
import urllib.request

from gnuradio.ria.hub.client import HubClient, HubError
from processes import AGENT_APP, HUB_APP, WAIT, Process, python, run_app


RATE = 1.024e6
BIN = RATE / 1024  # the hub's spectrum resolution
EMITTER = 100.1e6  # riasim's default FM carrier


def start_session(lab, agent_id, serial, freq=100e6, **extra):
    rc = {"device": f"driver=riasim,serial={serial}", "center_frequency": freq, "sample_rate": RATE, "gain": 30,
          "buffer_size": 8192, **extra.pop("rc", {})}
    return lab.api.start(agent_id, rc, **extra)


def call_as(lab, token, method, path, body=None):
    """One API request with `token`: (200, the answer) or (the HTTP status, the hub's error message)."""
    try:
        return 200, HubClient(lab.url, token).request(method, path, body)
    except HubError as e:
        return e.status, str(e).split(": ", 1)[1]


def peak_near(view, hz):
    return abs(view["spectrum"]["peak_frequency"] - hz) <= 2 * BIN


class Lab:
    def __init__(self, folder, port=0, register_limit=20, serve_flags=()):
        self.folder = folder
        self.data_dir = os.path.join(folder, "hub")
        self.register_limit = register_limit
        self.serve_flags = list(serve_flags)
        self.processes = []
        self.hub = None
        self.start_hub(port)

    def start_hub(self, port=0):
        self.hub = Process(python(HUB_APP, "--data-dir", self.data_dir, "serve", "--port", str(port),
                                  "--zmq", "tcp://127.0.0.1:*", "--register-limit", str(self.register_limit),
                                  *self.serve_flags))
        self.processes.append(self.hub)
        m = self.hub.wait_line(r"listening on (http://\S+); IQ republished on (\S+)")
        self.url, self.zmq_endpoint = m.group(1), m.group(2)
        with open(os.path.join(self.data_dir, "admin_token")) as f:
            self.api = HubClient(self.url, f.read().strip())
        return self.hub

    def stop_hub(self):
        status = self.hub.stop()
        self.processes.remove(self.hub)
        return status

    def hub_cli(self, *args):
        return run_app(HUB_APP, "--data-dir", self.data_dir, "--hub", self.url, *args)

    def create_key(self, *args):
        result = self.hub_cli("keys", "create", *args)
        assert result.returncode == 0, result.stderr
        key_id = re.search(r"registration key (key-\w+)", result.stdout).group(1)
        return key_id, result.stdout.strip().splitlines()[-1]

    def register(self, name, key=None):
        """Registers an agent with `ria_agent.py register`; returns (config file, CompletedProcess)."""
        key = key or self.create_key()[1]
        config = os.path.join(self.folder, f"{name}.json")
        result = run_app(AGENT_APP, "--config", config, "register", "--hub", self.url, "--api-key", key,
                         "--name", name)
        return config, result

    def register_api(self, name, key=None):
        """Registers straight over HTTP (no agent process); returns (agent_id, token)."""
        key = key or self.create_key()[1]
        request = urllib.request.Request(self.url + "/screens/agents/register", method="POST",
                                         data=json.dumps({"name": name}).encode(),
                                         headers={"X-API-Key": key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        return answer["agent_id"], answer["token"]

    def start_agent(self, name, *extra):
        config, result = self.register(name)
        assert result.returncode == 0, result.stderr
        agent = Process(python(AGENT_APP, "--config", config, "run", "--heartbeat-interval", "1", "--simulator",
                               "--hardware", "mock", *extra))
        self.processes.append(agent)
        agent_id = re.search(r"registered as (agent-\w+)", result.stdout).group(1)
        return agent_id, agent

    @staticmethod
    def _poll(fetch, predicate, timeout, poll=0.1):
        """Fetches until predicate(value) holds; returns (True, value) or (False, the last value)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = fetch()
            if value and predicate(value):
                return True, value
            time.sleep(poll)
        return False, value

    def wait_agent(self, agent_id, predicate, timeout=WAIT):
        """Polls the hub's view of one agent until predicate(view) holds; returns the view."""
        ok, view = self._poll(lambda: next((a for a in self.api.agents() if a["agent_id"] == agent_id), None),
                              predicate, timeout)
        if not ok:
            raise AssertionError(f"agent {agent_id} never reached the expected state; last view: {view}")
        return view

    def wait_spectrum(self, agent_id, predicate, timeout=WAIT):
        ok, view = self._poll(lambda: self.api.spectrum(agent_id), lambda v: v["spectrum"] and predicate(v), timeout)
        if not ok:
            raise AssertionError(f"the spectrum of {agent_id} never matched; last: {view and view['stream']}")
        return view

    def close(self):
        for p in reversed(self.processes):
            p.stop()
        self.processes = []
