"""The voice loop a user lives with: a hub (tests/hub_server.py, speaking §6/§8) says a sentence through
ria.voice_agent's speaker, a simulated room (image-method response, bulk delay, clock drift) carries it to the
microphone with a near-end talker, and the hub hears the talker with the echo taken out."""

import os
import re
import sys

import numpy as np
import pytest
from gnuradio import gr

from gnuradio import ria
from gnuradio.ria.agent import health
from helpers import wait_until, write_wav
from hub_server import TOKEN
from processes import Process, grcc, python

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import aec_signals  # noqa: E402
import voice_loop  # noqa: E402
import voice_room  # noqa: E402

RATE = 16000
WAIT = 15.0
SETTLE_S = 2.0  # the canceller's first seconds are not judged
DELAY_S, DRIFT_PPM = 0.15, 50.0  # the echo's bulk delay; two sound cards' clocks 50 ppm apart
TALKER_AFTER_S = 5.0  # the near-end talker barges in 5 s into the hub's sentence
SPEED = 2.0  # the room's sound card runs twice as fast as real time: a shorter test, still paced


@pytest.fixture(scope="module")
def voices():
    far, near = aec_signals.voices(RATE)
    near = near * np.float32(0.5)  # (as aec_signals.scenario)
    return far, near


def voice_loop_graph(hub, near, sample_format="f32"):
    """ria.voice_agent with the room between its speaker output and its microphone input."""
    tb = gr.top_block()
    tb.agent = ria.voice_agent(url=hub.url(), token=TOKEN, sample_rate=RATE, sample_format=sample_format,
                               queue_seconds=0.2, heartbeat_interval=5.0)
    tb.room = voice_room.room(RATE, near, talker_after_s=TALKER_AFTER_S, delay_s=DELAY_S, drift_ppm=DRIFT_PPM,
                              speed=SPEED)
    tb.connect(tb.agent, tb.room, tb.agent)
    return tb


def say(hub, far, sample_format, app_id="say-1"):
    armed = voice_loop.start_play(hub, app_id, RATE, sample_format)
    assert armed["sample_format"] == sample_format
    sent = voice_loop.play(hub, app_id, far, armed, voice_loop.Encoder(RATE, sample_format))
    assert sent >= len(far)
    voice_loop.wait_state(hub, "transmitting", app_id)
    # every sample reached the speaker: then the session ends cleanly
    assert hub.wait_for(lambda s: any(m["played"] >= sent for m in s.texts("tx_progress")
                                      if m["app_id"] == app_id), WAIT)
    hub.send({"type": "tx_stop", "app_id": app_id})
    return voice_loop.wait_state(hub, "done", app_id)


def loop_run(hub, flowgraphs, sentence, near, sample_format):
    """One sentence through the loop: (what the hub heard, by sample_index; the room with its taps)."""
    with hub._cond:
        hub.received.clear()
    tb = flowgraphs(voice_loop_graph(hub, near, sample_format))
    assert voice_loop.first_heartbeat_with(hub, "audio_out")
    heartbeat = [h for h in hub.texts("heartbeat") if "audio_out" in h.get("capabilities", [])][-1]
    assert heartbeat["capabilities"] == ["audio_in", "audio_out"]
    done = say(hub, sentence, sample_format)
    assert done["samples_played"] >= len(sentence)
    check_voice_figures(hub, tb.agent)
    tb.stop()
    tb.wait()
    out, infos = voice_loop.mic_stream(hub)
    assert infos and infos[0]["sample_rate"] == RATE
    if os.environ.get("VOICE_LOOP_DUMP"):
        np.savez(os.environ["VOICE_LOOP_DUMP"] + f"-{sample_format}-{int(near.any())}.npz", out=out,
                 echo=tb.room.echo(), near=tb.room.near())
    return out, tb.room


