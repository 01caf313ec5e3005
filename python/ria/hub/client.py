"""A small client for the hub's HTTP API, used by the CLI, the demo and the tests."""

import json
import urllib.error
import urllib.parse
import urllib.request


class HubError(Exception):
    """The hub answered with an error; str() is its message, .status the HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class HubClient:
    def __init__(self, url, admin_token, timeout=15.0, where=""):
        self.url = url.rstrip("/")
        self._where = f" (from {where})" if where else ""  # where the URL came from, for the error
        self._token = admin_token
        self.timeout = timeout

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self._token}",
                                              "Content-Type": "application/json"})
        return self._send(req, self.timeout)

    def _send(self, req, timeout):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                payload = json.loads(raw)
                message = payload.get("error") or payload.get("detail") or raw.decode()
            except ValueError:
                message = raw.decode("utf-8", "replace") or e.reason
            raise HubError(e.code, f"HTTP {e.code}: {message}") from None
        except urllib.error.URLError as e:
            raise HubError(0, f"cannot reach the hub at {self.url}{self._where}: {e.reason}") from None

    def agents(self):
        return self.request("GET", "/api/agents")["agents"]

    def agent(self, agent_id):
        return self.request("GET", f"/api/agents/{agent_id}")

    def start(self, agent_id, radio_config=None, app_id=None, record=False):
        body = {"radio_config": radio_config or {}, "record": record}
        if app_id:
            body["app_id"] = app_id
        return self.request("POST", f"/api/agents/{agent_id}/start", body)

    def stop(self, agent_id):
        return self.request("POST", f"/api/agents/{agent_id}/stop", {})

    def configure(self, agent_id, radio_config):
        return self.request("POST", f"/api/agents/{agent_id}/configure", {"radio_config": radio_config})

    def spectrum(self, agent_id):
        return self.request("GET", f"/api/agents/{agent_id}/spectrum")

    def record(self, agent_id, on):
        return self.request("POST", f"/api/agents/{agent_id}/record", {"on": on})

    def create_key(self, uses=1, ttl_s=None, label=""):
        return self.request("POST", "/api/keys", {"uses": uses, "ttl_s": ttl_s, "label": label})

    # ---------------------------------------------------------------- TX (docs/protocol.md §6)

    def tx_start(self, agent_id, radio_config, source, app_id=None):
        body = {"radio_config": radio_config, "source": source}
        if app_id:
            body["app_id"] = app_id
        return self.request("POST", f"/api/agents/{agent_id}/tx", body)

    def tx_upload(self, path, chunks, timeout=60.0):
        """Streams `chunks` (an iterable of bytes) as a chunked request body to the upload path tx_start gave."""
        req = urllib.request.Request(self.url + path, data=chunks, method="POST",
                                     headers={"Authorization": f"Bearer {self._token}",
                                              "Content-Type": "application/octet-stream"})
        return self._send(req, timeout)

    def tx_configure(self, agent_id, radio_config):
        return self.request("POST", f"/api/agents/{agent_id}/tx/configure", {"radio_config": radio_config})

    def tx_stop(self, agent_id):
        return self.request("POST", f"/api/agents/{agent_id}/tx/stop", {})

    # ---------------------------------------------------------------- voice agents (docs/protocol.md §8)

    def say(self, agent_id, text, **options):
        """options: voice, sample_format, sample_rate, volume_db, bitrate, app_id (None: the hub's default)."""
        body = {"text": text, **{k: v for k, v in options.items() if v is not None}}
        return self.request("POST", f"/api/agents/{agent_id}/say", body)

    def play(self, agent_id, wav_bytes, timeout=60.0, **options):
        """A WAV file's bytes to the agent's speaker; options as for say, and name."""
        query = urllib.parse.urlencode({k: v for k, v in options.items() if v is not None})
        req = urllib.request.Request(f"{self.url}/api/agents/{agent_id}/play" + (f"?{query}" if query else ""),
                                     data=wav_bytes, method="POST",
                                     headers={"Authorization": f"Bearer {self._token}", "Content-Type": "audio/wav"})
        return self._send(req, timeout)
