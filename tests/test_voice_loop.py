"""The voice loop a user lives with: a hub (tests/hub_server.py, speaking §6/§8) says a sentence through
ria.voice_agent's speaker, a simulated room (image-method response, bulk delay, clock drift) carries it to the
microphone with a near-end talker, and the hub hears the talker with the echo taken out."""

import os
import sys

import numpy as np
import pytest
from gnuradio import gr

from gnuradio import ria
from helpers import wait_until
from hub_server import TOKEN

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import aec_signals  # noqa: E402
import voice_loop  # noqa: E402
import voice_room  # noqa: E402

RATE = 16000
WAIT = 15.0
SETTLE_S = 2.0  # the canceller's first seconds are not judged
DELAY_S, DRIFT_PPM = 0.15, 100.0


@pytest.fixture(scope="module")
def voices():
    far = aec_signals.speech(aec_signals.FAR_TEXT, "en-us", RATE)
    near = aec_signals.speech(aec_signals.NEAR_TEXT, "en-gb+f3", RATE)
    return far, near


def voice_loop_graph(hub, near, sample_format="f32"):
    """ria.voice_agent with the room between its speaker output and its microphone input."""
    tb = gr.top_block()
    tb.agent = ria.voice_agent(url=hub.url(), token=TOKEN, sample_rate=RATE, sample_format=sample_format,
                               queue_seconds=0.2, heartbeat_interval=5.0)
    tb.room = voice_room.room(RATE, near, delay_s=DELAY_S, drift_ppm=DRIFT_PPM)
    tb.connect(tb.agent, tb.room, tb.agent)
    return tb


def talker_track(near, seconds):
    """The near-end talker: 3 s of quiet, then speech, looped (whenever the flowgraph runs, someone talks)."""
    quiet = np.zeros(3 * RATE, np.float32)
    one = np.concatenate([quiet, near * np.float32(0.7)])
    return np.tile(one, int(np.ceil(seconds * RATE / len(one))) + 1)


def judge(out, room):
    """(echo reduction dB, talker attenuation dB) after SETTLE_S of far-end sound, from what reached the microphone
    (the room's own taps) and what the hub heard (sample-aligned: ria.aec's output sample k is microphone sample k)."""
    echo, near = room.echo(), room.near()
    n = min(len(out), len(echo), len(near))
    out, echo, near = out[:n], echo[:n], near[:n]
    loud = np.flatnonzero(np.abs(echo) > 1e-3)
    assert len(loud), "no echo reached the microphone"
    start = loud[0] + int(SETTLE_S * RATE)
    heard = np.isfinite(out)
    heard[:start] = False
    assert heard.sum() > 5 * RATE, "the hub heard too little after the first seconds"
    talking = heard & (np.abs(near) > 1e-3)
    gain = np.dot(out[talking], near[talking]) / np.dot(near[talking], near[talking])
    residual = out[heard] - gain * near[heard]
    reduction = 10 * np.log10(np.sum(echo[heard] ** 2) / np.sum(residual ** 2))
    return reduction, -20 * np.log10(gain)


def say(hub, far, sample_format, app_id="say-1"):
    armed = voice_loop.start_play(hub, app_id, RATE, sample_format)
    sent = voice_loop.play(hub, app_id, far, armed, voice_loop.Encoder(RATE, sample_format))
    assert sent >= len(far)
    voice_loop.wait_state(hub, "transmitting", app_id)
    # every sample reached the speaker: then the session ends cleanly
    assert hub.wait_for(lambda s: any(m["played"] >= sent for m in s.texts("tx_progress")
                                      if m["app_id"] == app_id), WAIT)
    hub.send({"type": "tx_stop", "app_id": app_id})
    return voice_loop.wait_state(hub, "done", app_id)


