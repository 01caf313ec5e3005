"""The hub and agents as separate processes, as in a real lab: start them, read their output, stop them."""

import os
import re
import signal
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUB_APP = os.path.join(REPO, "apps", "ria_hub.py")
AGENT_APP = os.path.join(REPO, "apps", "ria_agent.py")
WAIT = 20.0


class Process:
    """A child process whose output lines are collected, so tests can wait for a line instead of sleeping."""

    def __init__(self, argv, env=None):
        self.argv = argv
        self._lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self):
        with self._cond:
            return "\n".join(self._lines)

    def wait_line(self, pattern, timeout=WAIT, start=0):
        """The first match of `pattern` in a line from index `start` on; raises with the output on timeout."""
        regex = re.compile(pattern)

        def find():
            for line in self._lines[start:]:
                m = regex.search(line)
                if m:
                    return m
            return None
        with self._cond:
            if not self._cond.wait_for(lambda: find() or self.proc.poll() is not None, timeout) or not find():
                raise AssertionError(f"no line matching {pattern!r} from {self.argv[1:3]}; output:\n{self.output}")
            return find()

    def line_count(self):
        with self._cond:
            return len(self._lines)

    def rss_mib(self):
        """The process's resident memory now, MiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signals the process and waits for it; kills it if it does not exit. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def python(script, *args):
    return [sys.executable, script, *args]


def run_app(script, *args, env=None, timeout=60):
    """Runs an app to completion; returns CompletedProcess with text output."""
    return subprocess.run(python(script, *args), capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def grcc(path, out_dir):
    """Compiles a .grc with grcc into out_dir; fails the test with grcc's output if anything went wrong."""
    result = subprocess.run(["grcc", "-o", str(out_dir), path], capture_output=True, text=True, timeout=120)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "Error while loading" not in log, log  # a broken block file only warns in grcc
    return log
