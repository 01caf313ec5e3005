"""The GNU Radio user's path and the field agent's path, run as they run outside this repository.

GNU Radio Companion runs a generated flowgraph as `/usr/bin/python3 generated.py`; a system-wide install and
a systemd unit run Debian's interpreter too. So everything here runs under /usr/bin/python3 (and Debian's
/usr/bin/grcc) with an environment that holds a freshly installed prefix and nothing else: no virtual
environment, no LD_LIBRARY_PATH (the Python module must find libgnuradio-ria through its RPATH). Only the hubs
run in the test interpreter: they are servers, allowed their own virtual environment.
"""

import array
import glob
import json
import math
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import wave

import numpy as np
import pytest
import yaml

from gnuradio.ria.wire import opus
from hub_server import HubServer
from lab import EMITTER, Lab, peak_near, start_session
from processes import REPO, Process

SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEM_GRCC = "/usr/bin/grcc"
BUILD = os.path.join(REPO, "build")
EXAMPLES_DIR = os.path.join(REPO, "examples")
LABS = os.path.join(EXAMPLES_DIR, "labs")
OPERATIONS = os.path.join(REPO, "docs", "operations.md")
TOKEN = "gr-user-token"
WAIT = 30.0
APP_ID = "gr-user"

# Every example, and the test below that runs it (test_every_example_is_run_here keeps this complete).
IQ_AGENTS = {  # .grc -> needs a screen (QT GUI)
    "iq_agent.grc": False,
    "iq_agent_wired.grc": False,
    "labs/01_stream_and_look/stream_and_look.grc": False,
    "labs/02_find_the_emitter/find_the_emitter.grc": True,
    "labs/03_unplug_and_recover/unplug_and_recover.grc": False,
    "labs/04_guard_block/guard_block.grc": False,
    "labs/05_transmit_and_find_it/transmit_and_find_it.grc": False,
}
OTHER_EXAMPLES = {
    "sdr_source_headless.grc": "test_headless_source_example_runs_to_its_end",
    "sdr_sink_tone.grc": "test_sink_tone_example_transmits",
    "sdr_source_spectrum.grc": "test_spectrum_example_runs_offscreen",
    "voice_agent_file.grc": "test_voice_agent_from_files_streams_to_a_hub",
    "voice_agent.grc": "test_voice_agent_with_a_sound_card_streams_to_a_hub",
    "voice_agent_room.grc": "test_voice_agent_in_a_simulated_room_streams_to_a_hub",
}


# ---------------------------------------------------------------- the installed prefix and its environment

class Installed:
    """A fresh `cmake --install` of ./build, and environments that hold that prefix only."""

    def __init__(self, prefix, home):
        self.prefix = str(prefix)
        pydirs = glob.glob(os.path.join(self.prefix, "lib", "python3*", "*-packages"))
        assert len(pydirs) == 1, pydirs
        self.pydir = pydirs[0]
        self.home = str(home)
        self.agent_app = os.path.join(self.prefix, "bin", "ria_agent.py")
        self.grc_blocks = os.path.join(self.prefix, "share", "gnuradio", "grc", "blocks")

    def env(self, home=None, riasim=False, **extra):
        """HOME, PATH=/usr/bin:/bin and the prefix's three search paths; with riasim=True also the riasim
        control directory of this test (set by conftest's `serial` fixture)."""
        env = {"HOME": str(home or self.home), "PATH": "/usr/bin:/bin", "PYTHONPATH": self.pydir,
               "SOAPY_SDR_PLUGIN_PATH": os.path.join(self.prefix, "lib", "SoapySDR", "modules0.8"),
               "GRC_BLOCKS_PATH": self.grc_blocks}
        if riasim:
            env["RIASIM_CONTROL_DIR"] = os.environ["RIASIM_CONTROL_DIR"]
        env.update(extra)
        return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        pytest.fail("no build/ here: run scripts/setup.sh (scripts/test.sh does) first")
    for tool in (SYSTEM_PYTHON, SYSTEM_GRCC):
        assert os.access(tool, os.X_OK), f"{tool} is missing: GNU Radio comes from Debian's gnuradio package"
    prefix = tmp_path_factory.mktemp("prefix")
    result = subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return Installed(prefix, tmp_path_factory.mktemp("home"))


