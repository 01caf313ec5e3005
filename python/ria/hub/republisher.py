"""Every agent's IQ on one ZeroMQ PUB socket, one topic per agent.

A stock GNU Radio `zeromq.sub_source` (item size gr_complex, key = the agent id) on any
machine receives a student's stream. Payloads are always cf32, whatever format the agent
sent, so that one sub_source setting fits every agent; a voice agent's microphone stream (not IQ)
is published decoded, as mono float32 (item size float) under the same topic. PUB never blocks: a slow subscriber
loses messages at its high-water mark, the hub does not slow down.
"""

import zmq

from ..wire.framing import to_complex

HIGH_WATER_MARK = 256  # messages per subscriber


class Republisher:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as e:
            self._sock.close()
            raise ValueError(f"cannot bind the ZeroMQ endpoint {endpoint!r}: {e}") from None
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.messages = 0

    def publish(self, agent_id, payload, sample_format):
        if sample_format != "cf32":
            payload = to_complex(payload, sample_format).tobytes()
        try:
            self._sock.send_multipart([agent_id.encode(), payload], flags=zmq.NOBLOCK, copy=False)
            self.messages += 1
        except zmq.Again:
            pass

    def publish_audio(self, agent_id, samples):
        self.publish(agent_id, samples.astype("<f4").tobytes(), "cf32")

    def close(self):
        self._sock.close()
