"""ria.websocket_iq_sink: streams a flowgraph's samples to a hub over one WebSocket."""

import time

import numpy as np
import pmt
from gnuradio import gr

from . import pmt_json
from .agent import config, hardware, protocol
from .agent.framing import FrameAssembler
from .agent.transport import Transport

VERSION = "0.1.0"
RETUNE_TAGS = {"rx_freq": "center_frequency", "rx_rate": "sample_rate"}  # tag -> stream_info field
# A Python block pays a fixed cost per work() call, and GNU Radio's default buffers hand a
# sink only ~5k samples a call. A long history makes the scheduler allocate a larger buffer
# in front of us (it sizes it from the consumer's history), so calls carry ~10x more samples.
# work() skips the HISTORY - 1 old samples at the start of its input.
HISTORY = 1 << 17


class websocket_iq_sink(gr.sync_block):
    """See grc/ria_websocket_iq_sink.block.yml for the user documentation."""

    def __init__(self, url="", token="", input_type="complex", buffer_size=protocol.DEFAULT_BUFFER_SIZE,
                 sample_format="cf32", overflow="drop", queue_frames=64, heartbeat_interval=30.0,
                 autostart=False, app_id="", hardware_names="", ca_file="", insecure=False,
                 token_in_query=False, agent_name="gr-ria"):
        if input_type not in ("complex", "float"):
            raise ValueError(f"input_type must be 'complex' or 'float', got {input_type!r}")
        dtype = np.complex64 if input_type == "complex" else np.float32
        gr.sync_block.__init__(self, name="ria_websocket_iq_sink", in_sig=[dtype], out_sig=None)
        self.set_history(HISTORY)
        if overflow not in ("drop", "block"):
            raise ValueError(f"overflow must be 'drop' or 'block', got {overflow!r}")
        if autostart and not app_id:
            raise ValueError("autostart needs an app_id")
        if not url:
            saved = config.load()
            if not saved.get("hub_url"):
                raise ValueError(f"url is empty and {config.path()} has no hub_url: give a URL or register first")
            url = config.ws_url(saved["hub_url"], saved.get("agent_id", ""))
            token = token or saved.get("token", "")
        self._dtype = dtype
        self._assembler = FrameAssembler(int(buffer_size), sample_format, dtype)  # validates both
        self._overflow = overflow
        self._autostart_app = app_id if autostart else None
        self._hardware_names = [h.strip() for h in hardware_names.split(",") if h.strip()] or None
        self._agent = {"name": agent_name, "version": VERSION}
        self._transport_args = dict(url=url, token=token, heartbeat_interval=float(heartbeat_interval),
                                    ca_file=ca_file or None, insecure=bool(insecure),
                                    token_in_query=bool(token_in_query), max_frames_queued=int(queue_frames))
        Transport(on_message=None, heartbeat=None, **self._transport_args)  # validates the arguments now
        self._transport = None

        self._streaming = False
        self._app_id = None
        self._sample_index = 0
        self.samples_produced = 0
        self._stream = {"sample_rate": 0.0, "center_frequency": 0.0, "gain": 0.0}
        self._info_due = False
        self._pending = []  # frames a 'block' policy could not queue yet
        self._sdr_overflows = 0
        self._started_at = time.monotonic()

        for port in ("cmd", "to_hub"):
            self.message_port_register_in(pmt.intern(port))
        self.set_msg_handler(pmt.intern("cmd"), self._handle_cmd)
        self.set_msg_handler(pmt.intern("to_hub"), self._handle_to_hub)
        self.message_port_register_out(pmt.intern("ctrl"))

    # ---------------------------------------------------------------- life cycle

    def start(self):
        if self._hardware_names is None:
            self._hardware_names = hardware.hardware_names()
        self._started_at = time.monotonic()
        self._transport = Transport(on_message=self._from_hub, heartbeat=self._heartbeat, on_connect=self._on_connect,
                                    logger=_GrLogger(self.logger), **self._transport_args)
        self._transport.start()
        if self._autostart_app:
            self._begin(self._autostart_app)
        return True

    def stop(self):
        # A finite stream (a file, a test vector) ends here: deliver its tail if the hub
        # takes it within the budget, and return within a second whatever the network does.
        if self._transport is not None:
            if self._streaming:
                self._cut()
                self._transport.wait_drained(0.5)
            self._transport.close(0.45)
        return True

    # ---------------------------------------------------------------- counters

    @property
    def transport(self):
        return self._transport

    def stats(self):
        s = self._transport.stats() if self._transport else {}
        s["sdr_overflows"] = self._sdr_overflows
        s["uptime_s"] = round(time.monotonic() - self._started_at, 1)
        return s

    def streaming(self):
        return self._streaming

    def app_id(self):
        """The session's app_id while streaming, else None."""
        return self._app_id if self._streaming else None

    def _on_connect(self):
        # A hub that restarted mid-session knows nothing of it: after a reconnect, describe the stream again
        # before the next frame. (On the first connection the session's own stream_info is already queued.)
        if self._streaming and self._transport.reconnects > 0:
            self._info_due = True

    def _heartbeat(self):
        return protocol.heartbeat(self._hardware_names or [], self._streaming, self._app_id, self._agent,
                                  self.stats())

    # ---------------------------------------------------------------- messages

    def _from_hub(self, msg):
        self.message_port_pub(pmt.intern("ctrl"), pmt_json.to_pmt(msg))

    def _handle_to_hub(self, msg):
        value = pmt_json.to_python(msg)
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            self.logger.warn(f"to_hub: expected a dict with a 'type', got {pmt.write_string(msg)[:200]}")
            return
        if self._transport:
            self._transport.send_control(value)

    def _handle_cmd(self, msg):
        value = pmt_json.to_python(msg)
        if not isinstance(value, dict):
            self.logger.warn(f"cmd: expected a dict, got {pmt.write_string(msg)[:200]}")
            return
        try:
            self._apply_cmd(value)
        except ValueError as e:
            self.logger.warn(f"cmd: {e}")
            if self._transport:
                self._transport.send_control(protocol.error(self._app_id, str(e)))

    def _apply_cmd(self, cmd):
        if "sdr_overflows" in cmd:
            self._sdr_overflows = int(cmd["sdr_overflows"])
        stream_keys = {k: float(cmd[k]) for k in self._stream if k in cmd}
        fmt = cmd.get("sample_format", self._assembler.sample_format)
        size = cmd.get("buffer_size", self._assembler.buffer_size)
        if (fmt, size) != (self._assembler.sample_format, self._assembler.buffer_size):
            new = FrameAssembler(int(size), fmt, self._dtype)  # raises ValueError for bad values
            self._cut()
            self._assembler = new
            self._info_due = True
        if stream_keys and stream_keys != {k: self._stream[k] for k in stream_keys}:
            self._stream.update(stream_keys)
            self._cut()
            self._info_due = True
        if "stream" in cmd:
            if cmd["stream"] and not self._streaming:
                self._begin(cmd.get("app_id") or self._app_id or "")
            elif not cmd["stream"] and self._streaming:
                self._end()
        elif "app_id" in cmd:
            self._app_id = cmd["app_id"]

    def _begin(self, app_id):
        self._app_id = app_id
        self._streaming = True
        self._sample_index = 0
        self._info_due = True

    def _end(self):
        self._cut()
        self._streaming = False
        self._pending.clear()

    # ---------------------------------------------------------------- stream

    def _send_info(self):
        self._info_due = False
        self._transport.send_text_in_order(protocol.stream_info(
            self._app_id, self._stream["sample_rate"], self._stream["center_frequency"], self._stream["gain"],
            self._assembler.sample_format, self._sample_index))

    def _queue(self, frame):
        payload, n = frame
        if self._info_due:
            self._send_info()
        index = self._sample_index
        self._sample_index += n
        item = (payload, n, index)
        if self._pending or not self._offer(item):
            self._pending.append(item)

    def _offer(self, item):
        payload, n, index = item
        return self._transport.send_frame(payload, n, index, self._app_id, block=self._overflow == "block")

    def _cut(self):
        frame = self._assembler.cut()
        if frame and self._streaming:
            self._queue(frame)

    def _retune_points(self, start, n):
        """Relative offsets in this window where a tag changes frequency or rate, with the new values."""
        points = {}
        for tag in self.get_tags_in_range(0, start, start + n):
            field = RETUNE_TAGS.get(pmt.symbol_to_string(tag.key))
            if field:
                points.setdefault(tag.offset - start, {})[field] = pmt.to_double(tag.value)
        return sorted(points.items())

    def work(self, input_items, output_items):
        samples = input_items[0][HISTORY - 1:]
        n = len(samples)
        if not self._streaming or self._transport is None:
            return n
        while self._pending:  # 'block' policy: what did not fit last time goes first
            if not self._offer(self._pending[0]):
                return 0  # no progress; the scheduler may stop us here
            self._pending.pop(0)
        self.samples_produced += n
        pos = 0
        for offset, values in self._retune_points(self.nitems_read(0), n):
            for frame in self._assembler.push(samples[pos:offset]):
                self._queue(frame)
            self._cut()  # the frame ends at the tag
            changed = {k: v for k, v in values.items() if self._stream[k] != v}
            self._stream.update(values)
            self._info_due = self._info_due or bool(changed)
            pos = offset
        for frame in self._assembler.push(samples[pos:]):
            self._queue(frame)
        return n


class _GrLogger:
    """Adapts a GNU Radio block logger to the logging-style calls the transport makes."""

    def __init__(self, gr_logger):
        self._log = gr_logger

    def info(self, fmt, *args):
        self._log.info(fmt % args if args else fmt)

    def warning(self, fmt, *args):
        self._log.warn(fmt % args if args else fmt)
