"""The hub's side of a voice agent (docs/protocol.md §8) over real sockets to a real hub process: say and play
sessions to a scripted voice agent (decoded and measured on the agent's side), the microphone stream decoded,
concealed, measured and recorded as WAV, the levels on the API, /metrics and the page."""

import json
import math
import os
import subprocess
import threading
import time
import urllib.request
import wave

import numpy as np
import pytest
from scipy.signal import resample_poly

from browser import Browser
from gnuradio.ria.hub.client import HubError
from gnuradio.ria.wire import audio, opus
from gnuradio.ria.wire import tx as wire_tx
from helpers import write_wav
from lab import Lab
from scripted_agent import ScriptedAgent

MIC_RATE = 16000
FRAME = audio.frame_samples(MIC_RATE)  # 320
QUEUE = 8000  # the peer's speaker queue: 0.5 s at 16 kHz


@pytest.fixture
def lab(tmp_path):
    lab = Lab(str(tmp_path), serve_flags=["--tx-timeout", "3"])
    yield lab
    lab.close()


class VoicePeer:
    """A voice agent scripted from the contract: heartbeat with audio_in/audio_out, play sessions answered with
    armed + tx_progress (played in real time from a queue of QUEUE samples), and a microphone stream it sends on
    request. What the hub sent is decoded and measured here: `rc`, `audio` (decoded float samples),
    `max_unplayed` (received − played at every frame), `frames` (payload sizes)."""

    def __init__(self, lab, name="voice-peer", capabilities=("audio_in", "audio_out")):
        self.agent_id, token = lab.register_api(name)
        self.capabilities = list(capabilities)
        self.lock = threading.Lock()
        self.session = self.rc = self.decoder = None
        self.chunks, self.frames, self.starts = [], [], []
        self.received = self.played = self.max_unplayed = 0
        self.ended = threading.Event()
        self.agent = ScriptedAgent(lab.url, token, self.agent_id, on_message=self._on_message)

    def heartbeat(self, **stats):
        self.agent.heartbeat(capabilities=self.capabilities, agent={"name": "voice-peer", "version": "0"},
                             stats=stats)

    def _send(self, msg):
        self.agent.send_quietly(msg)

    def _on_message(self, msg):
        if isinstance(msg, bytes):
            return self._on_frame(msg)
        if msg.get("id") is not None:
            self._send({"type": "ack", "id": msg["id"]})
        if msg.get("type") == "tx_start":
            self.starts.append(msg)
            clean, errors = audio.normalize_play(msg.get("radio_config"))
            if errors or self.session:
                return self._send(wire_tx.tx_status(msg["app_id"], "error", "; ".join(errors) or "already active"))
            with self.lock:
                self.session, self.rc = msg["app_id"], clean
                self.decoder = opus.Decoder(clean["tx_sample_rate"]) if clean["sample_format"] == "opus" else None
                self.received = self.played = self.max_unplayed = 0
                self.chunks, self.frames = [], []
            self._send(wire_tx.tx_status(msg["app_id"], "armed", queue_samples=QUEUE,
                                         tx_sample_rate=clean["tx_sample_rate"], tx_gain=clean["tx_gain"]))
            threading.Thread(target=self._play, args=(msg["app_id"], clean["tx_sample_rate"]), daemon=True).start()
        elif msg.get("type") == "tx_stop":
            with self.lock:
                app_id, self.session = self.session, None
            self._send(wire_tx.tx_status(app_id or msg.get("app_id"), "done", samples_played=self.played))
            self.ended.set()

    def _on_frame(self, payload):
        with self.lock:
            if self.session is None:
                return
            fmt = self.rc["sample_format"]
            samples = self.decoder.decode(payload) if fmt == "opus" else audio.from_bytes(payload, fmt)
            self.chunks.append(samples)
            self.frames.append(len(payload))
            self.received += len(samples)
            self.max_unplayed = max(self.max_unplayed, self.received - self.played)

    def _play(self, app_id, rate):
        last, reported_at, reported = time.monotonic(), 0.0, 0
        while True:
            time.sleep(0.01)
            now = time.monotonic()
            with self.lock:
                if self.session != app_id:
                    return
                self.played = min(self.received, self.played + int(rate * (now - last)))
                played, received = self.played, self.received
            last = now
            if played != reported and (played - reported >= QUEUE // 4 or now - reported_at >= 0.1):
                self._send(wire_tx.tx_progress(app_id, received, played, received - played))
                reported, reported_at = played, now

    @property
    def audio(self):
        with self.lock:
            return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    def close(self):
        self.agent.close()


@pytest.fixture
def make_peer(lab):
    peers = []

    def make(**options):
        peer = VoicePeer(lab, **options)
        peers.append(peer)
        peer.heartbeat()
        lab.wait_agent(peer.agent_id, lambda a: a["online"] and a["capabilities"] == peer.capabilities)
        return peer

    yield make
    for peer in peers:
        peer.close()


def wait_ended(lab, agent_id, app_id):
    return lab.wait_agent(agent_id, lambda a: (a["tx"]["last"] or {}).get("app_id") == app_id)["tx"]["last"]


def espeak(text):
    out = subprocess.run(["espeak-ng", "--stdout"], input=text.encode(), capture_output=True, check=True).stdout
    pcm = np.frombuffer(out[44:], "<i2").astype(np.float32) / 32768.0
    return pcm, int.from_bytes(out[24:28], "little")


def rms_dbfs(x):
    return 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-20)