def check_voice_figures(hub, agent):
    """The canceller's figures and the levels reach the agent's metrics line and the heartbeat's stats while the
    hub talks."""
    assert wait_until(lambda: "erle_db" in agent.stats() and "levels" in agent.stats(), WAIT)
    figures = agent.stats()
    assert -40.0 < figures["levels"]["speaker_dbfs"] < 0 and figures["levels"]["mic_dbfs"] > -60.0
    assert figures["levels"]["out_dbfs"] < figures["levels"]["mic_dbfs"]
    line = health.MetricsLine().format(health.snapshot(agent.mic_sink, agent.speaker, agent))
    assert re.search(r" audio_frames_sent=\+[1-9][0-9]* .* audio_frames_played=\+[1-9][0-9]* "
                     r"audio_frames_concealed=\+[0-9]+ .*"
                     r"speaker_queue_ms=[0-9.]+ .*erle_db=-?[0-9.]+ .*speaker_dbfs=-[0-9.]+ mic_dbfs=-[0-9.]+ "
                     r"out_dbfs=-[0-9.]+$", line), line
    assert hub.wait_for(lambda s: "erle_db" in s.texts("heartbeat")[-1].get("stats", {}), WAIT)
    stats = hub.texts("heartbeat")[-1]["stats"]
    assert set(stats["levels"]) == {"speaker_dbfs", "mic_dbfs", "out_dbfs"}
    assert stats["levels"]["speaker_dbfs"] > -60 and stats["audio_frames_played"] > 0
    assert not [e for e in hub.texts("error") if "heartbeat" in e.get("message", "")]


def judged(out, room):
    """(out, echo, near, heard): ria.aec's output sample k is microphone sample k, so the hub's stream (placed by
    sample_index) lines up with the room's taps; `heard` marks what the hub got from SETTLE_S after the echo began."""
    echo, near = room.echo(), room.near()
    n = min(len(out), len(echo), len(near))
    out, echo, near = out[:n], echo[:n], near[:n]
    loud = np.flatnonzero(np.abs(echo) > 1e-3)
    assert len(loud), "no echo reached the microphone"
    heard = np.isfinite(out)
    heard[:loud[0] + int(SETTLE_S * RATE)] = False
    assert heard.sum() > 5 * RATE, "the hub heard too little after the first seconds"
    return out, echo, near, heard


def codec_delay(out, near, talking, most=int(0.03 * RATE)):
    """Samples by which the hub's stream lags the microphone: Opus's own look-ahead (a few ms), 0 for raw samples."""
    x = np.where(talking, np.nan_to_num(out), 0)
    scores = [np.dot(x[lag:], np.where(talking, near, 0)[:len(x) - lag]) for lag in range(most)]
    return int(np.argmax(scores))


def db(a, b):
    return 10 * np.log10(np.sum(a ** 2) / np.sum(b ** 2))


@pytest.fixture(scope="module")
def loop_results():
    return {}


