"""SigMF recordings of an agent's stream: the raw frames as they arrived, plus metadata.

A capture segment starts at every stream_info (new center frequency) and after every gap,
with core:global_index holding the agent's sample index, so lost samples are visible. SigMF
has one sample rate and one datatype per recording, so a change of either starts a new file.

What an agent can make the recorder do is bounded: segments are rate-limited (a token bucket),
a file holds at most MAX_CAPTURES_PER_FILE captures, and the meta file of the open recording is
rewritten at most once per META_WRITE_PERIOD_S (and on close), never once per segment.
"""

import time

from ..wire.protocol import BYTES_PER_SAMPLE
from .limits import MAX_CAPTURES_PER_FILE
from .recording_files import RecordingFiles, utc_now

DATATYPES = {"cf32": "cf32_le", "cs16": "ci16_le", "cs8": "ci8"}
SIGMF_VERSION = "1.2.0"


class SigmfRecorder(RecordingFiles):
    def __init__(self, folder, agent_id, agent_name, app_id, clock=time.monotonic):
        super().__init__(folder, agent_id, agent_name, app_id, clock)
        self._format = self._rate = None
        self.samples_written = 0  # in the current file

    def _open(self, sample_format, sample_rate):
        self._open_part(".sigmf-data", ".sigmf-meta")
        self._format, self._rate = sample_format, sample_rate
        self._captures, self._annotations = [], []
        self.samples_written = 0

    def segment(self, sample_format, sample_rate, center_frequency, global_index):
        """A new capture segment from the next frame on (new file if format or rate changed, or the
        file is full). Returns False, and records nothing more, when segments come faster than the limit."""
        if not self._segments.take():
            return False
        if self._data is None or (sample_format, sample_rate) != (self._format, self._rate) \
                or len(self._captures) + len(self._annotations) >= MAX_CAPTURES_PER_FILE:
            self._open(sample_format, sample_rate)
        capture = {"core:sample_start": self.samples_written, "core:global_index": int(global_index),
                   "core:frequency": float(center_frequency), "core:datetime": utc_now()}
        if self._captures and self._captures[-1]["core:sample_start"] == self.samples_written:
            self._captures[-1] = capture  # nothing was recorded under the previous one
        else:
            self._captures.append(capture)
        self._meta_due = True
        self.flush_meta(force=len(self._captures) == 1)
        return True

    def gap(self, dropped, reason):
        if self._data is not None:
            self._annotations.append({"core:sample_start": self.samples_written, "core:sample_count": 0,
                                      "core:comment": f"gap: {dropped} samples lost ({reason})"})

    def write(self, payload):
        if self._data is None:
            return
        self._data.write(payload)
        self.samples_written += len(payload) // BYTES_PER_SAMPLE[self._format]

    def close(self):
        if self._data is None:
            return
        self._data.close()
        self._data = None
        self._write_meta()

    def _write_meta(self):
        meta = {
            "global": {
                "core:datatype": DATATYPES[self._format],
                "core:sample_rate": float(self._rate),
                "core:version": SIGMF_VERSION,
                "core:recorder": "gr-ria lab hub",
                "core:description": f"agent {self.agent_name} ({self.agent_id}), session {self.app_id}",
                "core:num_channels": 1,
            },
            "captures": self._captures,
            "annotations": self._annotations,
        }
        self._replace_meta(meta)