class Isolated(Process):
    """processes.Process with exactly the environment given (Process adds the test's own os.environ)."""

    def __init__(self, argv, env):
        self.argv = argv
        self._lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


def run_system_python(args, env, timeout=60):
    return subprocess.run([SYSTEM_PYTHON, *args], env=env, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- grcc

@pytest.fixture(scope="module")
def compiled(installed, tmp_path_factory):
    """compile(rel) -> the generated script of examples/<rel>, compiled once per module by Debian's grcc."""
    out = tmp_path_factory.mktemp("generated")
    done = {}

    def compile(rel):
        if rel not in done:
            path = os.path.join(EXAMPLES_DIR, rel)
            result = subprocess.run([SYSTEM_GRCC, "-o", str(out), path], env=installed.env(), capture_output=True,
                                    text=True, timeout=120)
            log = result.stdout + result.stderr
            assert result.returncode == 0, log
            assert "Error while loading" not in log, log  # a broken block file only warns in grcc
            assert installed.grc_blocks in log, log  # the [RIA] blocks came from the installed prefix
            with open(path) as f:
                flowgraph_id = yaml.safe_load(f)["options"]["parameters"]["id"]
            script = out / f"{flowgraph_id}.py"
            assert script.exists(), log
            done[rel] = str(script)
        return done[rel]
    return compile


def grc_buffer_size(rel):
    """The samples per frame that the example's .grc sets in its agent or sink block."""
    with open(os.path.join(EXAMPLES_DIR, rel)) as f:
        blocks = yaml.safe_load(f)["blocks"]
    return next(int(b["parameters"]["buffer_size"]) for b in blocks if "buffer_size" in b["parameters"])


def run_generated(installed, script, *args, qt=False, **env):
    """Runs a generated flowgraph as GRC's Run does (the options block's Run Command, `{python} -u {filename}`,
    with GRC's own interpreter, Debian's), in the prefix-only environment."""
    if qt:
        env.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen here; Qt's offscreen platform draws in memory
    return Isolated([SYSTEM_PYTHON, "-u", script, *args], installed.env(**env))


def skip_if_qt_has_no_platform(process):
    if process.proc.poll() is not None and "qt.qpa.plugin" in process.output:
        pytest.skip(f"QT GUI example: Qt cannot open even its offscreen platform here:\n{process.output}")


# ---------------------------------------------------------------- the module under Debian's interpreter

IMPORT_CHECK = """
import json, os, sys
import gnuradio
from gnuradio import ria
agent = ria.iq_agent(url="ws://127.0.0.1:9/screens/agent/ws?agent_id=x", token="t")
with open("/proc/self/maps") as f:
    libs = sorted({line.split()[-1] for line in f if "libgnuradio-ria" in line})
print(json.dumps({"ria": ria.__file__, "gnuradio": gnuradio.__file__, "libs": libs,
                  "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("websockets", "aiohttp")
                                    or m.startswith("gnuradio.ria.hub"))}))
"""


def test_module_imports_under_debian_python_with_the_prefix_alone(installed):
    result = run_system_python(["-c", IMPORT_CHECK], installed.env())
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ria"] == os.path.join(installed.pydir, "gnuradio", "ria", "__init__.py")
    assert seen["gnuradio"].startswith("/usr/lib/python3/dist-packages/"), seen["gnuradio"]
    assert seen["ld_library_path"] is None
    # the C++ library was found through the Python module's RPATH, in this prefix and nowhere else
    assert seen["libs"] and all(lib.startswith(installed.prefix + "/lib/") for lib in seen["libs"]), seen["libs"]
    # the blocks' network path is C++: no Python WebSocket or HTTP server library, no hub code
    assert seen["modules"] == [], seen["modules"]


@pytest.mark.parametrize("rel", sorted(list(IQ_AGENTS) + list(OTHER_EXAMPLES)))
def test_example_compiles_with_debian_grcc(compiled, rel):
    compiled(rel)


def test_every_example_is_run_here():
    found = {os.path.relpath(p, EXAMPLES_DIR) for p in glob.glob(os.path.join(EXAMPLES_DIR, "**", "*.grc"),
                                                                 recursive=True)}
    assert found == set(IQ_AGENTS) | set(OTHER_EXAMPLES), "a new example needs its run test in this file"
    assert all(callable(globals().get(name)) for name in OTHER_EXAMPLES.values())


# ---------------------------------------------------------------- IQ agent flowgraphs against a hub

def start_message(serial, freq=100e6):
    return {"type": "start", "app_id": APP_ID, "radio_config": {
        "device": f"driver=riasim,serial={serial}", "sample_rate": 1e6, "center_frequency": freq}}


def wait_connected(hub, agent, qt=False):
    """Waits for the first heartbeat; fails at once if the flowgraph exits first (as the one-drag examples did)."""
    deadline = time.monotonic() + WAIT
    while not hub.wait_for(lambda s: s.texts("heartbeat"), 0.2):
        if agent.proc.poll() is not None:
            if qt:
                skip_if_qt_has_no_platform(agent)
            raise AssertionError(f"{agent.argv[2]} exited with {agent.proc.returncode} without connecting to the "
                                 f"hub; output:\n{agent.output}")
        assert time.monotonic() < deadline, f"{agent.argv[2]} never connected to the hub; output:\n{agent.output}"


def stream_one_session(hub, agent, serial, buffer_size):
    """start -> streaming, exact-size frames, stream_info; stop -> idle, and the flowgraph waits for more."""
    hub.send(start_message(serial))
    status = hub.wait_text("status", WAIT)
    assert status == {"type": "status", "status": "streaming", "app_id": APP_ID}, \
        (status, hub.texts("error"), agent.output)
    assert hub.wait_for(lambda s: len(s.binary()) >= 5, WAIT), agent.output
    assert [len(b) for b in hub.binary()[:5]] == [8 * buffer_size] * 5  # cf32 frames of the .grc's size
    info = hub.wait_text("stream_info", WAIT)
    assert (info["app_id"], info["center_frequency"], info["sample_rate"]) == (APP_ID, 100e6, 1e6)
    hub.send({"type": "stop", "app_id": APP_ID})
    assert hub.wait_text("status", WAIT, count=2) == {"type": "status", "status": "idle", "app_id": APP_ID}, \
        (hub.texts(), agent.output)
    assert agent.proc.poll() is None, agent.output  # stopped session, running flowgraph


@pytest.mark.parametrize("rel", sorted(IQ_AGENTS))
def test_iq_agent_example_connects_streams_and_stops(installed, compiled, serial, rel):
    """Each IQ agent flowgraph, generated and run as GRC runs it, with the hub URL and token as the
    command-line options that its `parameter` blocks become. The one-drag iq_agent.grc and lab 1 used to
    exit after a second without connecting (a hier block without ports joined no flowgraph)."""
    script = compiled(rel)
    hub = HubServer(token=TOKEN).start()
    agent = run_generated(installed, script, "--url", hub.url(), "--token", TOKEN, qt=IQ_AGENTS[rel], riasim=True)
    try:
        wait_connected(hub, agent, qt=IQ_AGENTS[rel])
        stream_one_session(hub, agent, serial, grc_buffer_size(rel))
        assert agent.stop() == 0, agent.output  # SIGTERM: the generated main stops the flowgraph, exits 0
    finally:
        agent.stop()
        hub.stop()


def test_unplug_lab_recovers_through_the_riasim_control_command(installed, compiled, serial):
    """Lab 3 as its README has students do it: the unplug and replug come from
    `python3 -m gnuradio.ria.riasim_control` in another terminal, under Debian's interpreter."""
    script = compiled("labs/03_unplug_and_recover/unplug_and_recover.grc")
    hub = HubServer(token=TOKEN).start()
    agent = run_generated(installed, script, "--url", hub.url(), "--token", TOKEN, riasim=True)
    try:
        wait_connected(hub, agent)
        hub.send(start_message(serial))
        agent.wait_line(r"\(event \. streaming\)", WAIT)
        for action, event in (("unplug", "disconnected"), ("replug", "reconnected")):
            mark = agent.line_count()
            result = run_system_python(["-m", "gnuradio.ria.riasim_control", action, serial],
                                       installed.env(riasim=True))
            assert result.returncode == 0, result.stdout + result.stderr
            agent.wait_line(rf"\(event \. {event}\)", WAIT, start=mark)
        assert any("SDR disconnected" in e.get("message", "") for e in hub.texts("error") + hub.texts("status")), \
            hub.texts()
        frames = len(hub.binary())
        assert hub.wait_for(lambda s: len(s.binary()) >= frames + 5, WAIT), agent.output  # streaming again
        assert agent.stop() == 0, agent.output
    finally:
        agent.stop()
        hub.stop()


def test_guard_lab_refuses_a_frequency_outside_its_band(installed, compiled, serial):
    script = compiled("labs/04_guard_block/guard_block.grc")
    hub = HubServer(token=TOKEN).start()
    agent = run_generated(installed, script, "--url", hub.url(), "--token", TOKEN, riasim=True)
    try:
        wait_connected(hub, agent)
        hub.send(start_message(serial, 433.92e6))
        error = hub.wait_text("error", WAIT)
        assert error and error["message"].startswith("band guard: center_frequency 433920000 Hz is outside"), \
            (hub.texts(), agent.output)
        assert not hub.texts("status")  # the radio was never opened
    finally:
        agent.stop()
        hub.stop()


# ---------------------------------------------------------------- the other examples

def test_headless_source_example_runs_to_its_end(installed, compiled, serial):
    script = compiled("sdr_source_headless.grc")
    result = subprocess.run([SYSTEM_PYTHON, "-u", script], env=installed.env(riasim=True), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(event . streaming)" in result.stdout, result.stdout + result.stderr


def test_sink_tone_example_transmits(installed, compiled, serial, tmp_path):
    script = compiled("sdr_sink_tone.grc")
    result = subprocess.run([SYSTEM_PYTHON, "-u", script], env=installed.env(riasim=True, RIASIM_AIR=str(tmp_path / "air")),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(event . transmitting)" in result.stdout, result.stdout + result.stderr


def test_spectrum_example_runs_offscreen(installed, compiled, serial):
    """A QT GUI flowgraph: with no screen here it runs on Qt's offscreen platform, which draws the same
    widgets in memory; everything but the window on a display is what GRC runs."""
    script = compiled("sdr_source_spectrum.grc")
    flowgraph = run_generated(installed, script, qt=True, riasim=True)
    try:
        try:
            flowgraph.wait_line(r"\(event \. streaming\)", WAIT)
        except AssertionError:
            skip_if_qt_has_no_platform(flowgraph)
            raise
        assert flowgraph.stop() == 0, flowgraph.output
    finally:
        flowgraph.stop()


def write_tone(path, rate, seconds, freq, amplitude, delay_s=0.0):
    """A mono 16-bit wav of a sine tone (delayed by delay_s of silence), with the standard library only."""
    n, lead = int(rate * seconds), int(rate * delay_s)
    samples = array.array("h", (0 if i < lead else int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate))
                                for i in range(n)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def stream_voice_example(installed, script, *args, home=None, sample_format="f32", frame_samples=1600):
    """Runs a voice agent example against a hub. The voice agents stream at once (autostart) under app_id voice:
    audio at 16 kHz (stream_info says so), in frames of `frame_samples` f32 values or one Opus packet of 20 ms each
    (which the hub's decoder, gnuradio.ria.wire.opus, must read)."""
    hub = HubServer(token=TOKEN).start()
    agent = run_generated(installed, script, "--url", hub.url(), "--token", TOKEN, *args, home=home)
    try:
        info = hub.wait_text("stream_info", WAIT)
        assert info and info["app_id"] == "voice" and info["sample_rate"] == 16000, (hub.texts(), agent.output)
        assert info["media"] == "audio" and info["sample_format"] == sample_format, info
        assert hub.wait_for(lambda s: len(s.binary()) >= 5, WAIT), agent.output
        frames = hub.binary()[:5]
        if sample_format == "opus":
            decoder = opus.Decoder(16000)
            assert [len(decoder.decode(f)) for f in frames] == [320] * 5
        else:
            assert [len(f) for f in frames] == [4 * frame_samples] * 5
        assert agent.proc.poll() is None, agent.output
        assert agent.stop() == 0, agent.output
    finally:
        agent.stop()
        hub.stop()


def test_voice_agent_from_files_streams_to_a_hub(installed, compiled, tmp_path):
    script = compiled("voice_agent_file.grc")
    write_tone(tmp_path / "reply.wav", 16000, 2.0, 440, 0.5)
    write_tone(tmp_path / "mic.wav", 16000, 2.0, 440, 0.2, delay_s=0.1)
    stream_voice_example(installed, script, "--mic", str(tmp_path / "mic.wav"), "--reply", str(tmp_path / "reply.wav"),
                         "--cleaned", str(tmp_path / "cleaned.wav"))
    with wave.open(str(tmp_path / "cleaned.wav"), "rb") as w:
        assert w.getframerate() == 16000 and w.getnframes() > 0


def test_voice_agent_with_a_sound_card_streams_to_a_hub(installed, compiled, tmp_path):
    """examples/voice_agent.grc needs a sound card (ALSA's default device, microphone and speaker). This
    machine has none (/dev/snd is missing), so ALSA's own `null` device stands in for the card, configured the
    way a user configures ALSA (~/.asoundrc): everything from gr-audio's ALSA source and sink on is what GRC
    runs. Without the stand-in the flowgraph stops at once with `audio_alsa_source :error: [default]`."""
    script = compiled("voice_agent.grc")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text("pcm.!default {\n  type null\n}\n")
    stream_voice_example(installed, script, home=home, sample_format="opus")


def test_voice_agent_in_a_simulated_room_streams_to_a_hub(installed, compiled, tmp_path):
    """examples/voice_agent_room.grc: the voice agent with a simulated room between its speaker and microphone and
    a talker read from a file, as a GRC user runs it (tests/test_voice_loop.py runs the whole loop through it)."""
    script = compiled("voice_agent_room.grc")
    write_tone(tmp_path / "talker.wav", 16000, 2.0, 300, 0.3)
    stream_voice_example(installed, script, "--talker", str(tmp_path / "talker.wav"), "--sample-format", "f32",
                         frame_samples=320)


# ---------------------------------------------------------------- the field agent and the lab hub

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The real lab hub (apps/ria_hub.py, in the test interpreter: a server may have its venv)."""
    lab = Lab(str(tmp_path_factory.mktemp("lab")))
    yield lab
    lab.close()


def register(installed, lab, home, name):
    """`ria_agent.py register` from the prefix, as the user the agent will run as; returns the agent id."""
    _, key = lab.create_key()
    result = run_system_python([installed.agent_app, "register", "--hub", lab.url, "--api-key", key,
                                "--name", name], installed.env(home=home))
    assert result.returncode == 0, result.stdout + result.stderr
    agent_id = re.search(r"registered as (agent-\w+)", result.stdout).group(1)
    credentials = home / ".ria" / "agent.json"
    assert credentials.exists() and (credentials.stat().st_mode & 0o777) == 0o600
    token = json.loads(credentials.read_text())["token"]
    assert token and token not in result.stdout + result.stderr  # saved, never shown
    return agent_id


def check_streams_into_the_lab(lab, agent_id, agent, serial):
    """The hub lists the agent online; a session started from the hub's API carries the radio's IQ."""
    lab.wait_agent(agent_id, lambda a: a["online"], timeout=WAIT)
    answer = start_session(lab, agent_id, serial)
    assert answer["status"] == "streaming" and answer["error"] is None, (answer, agent.output)
    view = lab.wait_spectrum(agent_id, lambda v: v["stream"]["frames"] > 10, timeout=WAIT)
    assert peak_near(view, EMITTER), view["spectrum"]["peak_frequency"]  # riasim's carrier, +100 kHz
    assert lab.api.stop(agent_id)["status"] == "idle"
    lab.wait_agent(agent_id, lambda a: a["status"] == "idle", timeout=WAIT)


def test_field_agent_registers_and_detects_under_debian_python(installed, lab, tmp_path):
    home = tmp_path / "home"
    agent_id = register(installed, lab, home, "field-detect")
    assert any(a["agent_id"] == agent_id for a in lab.api.agents())
    result = run_system_python([installed.agent_app, "detect", "--simulator"], installed.env(home=home))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^mock\s+riasim\s+sim0\s+", result.stdout, re.M), result.stdout
    drivers = re.search(r"^SoapySDR drivers installed: (.*)$", result.stdout, re.M)
    assert drivers and "riasim" in drivers.group(1).split(", "), result.stdout


def systemd_unit():
    """The [Service] settings of the unit in docs/operations.md (the ```ini block)."""
    with open(OPERATIONS) as f:
        text = f.read()
    block = re.search(r"```ini\n(.*?)```", text, re.S)
    assert block, "docs/operations.md has no ```ini block with the unit"
    settings = {}
    for line in block.group(1).splitlines():
        m = re.match(r"^(\w+)=(.*)$", line.strip())
        if m:
            settings[m.group(1)] = m.group(2)
    return settings


def wait_health(url, predicate, timeout=WAIT):
    """Polls the agent's /health until predicate(status, body) holds; returns (status, body)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                last = (resp.status, json.loads(resp.read()))
        except urllib.error.HTTPError as e:
            last = (e.code, json.loads(e.read()))
        except OSError as e:
            last = (None, str(e))
        if last[0] is not None and predicate(*last):
            return last
        time.sleep(0.1)
    raise AssertionError(f"/health never matched; last answer: {last}")


def test_systemd_unit_runs_the_agent_and_stops_on_sigterm(installed, lab, tmp_path, serial):
    """The unit's ExecStart, as written in docs/operations.md, run as systemd would (the installed path for
    /usr/local/bin, any free health port): it connects, streams a session, and exits 0 on its KillSignal."""
    unit = systemd_unit()
    argv = shlex.split(unit["ExecStart"])
    assert argv[0] == SYSTEM_PYTHON, \
        f"ExecStart must run Debian's interpreter (GNU Radio lives there), not rely on a shebang: {argv}"
    assert argv[1] == "/usr/local/bin/ria_agent.py" and argv[2] == "run", argv
    argv[1] = installed.agent_app
    assert "--health-port" in argv, "the unit should serve /health (docs/operations.md points checks at it)"
    argv[argv.index("--health-port") + 1] = "0"
    argv.append("--simulator")  # this machine has no radio: the lab session runs on the simulated one
    kill_signal = getattr(signal, unit.get("KillSignal", "SIGTERM"))
    stop_timeout = float(unit.get("TimeoutStopSec", "90"))

    home = tmp_path / "home"  # the home of the unit's User=, where `register` saved the credentials
    agent_id = register(installed, lab, home, "field-unit")
    agent = Isolated(argv, installed.env(home=home, riasim=True))
    try:
        health = agent.wait_line(r"health endpoint on (http://\S+/health)", WAIT).group(1)
        status, body = wait_health(health, lambda code, b: code == 200)
        assert body["state"] == "connected" and body["session"] == "idle", body
        check_streams_into_the_lab(lab, agent_id, agent, serial)
        status, body = wait_health(health, lambda code, b: b["session"] == "idle" and b["frames_sent"] > 0)
        assert status == 200, body
        assert agent.stop(kill_signal, timeout=stop_timeout) == 0, agent.output
        assert agent.output.rstrip().endswith("stopped"), agent.output
        lab.wait_agent(agent_id, lambda a: not a["online"], timeout=WAIT)
    finally:
        agent.stop()


def sound_card(home, folder, microphone):
    """ALSA's `file` plugin over its `null` device as the sound card (this machine has none), in ~/.asoundrc as a
    user configures ALSA: the speaker writes 16-bit 16 kHz mono to speaker.raw; the microphone reads `microphone`
    (the same format), then silence. The null device keeps no time, so the flowgraph runs faster than real time:
    what arrives is judged, not when."""
    speaker = folder / "speaker.raw"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text(
        "pcm.card {\n  type asym\n"
        f"  playback.pcm {{ type file; slave.pcm \"null\"; file \"{speaker}\"; format \"raw\" }}\n"
        f"  capture.pcm {{ type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{microphone}\"; "
        "format \"raw\" }\n}\n"
        "pcm.!default { type plug; slave { pcm \"card\"; format S16_LE; rate 16000; channels 1 } }\n")
    return speaker


def test_voice_agent_service_plays_what_the_hub_says(installed, lab, tmp_path):
    """`ria_agent.py voice`, as an operator runs it next to a sound card: registered once, then run under Debian's
    python from the installed prefix. It comes online with a microphone and a speaker, the microphone streams Opus,
    the hub's `say` plays to the end on the speaker, /health carries the voice figures, and SIGTERM stops it."""
    home = tmp_path / "home"
    agent_id = register(installed, lab, home, "voice-box")
    microphone = tmp_path / "microphone.raw"
    spoken = subprocess.run(["espeak-ng", "--stdout", "The microphone hears the room."], capture_output=True,
                            check=True).stdout
    subprocess.run(["sox", "-R", "-t", "wav", "-", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw",
                    str(microphone)], input=spoken, check=True)
    speaker = sound_card(home, tmp_path, microphone)
    agent = Isolated([SYSTEM_PYTHON, installed.agent_app, "voice", "--health-port", "0", "--heartbeat-interval", "1"],
                     installed.env(home=home))
    try:
        health = agent.wait_line(r"health endpoint on (http://\S+/health)", WAIT).group(1)
        view = lab.wait_agent(agent_id, lambda a: {"audio_in", "audio_out"} <= set(a.get("capabilities") or []) and
                              (a.get("stream") or {}).get("media") == "audio")
        assert view["stream"]["sample_format"] == "opus" and view["stream"]["sample_rate"] == 16000, view["stream"]
        said = lab.hub_cli("say", agent_id, "The lab closes at five. Please save your work.")
        assert said.returncode == 0 and " done" in said.stdout, said.stdout + said.stderr
        sent = int(re.search(r"(\d+) samples sent", said.stdout).group(1))
        status, body = wait_health(health, lambda code, b: b.get("audio_frames_played", 0) * 320 >= sent)
        assert status == 200 and body["audio_frames_sent"] > 0, body
        assert "erle_db" in body and set(body["levels"]) == {"speaker_dbfs", "mic_dbfs", "out_dbfs"}, body
        assert agent.stop() == 0, agent.output
        assert agent.output.rstrip().endswith("stopped"), agent.output
    finally:
        agent.stop()
    played = np.fromfile(speaker, np.int16)
    loud = np.flatnonzero(np.abs(played) > 330)  # above -40 dBFS: the sentence, not the idle silence
    assert len(loud) and loud[-1] - loud[0] >= 0.6 * sent, f"the speaker played {len(loud)} loud samples of {sent}"


def test_voice_agent_settings_that_cannot_work_exit_with_the_setting_named(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    unregistered = run_system_python([installed.agent_app, "voice"], installed.env(home=home))
    assert unregistered.returncode == 78 and "not registered" in unregistered.stderr, unregistered.stderr
    for flag, value, named in (("--max-delay", "5", "max_delay"), ("--bitrate", "100", "bitrate")):
        result = run_system_python([installed.agent_app, "voice", "--url", "ws://127.0.0.1:9/agent", "--token", "t",
                                    flag, value], installed.env(home=home))
        assert result.returncode == 78 and named in result.stderr, (flag, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr


def test_lab_1_from_grc_with_the_credentials_of_register(installed, compiled, lab, tmp_path, serial):
    """A student's lab day: `ria_agent.py register` once, then lab 1 run from GRC with Hub URL and Token left
    empty (GRC passes no options), so the flowgraph takes the credentials that register saved."""
    home = tmp_path / "home"
    agent_id = register(installed, lab, home, "student-1")
    script = compiled("labs/01_stream_and_look/stream_and_look.grc")
    agent = run_generated(installed, script, home=home, riasim=True)
    try:
        check_streams_into_the_lab(lab, agent_id, agent, serial)
        assert agent.proc.poll() is None, agent.output
        assert agent.stop() == 0, agent.output
    finally:
        agent.stop()


def test_installed_agent_runs_by_its_name_when_another_python3_is_first_on_path(installed, tmp_path):
    shadow = tmp_path / "bin"
    shadow.mkdir()
    (shadow / "python3").write_text("#!/bin/sh\necho 'not Debian python3' >&2\nexit 3\n")
    (shadow / "python3").chmod(0o755)
    env = installed.env(PATH=f"{shadow}:/usr/bin:/bin")
    result = subprocess.run([installed.agent_app, "detect"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
