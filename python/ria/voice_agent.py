"""ria.voice_agent: a voice device for a hub in one block; microphone in, speaker out.

hub -> ria.websocket_source (float) -> speaker (the output) and ria.aec's reference;
microphone (the input) -> ria.aec -> ria.websocket_iq_sink (float) -> hub, on the agent's one connection.
ria.control_handler runs the hub's play sessions on the speaker stream and reports the voice figures."""

import mmap

from gnuradio import blocks, gr

from .agent import config
from .control_handler import control_handler
from .ria_python import aec
from .websocket_iq_sink import websocket_iq_sink
from .websocket_source import websocket_source
from .wire import audio

RATES = (16000, 48000)
LEVEL_SECONDS = 1.0  # the meters' time constant (levels are RMS over about the last second)
LEVELS_PER_SECOND = 10


class voice_agent(gr.hier_block2):
    """See grc/ria_voice_agent.block.yml for the user documentation."""

    def __init__(self, url="", token="", sample_rate=16000, sample_format="f32", bitrate=audio.DEFAULT_OPUS_BITRATE,
                 tail_length=0.4, max_delay=1.0, queue_seconds=0.2, app_id="voice", heartbeat_interval=30.0,
                 ca_file="", insecure=False, agent_name="gr-ria voice agent", residual_suppression=True,
                 noise_suppression=False):
        gr.hier_block2.__init__(self, "ria_voice_agent", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(1, 1, gr.sizeof_float))
        if sample_rate not in RATES:
            raise ValueError(f"sample_rate must be one of {', '.join(map(str, RATES))} Hz, got {sample_rate!r}")
        if sample_format not in audio.FORMATS:
            raise ValueError(f"sample_format must be one of {', '.join(audio.FORMATS)}, got {sample_format!r}")
        frame = audio.frame_samples(sample_rate)  # 20 ms: ria.aec's step, the wire frame and the buffers
        url, token = config.hub_connection(url, token)  # once: both directions ride on one connection
        self.speaker = websocket_source(url=url, token=token, output_type="float", queue_seconds=queue_seconds,
                                        sample_rate=sample_rate, heartbeat_interval=heartbeat_interval,
                                        ca_file=ca_file, insecure=insecure)
        self.aec = aec(sample_rate, frame, tail_length, max_delay, residual_suppression, noise_suppression)
        self.mic_sink = websocket_iq_sink(url=url, token=token, input_type="float", buffer_size=frame,
                                          sample_format=sample_format, bitrate=bitrate, overflow="drop",
                                          queue_seconds=queue_seconds, sample_rate=sample_rate,
                                          heartbeat_interval=heartbeat_interval, autostart=True, app_id=app_id,
                                          hardware_names=[], ca_file=ca_file, insecure=insecure, agent_name=agent_name)
        self.handler = control_handler(default_device="", offer_simulator=False, audio_in=True, audio_out=True,
                                       radio=False)
        # What the speaker plays may run ahead of the sound card by no more than a frame or two of buffer; GNU Radio's
        # buffers are at least a memory page (1024 floats), so asking for less only logs a warning at each start.
        self.speaker.set_max_output_buffer(max(frame, mmap.PAGESIZE // gr.sizeof_float))

        self.connect(self.speaker, self)
        self.connect(self.speaker, (self.aec, 1))
        self.connect(self, (self.aec, 0))
        self.connect(self.aec, self.mic_sink)

        self.levels = {}
        for name, upstream in (("speaker_dbfs", self.speaker), ("mic_dbfs", self), ("out_dbfs", self.aec)):
            self.levels[name] = self._meter(upstream, sample_rate)
        self.handler.level_probes = self.levels

        self.msg_connect(self.mic_sink, "ctrl", self.handler, "ctrl")
        self.msg_connect(self.handler, "to_hub", self.mic_sink, "to_hub")
        self.msg_connect(self.handler, "sink", self.mic_sink, "cmd")
        self.msg_connect(self.handler, "speaker", self.speaker, "cmd")
        self.msg_connect(self.speaker, "status", self.handler, "speaker_status")
        self.msg_connect(self.aec, "status", self.handler, "aec_status")

    def _meter(self, upstream, rate):
        """RMS with a one-second time constant, a tenth of a second apart, for the handler to read."""
        rms = blocks.rms_ff(1.0 / (LEVEL_SECONDS * rate))
        keep = blocks.keep_one_in_n(gr.sizeof_float, rate // LEVELS_PER_SECOND)
        probe = blocks.probe_signal_f()
        self.connect(upstream, rms, keep, probe)
        return probe

    def stats(self):
        """The voice figures of the handler (ERLE, delay, drift, levels), for the health snapshot."""
        return self.handler.voice.stats()

