"""What the SigMF and the WAV recorders share: names that never overwrite an earlier recording, the limit on how
fast an agent can start segments, and a meta file rewritten at most once per META_WRITE_PERIOD_S (and on close)."""

import datetime
import json
import os

from .limits import META_WRITE_PERIOD_S, SEGMENT_BURST, SEGMENT_RATE, TokenBucket


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RecordingFiles:
    """A recording in parts: each part is a data file (`self._data` while open) and a meta file (`self.files`)."""

    def __init__(self, folder, agent_id, agent_name, app_id, clock):
        self.folder = folder
        self.agent_id, self.agent_name, self.app_id = agent_id, agent_name, app_id
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self._base = os.path.join(folder, f"{agent_id}-{stamp}")
        os.makedirs(folder, exist_ok=True)
        self._part = 0
        self._data = None
        self.files = []  # the meta files written so far
        self._clock = clock
        self._segments = TokenBucket(SEGMENT_BURST, SEGMENT_RATE, clock)
        self._meta_due = False
        self._meta_written = -META_WRITE_PERIOD_S

    @property
    def meta_path(self):
        return self.files[-1] if self.files else None

    def _open_part(self, data_suffix, meta_suffix):
        """Closes the open part and opens the next; returns its path without suffix."""
        self.close()
        self._part += 1
        base = self._base if self._part == 1 else f"{self._base}-{self._part}"
        for n in range(2, 10000):  # never over a file of an earlier recording in the same second
            try:
                self._data = open(base + data_suffix, "xb")
                break
            except FileExistsError:
                base = f"{self._base}-{self._part}.{n}"
        self.files.append(base + meta_suffix)
        return base

    def flush_meta(self, force=False):
        """Writes the meta file if it changed and the last write is old enough (or force)."""
        if self._data is not None and self._meta_due and \
                (force or self._clock() - self._meta_written >= META_WRITE_PERIOD_S):
            self._write_meta()

    def _replace_meta(self, meta):
        """The meta file, written whole or not at all."""
        self._meta_due, self._meta_written = False, self._clock()
        tmp = self.meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)
        os.replace(tmp, self.meta_path)

    def close(self):
        raise NotImplementedError

    def _write_meta(self):
        raise NotImplementedError