def test_say_reaches_the_speaker_as_opus_speech_within_the_credits(lab, make_peer):
    peer = make_peer()
    text = "The lab closes at five today."
    answer = lab.api.say(peer.agent_id, text, app_id="say-1")
    assert answer["state"] == "armed" and answer["session"]["media"] == "audio", answer
    assert peer.rc["sample_format"] == "opus" and peer.rc["tx_sample_rate"] == 16000
    last = wait_ended(lab, peer.agent_id, "say-1")
    assert last["state"] == "done" and last["source_done"] and last["stop_reason"] == "the source ended", last
    # the length the hub promised (espeak-ng's speech resampled 22050 -> 16000, whole 20 ms frames) is what played
    reference, rate = espeak(text)
    expected = resample_poly(reference, 16000 // math.gcd(rate, 16000), rate // math.gcd(rate, 16000))
    got = peer.audio
    assert last["sent_samples"] == len(got) == -(-len(expected) // FRAME) * FRAME
    assert all(0 < n <= audio.MAX_OPUS_PACKET for n in peer.frames) and len(peer.frames) == len(got) // FRAME
    assert peer.max_unplayed <= QUEUE and last["max_in_flight"] <= QUEUE  # the credits held
    # decodable speech: the decoded signal is the spoken one (Opus delays it a few ms)
    n = len(expected)
    padded = np.concatenate([got, np.zeros(400, np.float32)])
    corr = np.correlate(padded[:n + 400], expected, mode="valid")
    lag = int(np.argmax(corr))
    aligned = padded[lag:lag + n]
    similarity = float(np.dot(aligned, expected) / np.linalg.norm(aligned) / np.linalg.norm(expected))
    assert lag < 400 and similarity > 0.8, (lag, similarity)
    assert abs(rms_dbfs(aligned) - rms_dbfs(expected)) < 1.5
    metrics = urllib.request.urlopen(lab.url + "/metrics", timeout=10).read().decode()
    assert f"ria_hub_audio_samples_sent_total {len(got)}\n" in metrics
    assert f"ria_hub_audio_frames_sent_total {len(peer.frames)}\n" in metrics


def test_play_a_wav_file_from_the_cli_resampled_to_the_session(lab, make_peer, tmp_path):
    peer = make_peer()
    t = np.arange(int(0.8 * 44100)) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / "tone.wav"
    write_wav(path, np.repeat(tone, 2), 44100, channels=2)  # stereo, mixed to mono by the hub
    result = lab.hub_cli("play", peer.agent_id, str(path), "--format", "s16", "--rate", "16000", "--app-id", "p-1")
    assert result.returncode == 0, result.stderr
    assert "play p-1 armed on" in result.stdout and "tone.wav, 0.80 s at 16 kHz s16" in result.stdout, result.stdout
    assert "TX p-1 done: the source ended" in result.stdout
    got = peer.audio
    assert peer.rc["sample_format"] == "s16" and len(got) == 12800  # 0.8 s at 16 kHz exactly
    spectrum = np.abs(np.fft.rfft(got * np.hanning(len(got))))
    assert abs(np.argmax(spectrum) * 16000 / len(got) - 1000) < 5
    assert abs(rms_dbfs(got[400:-400]) - 20 * math.log10(0.5 / math.sqrt(2))) < 0.3
    assert peer.max_unplayed <= QUEUE


def float_wav(path):
    data = np.zeros(1600, "<f4").tobytes()
    fmt = (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little") + \
        (64000).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    path.write_bytes(b"RIFF" + (4 + 24 + 8 + len(data)).to_bytes(4, "little") + b"WAVE" + b"fmt " +
                     (16).to_bytes(4, "little") + fmt + b"data" + len(data).to_bytes(4, "little") + data)


def test_refusals_name_what_was_wrong_and_reach_no_agent(lab, make_peer, tmp_path):
    peer = make_peer()
    radio = make_peer(name="radio-only", capabilities=("rx",))
    float_wav(tmp_path / "float.wav")
    (tmp_path / "notes.wav").write_text("not audio at all")
    cases = [
        (lambda: lab.api.play(peer.agent_id, (tmp_path / "float.wav").read_bytes()), 400, "IEEE float WAV"),
        (lambda: lab.api.play(peer.agent_id, b"RIFFxxxxWAVE"), 400, "is not a WAV file the hub can read"),
        (lambda: lab.api.play(peer.agent_id, b"\0" * 100), 400, "not a WAV file (no RIFF/WAVE header)"),
        (lambda: lab.api.say(radio.agent_id, "hello"), 409, "has no speaker"),
        (lambda: lab.api.request("POST", f"/api/agents/{peer.agent_id}/say", {"text": "hi", "speed": 2}), 400,
         "unknown body keys: speed"),
        (lambda: lab.api.say(peer.agent_id, "hi", sample_rate=44100), 400, "opus needs a sample rate of"),
        (lambda: lab.api.say(peer.agent_id, "hi", volume_db=40), 400, "volume_db (speaker volume) must be"),
        (lambda: lab.api.say(peer.agent_id, "hi", voice="../../etc/passwd"), 400, "voice must be an espeak-ng"),
        (lambda: lab.api.say(peer.agent_id, "hi", voice="nosuchvoice"), 400, "espeak-ng could not speak this"),
        (lambda: lab.api.say(peer.agent_id, ""), 400, "text must be 1 to"),
    ]
    for call, status, words in cases:
        with pytest.raises(HubError) as refused:
            call()
        assert refused.value.status == status and words in str(refused.value), (words, str(refused.value))
    assert peer.starts == [] and radio.starts == []
    assert lab.api.agent(peer.agent_id)["tx"]["session"] is None
    result = lab.hub_cli("play", peer.agent_id, str(tmp_path / "notes.wav"))
    assert result.returncode == 1 and "play refused: the WAV file notes.wav is not a WAV file" in result.stderr
    result = lab.hub_cli("say", radio.agent_id, "hello")
    assert result.returncode == 1 and "say refused:" in result.stderr and "audio_out" in result.stderr
    result = lab.hub_cli("play", peer.agent_id, str(tmp_path / "missing.wav"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def mic_signal(seconds, rate=MIC_RATE, amplitude=0.5, hz=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_the_microphone_stream_is_decoded_concealed_measured_and_recorded(lab, make_peer, tmp_path):
    peer = make_peer()
    peer.heartbeat(levels={"speaker_dbfs": -20.5, "mic_dbfs": -24.0, "out_dbfs": -45.25}, erle_db=21.5,
                   echo_delay_ms=12.0, audio_frames_concealed=3)
    encoder = opus.Encoder(MIC_RATE, 32000)
    first, second = encoder.encode_all(mic_signal(1.2)), encoder.encode_all(mic_signal(1.2))
    lost = 10  # 200 ms: PLC for 100 ms, then silence
    peer.agent.send({"type": "stream_info", "app_id": "mic-1", "media": "audio", "channels": 1,
                     "sample_rate": MIC_RATE, "sample_format": "opus", "frame_samples": FRAME, "bitrate": 32000,
                     "sample_index": 0})
    lab.wait_agent(peer.agent_id, lambda a: (a["stream"] or {}).get("media") == "audio")
    recording = lab.api.record(peer.agent_id, True)["recording"]
    assert recording.endswith(".wav")
    for packet in first:
        peer.agent.send(packet)
    peer.agent.send({"type": "gap", "app_id": "mic-1", "sample_index": len(first) * FRAME,
                     "dropped_samples": lost * FRAME, "reason": "test"})
    for packet in second:
        peer.agent.send(packet)
    total = (len(first) + lost + len(second)) * FRAME
    view = lab.wait_agent(peer.agent_id, lambda a: a["stream"]["samples"] + a["stream"]["dropped_samples"] == total)
    voice = view["voice"]
    assert voice["levels"] == {"speaker_dbfs": -20.5, "mic_dbfs": -24.0, "out_dbfs": -45.25}
    assert voice["erle_db"] == 21.5 and voice["echo_delay_ms"] == 12.0
    assert abs(voice["received_dbfs"] - 20 * math.log10(0.5 / math.sqrt(2))) < 1.0, voice  # the last second: tone
    assert voice["received"]["concealed_frames"] == lost and view["stream"]["gaps"] == 1
    files = lab.api.record(peer.agent_id, False)["files"]
    assert len(files) == 1 and files[0].endswith(".json")
    with open(files[0]) as f:
        sidecar = json.load(f)
    assert sidecar["agent_id"] == peer.agent_id and sidecar["app_id"] == "mic-1"
    assert sidecar["stream_format"] == "opus" and sidecar["wav_format"] == "pcm16" and sidecar["start_time"]
    assert sidecar["concealed_frames"] == lost and sidecar["concealed_samples"] == lost * FRAME
    assert sidecar["gaps"] == 1 and sidecar["gap_list"][0]["at_sample"] == len(first) * FRAME
    # the WAV is what the peer sent, decoded here the same way: PLC for 100 ms, then silence
    decoder = opus.Decoder(MIC_RATE)
    plc = 100 * MIC_RATE // 1000
    expected = np.concatenate([decoder.decode(p) for p in first] + [decoder.decode(None) for _ in range(plc // FRAME)] +
                              [np.zeros(lost * FRAME - plc, np.float32)] + [decoder.decode(p) for p in second])
    with wave.open(os.path.join(os.path.dirname(files[0]), sidecar["wav"])) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, MIC_RATE)
        got = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767
    assert len(got) == total == len(expected)
    assert np.max(np.abs(got - expected)) <= 1.01 / 32767
    assert np.all(got[len(first) * FRAME + plc:(len(first) + lost) * FRAME] == 0)
    assert rms_dbfs(got[len(first) * FRAME:len(first) * FRAME + plc]) > -30  # concealment, not silence
    metrics = urllib.request.urlopen(lab.url + "/metrics", timeout=10).read().decode()
    assert f"ria_hub_audio_frames_received_total {len(first) + len(second)}\n" in metrics
    assert f"ria_hub_audio_frames_concealed_total {lost}\n" in metrics
    assert f'ria_hub_voice_level_dbfs{{agent="{peer.agent_id}",where="mic"}} -24.0\n' in metrics
    assert f'ria_hub_voice_agent_erle_db{{agent="{peer.agent_id}"}} 21.5\n' in metrics
    assert lab.api.spectrum(peer.agent_id)["spectrum"] is None  # audio is not IQ


def test_the_page_shows_a_voice_agents_levels(lab, make_peer, tmp_path):
    peer = make_peer()
    peer.heartbeat(levels={"speaker_dbfs": -18.0, "mic_dbfs": -27.5, "out_dbfs": -50.0}, erle_db=30.0)
    peer.agent.send({"type": "stream_info", "app_id": "mic-1", "media": "audio", "channels": 1,
                     "sample_rate": MIC_RATE, "sample_format": "s16", "sample_index": 0})
    for _ in range(60):
        peer.agent.send(audio.to_bytes(mic_signal(0.02, amplitude=0.1), "s16"))
    lab.wait_agent(peer.agent_id, lambda a: (a["voice"] or {}).get("received_dbfs") is not None)
    browser = Browser(f"{lab.url}/#token={lab.api._token}", str(tmp_path / "profile"))
    try:
        card = browser.wait_for(f"document.querySelector('.card[data-agent-id=\"{peer.agent_id}\"] .voice')"
                                "?.textContent")
        assert "speaker -18 · mic -28 · out -50 · received -23 dBFS · ERLE 30 dB" == card, card
        browser.evaluate(f"document.querySelector('.card[data-agent-id=\"{peer.agent_id}\"]').click()")
        browser.wait_for("!document.getElementById('voice').hidden")
        shown = browser.evaluate("[...document.querySelectorAll('#voice b')].map(b => b.textContent)")
        assert shown[:5] == ["-18.0 dBFS", "-27.5 dBFS", "-50.0 dBFS", "-23.0 dBFS", "30.0 dB"], shown
        browser.screenshot(str(tmp_path / "voice.png"))
    finally:
        browser.close()


def test_a_hostile_microphone_stream_is_bounded_and_counted(lab, make_peer):
    peer = make_peer()
    send = peer.agent.send
    info = {"type": "stream_info", "app_id": "mic-h", "media": "audio", "channels": 1, "sample_rate": MIC_RATE,
            "sample_format": "opus", "frame_samples": FRAME, "sample_index": 0}
    for bad in ({"sample_rate": 44100}, {"channels": 2}, {"frame_samples": 960}, {"sample_format": "mp3"},
                {"bitrate": 10 ** 9}):
        send({**info, **bad})
    send({**info, "sample_format": "opus"})
    send(b"")  # not an Opus packet: concealed as a lost frame, counted
    send(b"\x00" * 1501)  # over the largest packet: refused
    send({"type": "gap", "app_id": "mic-h", "sample_index": 0, "dropped_samples": 10 ** 12, "reason": "hostile"})
    for packet in opus.Encoder(MIC_RATE).encode_all(mic_signal(1.0)):
        send(packet)
    view = lab.wait_agent(peer.agent_id, lambda a: a["stream"] and a["stream"]["samples"] >= 51 * FRAME)
    received = view["voice"]["received"]
    assert received["decode_errors"] == 1 and received["concealed_frames"] == 1 + 10 ** 12 // FRAME
    assert received["unfilled_samples"] == 10 ** 12 - 60 * MIC_RATE
    assert abs(view["voice"]["received_dbfs"] - 20 * math.log10(0.5 / math.sqrt(2))) < 1.0
    metrics = urllib.request.urlopen(lab.url + "/metrics", timeout=10).read().decode()
    assert "ria_hub_agent_messages_refused_total 6\n" in metrics, metrics
    assert "ria_hub_audio_decode_errors_total 1\n" in metrics


def test_an_f32_stream_records_as_float_wav(lab, make_peer):
    peer = make_peer()
    peer.agent.send({"type": "stream_info", "app_id": "mic-f", "media": "audio", "channels": 1,
                     "sample_rate": 48000, "sample_format": "f32", "sample_index": 0})
    lab.wait_agent(peer.agent_id, lambda a: (a["stream"] or {}).get("media") == "audio")
    lab.api.record(peer.agent_id, True)
    sent = mic_signal(0.5, rate=48000, amplitude=0.9)
    for i in range(0, len(sent), 480):
        peer.agent.send(audio.to_bytes(sent[i:i + 480], "f32"))
    peer.agent.send({"type": "gap", "app_id": "mic-f", "sample_index": len(sent), "dropped_samples": 4800,
                     "reason": "test"})
    lab.wait_agent(peer.agent_id, lambda a: a["stream"]["gaps"] == 1)
    sidecar_path = lab.api.record(peer.agent_id, False)["files"][0]
    with open(sidecar_path) as f:
        sidecar = json.load(f)
    with open(os.path.join(os.path.dirname(sidecar_path), sidecar["wav"]), "rb") as f:
        data = f.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and int.from_bytes(data[20:22], "little") == 3  # float
    assert int.from_bytes(data[24:28], "little") == 48000 and int.from_bytes(data[4:8], "little") == len(data) - 8
    start = data.index(b"data") + 8
    assert int.from_bytes(data[start - 4:start], "little") == len(data) - start
    got = np.frombuffer(data[start:], "<f4")
    assert np.array_equal(got[:len(sent)], sent) and np.all(got[len(sent):] == 0) and len(got) == len(sent) + 4800
    assert sidecar["wav_format"] == "float32" and sidecar["concealed_samples"] == 4800


def test_a_play_session_stops_with_tx_stop_and_takes_no_configure(lab, make_peer):
    peer = make_peer()
    lab.api.say(peer.agent_id, "one two three four five six seven eight nine ten " * 3, sample_format="f32",
                app_id="long-1")
    lab.wait_agent(peer.agent_id, lambda a: ((a["tx"]["session"] or {}).get("played") or 0) > 0)
    with pytest.raises(HubError) as refused:
        lab.api.tx_configure(peer.agent_id, {"tx_gain": 3})
    assert refused.value.status == 409 and "takes no tx_configure" in str(refused.value)
    result = lab.hub_cli("tx-stop", peer.agent_id)
    assert result.returncode == 0 and "TX long-1 done: stopped by the operator" in result.stdout, result
    last = lab.api.agent(peer.agent_id)["tx"]["last"]
    assert last["state"] == "done" and last["sent_samples"] < last["source"]["samples"]
    assert peer.rc["sample_format"] == "f32" and peer.received == last["sent_samples"]
