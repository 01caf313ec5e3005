"""A teacher's voice agent end to end: the lab hub (a real process) says a sentence with `ria_hub.py say` to a
ria.voice_agent whose speaker and microphone are joined by a simulated room, and records what the agent sends back.
The recording is judged against what the room carried from the speaker to the microphone."""

import json
import os
import sys

import numpy as np
import pytest
from gnuradio import gr
from scipy.io import wavfile

from gnuradio import ria
from lab import Lab

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import voice_room  # noqa: E402

RATE = 16000
SETTLE_S = 2.0  # the canceller's first seconds are not judged
TEXT = ("The hub speaks to the class through every voice agent. Each agent plays the sentence on its speaker, "
        "hears it again in the room, and takes it out before it talks back.")


@pytest.fixture
def lab(tmp_path):
    lab = Lab(str(tmp_path))
    yield lab
    lab.close()


def voice_agent_in_a_room(lab, agent_id, token, sample_format):
    tb = gr.top_block()
    url = lab.url.replace("http://", "ws://") + f"/screens/agent/ws?agent_id={agent_id}"
    tb.agent = ria.voice_agent(url=url, token=token, sample_rate=RATE, sample_format=sample_format,
                               heartbeat_interval=1.0)
    tb.room = voice_room.room(RATE, np.zeros(RATE, np.float32), delay_s=0.12, drift_ppm=-40.0, speed=2.0)
    tb.connect(tb.agent, tb.room, tb.agent)
    return tb


def recorded(files):
    """(sidecar, samples in -1..1) of the last part: 16-bit PCM or 32-bit float WAV."""
    with open(files[-1]) as f:
        sidecar = json.load(f)
    rate, samples = wavfile.read(os.path.join(os.path.dirname(files[-1]), sidecar["wav"]))
    assert rate == RATE and samples.ndim == 1
    return sidecar, samples.astype(np.float32) / (32767 if samples.dtype == np.int16 else 1)


@pytest.mark.parametrize("sample_format", ["opus", "f32"])
def test_the_hub_says_a_sentence_and_records_the_agent_without_its_echo(lab, flowgraphs, sample_format):
    agent_id, token = lab.register_api("voice-room")
    tb = flowgraphs(voice_agent_in_a_room(lab, agent_id, token, sample_format))
    view = lab.wait_agent(agent_id, lambda a: "audio_out" in a.get("capabilities", []) and
                          (a.get("stream") or {}).get("media") == "audio")
    assert view["stream"]["sample_format"] == sample_format
    assert lab.api.record(agent_id, True)["recording"].endswith(".wav")

    said = lab.hub_cli("say", agent_id, TEXT)
    assert said.returncode == 0, said.stderr
    assert "done" in said.stdout, said.stdout

    # the agent's own figures reach the hub with its heartbeat
    view = lab.wait_agent(agent_id, lambda a: (a.get("voice") or {}).get("erle_db") is not None and
                          (a["voice"].get("levels") or {}).get("mic_dbfs") is not None)
    assert view["voice"]["levels"]["speaker_dbfs"] > -120.0
    files = lab.api.record(agent_id, False)["files"]
    tb.stop()
    tb.wait()

    sidecar, heard = recorded(files)
    assert sidecar["agent_id"] == agent_id and sidecar["stream_format"] == sample_format
    echo = tb.room.echo()[sidecar["start_sample_index"]:]  # the WAV's first sample is this microphone sample
    n = min(len(echo), len(heard))
    echo, heard = echo[:n], heard[:n]
    loud = np.flatnonzero(np.abs(echo) > 1e-3)
    assert len(loud), "the hub's sentence never reached the microphone"
    judged = slice(loud[0] + int(SETTLE_S * RATE), loud[-1])
    assert judged.stop - judged.start > 3 * RATE, "too little of the sentence was recorded"
    reduction = 10 * np.log10(np.sum(echo[judged] ** 2) / np.sum(heard[judged] ** 2))
    print(f"\n{sample_format}: the hub's recording holds its own sentence {reduction:.1f} dB below the echo")
    assert reduction >= 25.0