def double_talk(hub, flowgraphs, voices, sample_format, results):
    """Two runs of one sentence through one room (once per format for the module): with the talker muted, the echo
    left in what the hub hears is the canceller's residual alone (echo reduction); with the talker barging in, its
    gain in what the hub hears, by projection on what reached the microphone from it (attenuation), and what is
    left besides it (the residual echo in double talk, with any damage to the talker counted as echo)."""
    if sample_format in results:
        return results[sample_format]
    far, near = voices
    sentence = np.concatenate([far, np.zeros(RATE // 2, np.float32)])
    out, room = loop_run(hub, flowgraphs, sentence, np.zeros_like(near), sample_format)
    out, echo, _, heard = judged(out, room)
    reduction = db(echo[heard], out[heard])

    out, room = loop_run(hub, flowgraphs, sentence, near, sample_format)
    out, echo, near_at_mic, heard = judged(out, room)
    talking = heard & (np.abs(near_at_mic) > 1e-3)
    lag = codec_delay(out, near_at_mic, talking)
    assert lag == 0 or sample_format == "opus", lag  # (raw samples: none)
    out = np.concatenate([out[lag:], np.full(lag, np.nan, np.float32)])
    heard &= np.isfinite(out)
    talking &= heard
    assert talking.sum() > 2 * RATE, "the talker was not heard during the sentence"
    gain = np.dot(out[talking], near_at_mic[talking]) / np.dot(near_at_mic[talking], near_at_mic[talking])
    results[sample_format] = (reduction, -20 * np.log10(gain), db(echo[heard], out[heard] - gain * near_at_mic[heard]))
    print(f"\n{sample_format}: echo reduced by {reduction:.1f} dB (talker muted), {results[sample_format][2]:.1f} dB "
          f"in double talk; talker attenuated by {results[sample_format][1]:.2f} dB")
    return results[sample_format]


@pytest.mark.parametrize("sample_format", ["f32", "opus"])
def test_the_hub_hears_its_own_voice_reduced_by_30_db(hub, flowgraphs, voices, loop_results, sample_format):
    reduction, _, _ = double_talk(hub, flowgraphs, voices, sample_format, loop_results)
    assert reduction >= 30.0


@pytest.mark.parametrize("sample_format", ["f32", "opus"])
def test_the_hub_hears_the_talker_who_barges_in_within_1_db(hub, flowgraphs, voices, loop_results, sample_format):
    _, attenuation, _ = double_talk(hub, flowgraphs, voices, sample_format, loop_results)
    assert abs(attenuation) <= 1.0


def test_play_sessions_are_refused_with_the_key_named_and_nothing_plays(hub, flowgraphs, voices):
    far, near = voices
    tb = flowgraphs(voice_loop_graph(hub, near))
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
    hub.send({"type": "tx_configure", "app_id": "good", "radio_config": {"tx_gain": -6}})
    assert hub.wait_for(lambda s: any("a play session takes no configure" in e.get("message", "")
                                      for e in s.texts("error")), WAIT)
    assert tb.agent.handler.voice.session.state == "armed"  # (a refused configure changed nothing)
    hub.send({"type": "tx_stop", "app_id": "good"})
    voice_loop.wait_state(hub, "done", "good")
    assert tb.agent.handler.voice.session is None


def test_an_iq_agent_has_no_speaker(hub, serial, flowgraphs):
    from helpers import running_agent
    running_agent(hub, serial, flowgraphs)
    hub.send({"type": "tx_start", "app_id": "say", "radio_config": {"media": "audio", "tx_sample_rate": RATE}})
    assert voice_loop.wait_state(hub, "error", "say")["message"] == "this agent has no speaker (audio_out)"


def test_a_hub_restart_mid_sentence_and_the_next_sentence_plays(hub, flowgraphs, voices):
    far, near = voices
    tb = flowgraphs(voice_loop_graph(hub, near))
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


def test_the_room_example_runs_from_grc(hub, voices, tmp_path, repo_root):
    """examples/voice_agent_room.grc compiled by grcc and run as a process: the hub says a sentence, the agent plays
    it and streams the room back (the echo of it, the canceller's work and the talker) as audio."""
    far, near = voices
    write_wav(tmp_path / "talker.wav", near, RATE)
    grcc(os.path.join(repo_root, "examples", "voice_agent_room.grc"), tmp_path)
    agent = Process(python(str(tmp_path / "voice_agent_room.py"), "--url", hub.url(), "--token", TOKEN,
                           "--talker", str(tmp_path / "talker.wav"), "--sample-format", "f32"))
    try:
        assert voice_loop.first_heartbeat_with(hub, "audio_out", 30), agent.output
        done = say(hub, far[:3 * RATE], "f32")
        assert done["samples_played"] >= 3 * RATE
        assert hub.wait_for(lambda s: len(s.binary()) * 320 >= 3 * RATE, WAIT)
    finally:
        agent.stop()
    out, infos = voice_loop.mic_stream(hub)
    assert infos[0]["app_id"] == "voice" and infos[0]["sample_rate"] == RATE
    heard = out[np.isfinite(out)]
    assert len(heard) >= 3 * RATE and np.sqrt(np.mean(heard ** 2)) > 1e-3  # the talker, at least
