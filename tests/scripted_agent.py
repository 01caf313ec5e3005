"""An agent the test scripts message by message over a real WebSocket to a real hub process: to play a
peer that speaks only the base protocol (like the RIA agent: no acks, no stream_info), or a hostile one."""

import json
import threading

from websockets.sync.client import connect


class ScriptedAgent:
    def __init__(self, hub_url, token, agent_id=None):
        url = hub_url.replace("http://", "ws://") + "/screens/agent/ws" + (f"?agent_id={agent_id}" if agent_id else "")
        self.ws = connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None,
                          open_timeout=10)
        self.received = []  # what the hub sent, decoded
        self.closed = threading.Event()
        self.close_code = None
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for message in self.ws:
                with self._cond:
                    self.received.append(json.loads(message) if isinstance(message, str) else message)
                    self._cond.notify_all()
        except Exception:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            with self._cond:
                self._cond.notify_all()

    def send(self, msg):
        self.ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))

    def heartbeat(self, hardware=("mock",), status="idle", app_id=None, **extra):
        msg = {"type": "heartbeat", "hardware": list(hardware), "status": status, "capabilities": ["rx"],
               "tx_enabled": False, **extra}
        if app_id is not None:
            msg["app_id"] = app_id
        self.send(msg)

    def wait_message(self, kind, timeout=10.0, count=1):
        """The count-th message of this type from the hub, or None."""
        def found():
            matches = [m for m in self.received if isinstance(m, dict) and m.get("type") == kind]
            return matches[count - 1] if len(matches) >= count else None
        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.closed.is_set(), timeout)
            return found()

    def close(self):
        self.ws.close()
        self._reader.join(5)