@pytest.mark.parametrize("sample_format", ["f32"])
def test_the_hub_hears_the_talker_and_not_its_own_voice(hub, flowgraphs, voices, sample_format):
    far, near = voices
    sentence = np.concatenate([far, np.zeros(RATE // 2, np.float32)])
    tb = flowgraphs(voice_loop_graph(hub, talker_track(near, 2 * len(sentence) / RATE), sample_format))
    assert voice_loop.first_heartbeat_with(hub, "audio_out")
    heartbeat = [h for h in hub.texts("heartbeat") if "audio_out" in h.get("capabilities", [])][-1]
    assert heartbeat["capabilities"] == ["audio_in", "audio_out"]
    done = say(hub, sentence, sample_format)
    assert done["samples_played"] >= len(sentence)
    tb.stop()
    tb.wait()
    out, infos = voice_loop.mic_stream(hub)
    assert infos and infos[0]["sample_rate"] == RATE
    reduction, attenuation = judge(out, tb.room)
    print(f"{sample_format}: echo reduced by {reduction:.1f} dB, talker attenuated by {attenuation:.2f} dB")
    assert reduction >= 30.0
    assert abs(attenuation) <= 1.0


def test_play_sessions_are_refused_with_the_key_named_and_nothing_plays(hub, flowgraphs, voices):
    far, near = voices
    tb = flowgraphs(voice_loop_graph(hub, talker_track(near, 5)))
    assert voice_loop.first_heartbeat_with(hub, "audio_out")
    for app_id, rc, message in [
            ("bad-1", {"tx_sample_rate": 16000, "volume": 3}, "unknown radio_config key 'volume'"),
            ("bad-2", {"tx_sample_rate": 44100, "sample_format": "opus"}, "opus needs a sample rate of"),
            ("bad-3", {"tx_sample_rate": 16000, "tx_gain": 40}, "tx_gain (speaker volume) must be -60 to 20 dB"),
            ("bad-4", {}, "radio_config.tx_sample_rate is required")]:
        hub.send({"type": "tx_start", "app_id": app_id, "radio_config": {"media": "audio", **rc}})
        refusal = voice_loop.wait_state(hub, "error", app_id)
        assert message in refusal["message"]
    hub.send_bytes(np.zeros(320, np.float32).tobytes())  # a frame after a refused start is not played
    assert wait_until(lambda: tb.agent.speaker.stats()["late_frames"] >= 1, WAIT)
    assert tb.agent.speaker.stats()["played"] == 0 or tb.agent.speaker.state() == "idle"
    # a good one still works after them
    armed = voice_loop.start_play(hub, "good", RATE)
    assert armed["queue_samples"] == int(0.2 * RATE) and armed["sample_format"] == "f32"
    hub.send({"type": "tx_start", "app_id": "second", "radio_config": {"media": "audio", "tx_sample_rate": RATE}})
    assert "a play session is already active" in voice_loop.wait_state(hub, "error", "second")["message"]
    hub.send({"type": "tx_stop", "app_id": "good"})
    voice_loop.wait_state(hub, "done", "good")


def test_an_iq_agent_has_no_speaker(hub, serial, flowgraphs):
    from helpers import running_agent
    running_agent(hub, serial, flowgraphs)
    hub.send({"type": "tx_start", "app_id": "say", "radio_config": {"media": "audio", "tx_sample_rate": RATE}})
    assert voice_loop.wait_state(hub, "error", "say")["message"] == "this agent has no speaker (audio_out)"


def test_a_hub_restart_mid_sentence_and_the_next_sentence_plays(hub, flowgraphs, voices):
    far, near = voices
    tb = flowgraphs(voice_loop_graph(hub, talker_track(near, 60)))
    assert voice_loop.first_heartbeat_with(hub, "audio_out")
    armed = voice_loop.start_play(hub, "first", RATE)
    encoder = voice_loop.Encoder(RATE, "f32")
    halfway = lambda: any(m["played"] >= len(far) // 2 for m in hub.texts("tx_progress"))  # noqa: E731
    voice_loop.play(hub, "first", far, armed, encoder, stop_when=halfway)
    assert halfway()
    connections = hub.connections
    hub.restart()
    assert hub.wait_for(lambda s: s.connections > connections and s.texts("heartbeat"), WAIT), "no reconnect"
    assert wait_until(lambda: tb.agent.speaker.state() == "idle", WAIT)
    assert tb.agent.handler.voice.session is None  # the lost session is over on the agent
    with hub._cond:
        hub.received.clear()
    done = say(hub, far[:2 * RATE], "f32", app_id="second")
    assert done["samples_played"] >= 2 * RATE
