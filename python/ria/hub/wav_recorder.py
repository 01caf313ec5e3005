"""WAV recordings of a voice agent's microphone stream (docs/protocol.md §8): the decoded audio at the stream's
rate, with concealed gaps in place so that the file's timeline is the agent's sample index, and a JSON sidecar
(agent, session, format, start time, concealed frames and samples, the gaps).

The same life cycle as the SigMF recorder (recorder.py): segment() at every stream_info, write() per frame,
flush_meta() once a second, close(). f32 streams are written as 32-bit float WAV, s16 and Opus as 16-bit PCM.
The header's sizes are rewritten with the sidecar, so a hub that dies leaves a file a player reads up to the last
second. A file stops at MAX_WAV_BYTES (RIFF sizes are 32-bit) and the next part starts.
"""

import os
import struct
import time

from ..wire import audio
from .recording_files import RecordingFiles, utc_now

MAX_WAV_BYTES = 1 << 31
MAX_GAPS_LISTED = 1000  # gaps listed in one sidecar (all are counted)
_PCM, _FLOAT = 1, 3


def wav_header(fmt, rate, data_bytes):
    """A canonical RIFF/WAVE header: 16-bit PCM, or 32-bit IEEE float with the fact chunk it needs."""
    if fmt == "pcm16":
        body = struct.pack("<HHIIHH", _PCM, 1, rate, rate * 2, 2, 16)
        chunks = b"fmt " + struct.pack("<I", len(body)) + body
    else:
        body = struct.pack("<HHIIHHH", _FLOAT, 1, rate, rate * 4, 4, 32, 0)
        chunks = b"fmt " + struct.pack("<I", len(body)) + body + b"fact" + struct.pack("<II", 4, data_bytes // 4)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) + 8 + data_bytes) + b"WAVE" + chunks + \
        b"data" + struct.pack("<I", data_bytes)


class WavRecorder(RecordingFiles):
    def __init__(self, folder, agent_id, agent_name, app_id, clock=time.monotonic):
        super().__init__(folder, agent_id, agent_name, app_id, clock)
        self._key = None  # (stream sample_format, rate) of the open file

    @property
    def wav_path(self):
        return self.meta_path[:-len(".json")] + ".wav" if self.files else None

    def _open(self, sample_format, rate):
        self._open_part(".wav", ".json")
        self._key = (sample_format, rate)
        self._wav_format = "float32" if sample_format == "f32" else "pcm16"
        header = wav_header(self._wav_format, rate, 0)
        self._header_size = len(header)
        self._data.write(header)
        self._data_bytes = 0
        self.samples_written = 0
        self._meta = {"agent_id": self.agent_id, "agent_name": self.agent_name, "app_id": self.app_id,
                      "stream_format": sample_format, "wav_format": self._wav_format, "sample_rate": rate,
                      "channels": 1, "start_time": utc_now(), "start_sample_index": None, "samples": 0,
                      "frames": 0, "concealed_frames": 0, "concealed_samples": 0, "gaps": 0, "gap_list": []}

    def segment(self, sample_format, sample_rate, _center_frequency, global_index):
        """The stream goes on from `global_index` with these settings (a new file when they changed). False, and
        nothing more recorded, when the agent changes settings faster than the limit."""
        if not self._segments.take():
            return False
        rate = int(sample_rate)
        if self._data is None or self._key != (sample_format, rate):
            self._open(sample_format, rate)
        if self._meta["start_sample_index"] is None:
            self._meta["start_sample_index"] = int(global_index)
        self._meta_due = True
        return True

    def gap(self, dropped, reason):
        if self._data is not None:
            self._meta["gaps"] += 1
            if len(self._meta["gap_list"]) < MAX_GAPS_LISTED:
                self._meta["gap_list"].append({"at_sample": self.samples_written, "dropped_samples": dropped,
                                               "reason": reason})
            self._meta_due = True

    def write_samples(self, samples, frames=1, concealed_frames=0, concealed_samples=0):
        """Decoded float samples (−1..1) of `frames` received frames; the concealed counts say how many of them
        the hub made up for a gap."""
        if self._data is None or not len(samples):
            return
        data = audio.to_bytes(samples, "s16" if self._wav_format == "pcm16" else "f32")
        if self._data_bytes + len(data) > MAX_WAV_BYTES - self._header_size:
            key = self._key
            self._open(*key)
        self._data.write(data)
        self._data_bytes += len(data)
        self.samples_written += len(samples)
        m = self._meta
        m["samples"] = self.samples_written
        m["frames"] += frames
        m["concealed_frames"] += concealed_frames
        m["concealed_samples"] += concealed_samples
        self._meta_due = True

    def write(self, _payload):
        """Raw frames are not recorded: AudioIn hands over the decoded samples (write_samples)."""

    def close(self):
        if self._data is None:
            return
        try:
            self._write_meta()
        finally:
            self._data.close()
            self._data = None

    def _write_meta(self):
        """The header's sizes (so the WAV reads up to here), then the sidecar."""
        self._data.flush()
        end = self._data.tell()
        self._data.seek(0)
        self._data.write(wav_header(self._wav_format, self._key[1], self._data_bytes))
        self._data.seek(end)
        self._data.flush()
        self._meta["wav"] = os.path.basename(self.wav_path)
        self._replace_meta(self._meta)
