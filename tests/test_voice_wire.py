"""Audio on the wire both ways (docs/protocol.md §8), through the C++ blocks on real flowgraphs and a real
WebSocket hub endpoint on 127.0.0.1: ria.websocket_iq_sink with float input (the microphone) and
ria.websocket_source with float output (the speaker), against python/ria/wire/audio.py and wire/opus.py.

The source tests play the control handler's part by posting the source's `cmd` messages themselves (the n-th
tx_* message on a connection has "_seq" n)."""

import subprocess
import wave

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import ria
from gnuradio.ria.ria_python import opus_encode_frames, wire_audio_convert, wire_audio_from_bytes
from gnuradio.ria.wire import audio, opus
from helpers import wait_until
from hub_server import TOKEN, HubServer
from test_websocket_source import seen

WAIT = 10.0
RATE = 16000
FRAME = audio.frame_samples(RATE)  # 320
EDGES = np.array([0.0, -0.0, 1.0, -1.0, 1.5, -1.5, 1e9, -1e9, 0.5 / 32767, 1.5 / 32767, 2.5 / 32767,
                  -2.5 / 32767, 0.999999, -0.999999, 1e-30], np.float32)


def sentence(tmp_path, rate=RATE):
    """A spoken sentence (espeak-ng, resampled by sox) as float32 samples in -1..1."""
    raw, wav = tmp_path / "raw.wav", tmp_path / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "The quick brown fox jumps over the lazy dog."], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(wav)], check=True)
    with wave.open(str(wav)) as w:
        assert w.getframerate() == rate and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return (pcm / 32768.0).astype(np.float32)


def aligned_snr(reference, decoded, max_lag=1000):
    """(lag, correlation, SNR dB) of decoded against reference at the lag (codec delay) that fits best."""
    best = None
    n = len(reference)
    for lag in range(max_lag):
        d = decoded[lag:lag + n]
        if len(d) < n:
            break
        c = float(np.dot(reference, d) / np.sqrt(np.dot(reference, reference) * np.dot(d, d) + 1e-30))
        if best is None or c > best[1]:
            best = (lag, c)
    lag, corr = best
    d = decoded[lag:lag + n]
    snr = 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - d) ** 2))
    return lag, corr, snr


# ------------------------------------------------------------------ lib/wire against python/ria/wire


@pytest.mark.parametrize("fmt", ["f32", "s16"])
def test_cpp_and_python_put_the_same_audio_bytes_on_the_wire(fmt):
    rng = np.random.default_rng(5)
    values = np.concatenate([EDGES, rng.uniform(-1.2, 1.2, 50_001).astype(np.float32)])
    wire_bytes = wire_audio_convert(values, fmt)
    assert wire_bytes == audio.to_bytes(values, fmt)
    assert np.array_equal(wire_audio_from_bytes(wire_bytes, fmt), audio.from_bytes(wire_bytes, fmt))


def test_audio_format_names_and_their_old_aliases():
    values = np.array([0.25, -0.5], np.float32)
    assert wire_audio_convert(values, "cf32") == audio.to_bytes(values, "f32")
    assert wire_audio_convert(values, "cs16") == wire_audio_convert(values, "cs8") == audio.to_bytes(values, "s16")
    with pytest.raises(ValueError, match="f32, s16, opus"):
        wire_audio_convert(values, "u8")
    with pytest.raises(ValueError, match="not a whole number of samples"):
        wire_audio_from_bytes(b"\x00\x01\x02", "s16")


def test_cpp_opus_packets_decode_with_the_hubs_decoder():
    t = np.arange(RATE) / RATE
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    packets = opus_encode_frames(x, RATE, 24000)
    assert len(packets) == RATE // FRAME and all(0 < len(p) <= audio.MAX_OPUS_PACKET for p in packets)
    dec = opus.Decoder(RATE)
    y = np.concatenate([dec.decode(p) for p in packets])
    _, corr, _ = aligned_snr(x[RATE // 4:3 * RATE // 4], y, 400)
    assert corr > 0.95
    with pytest.raises(ValueError, match="opus needs a sample rate"):
        opus_encode_frames(x, 44100, 24000)
    with pytest.raises(ValueError, match="bitrate"):
        opus_encode_frames(x, RATE, 1000)


# ------------------------------------------------------------------ microphone: websocket_iq_sink, float input


def stream_audio(hub, samples, **kwargs):
    """Streams float samples through a sink (autostart, lossless) until the hub holds all of them."""
    tb = gr.top_block()
    src = blocks.vector_source_f(samples.tolist(), False)
    sink = ria.websocket_iq_sink(url=hub.url(), token=TOKEN, input_type="float", autostart=True, app_id="mic",
                                 overflow="block", sample_rate=RATE, hardware_names="mic", **kwargs)
    tb.connect(src, sink)
    tb.run()
    return sink


@pytest.mark.parametrize("fmt", ["f32", "s16"])
def test_raw_audio_goes_out_byte_exact_with_an_audio_stream_info(hub, fmt):
    x = np.random.default_rng(2).uniform(-1.1, 1.1, 5000).astype(np.float32)
    sink = stream_audio(hub, x, sample_format=fmt, buffer_size=320)
    size = audio.BYTES_PER_SAMPLE[fmt]
    assert hub.wait_for(lambda s: s.binary_bytes() == len(x) * size, WAIT)
    assert b"".join(hub.binary()) == audio.to_bytes(x, fmt)
    info = hub.texts("stream_info")[0]
    assert info["media"] == "audio" and info["channels"] == 1 and info["sample_rate"] == RATE
    assert info["sample_format"] == fmt and info["sample_index"] == 0
    assert "center_frequency" not in info and "frame_samples" not in info
    stats = sink.stats()
    assert stats["audio_frames_sent"] == 16 and stats["audio_frames_dropped"] == 0  # 15 whole and the tail
    assert 0 <= stats["mic_latency_ms"] < 5000 and stats["mic_queue_ms"] == 0
    heartbeat = hub.texts("heartbeat")[0]["stats"]
    assert {"audio_frames_sent", "audio_frames_dropped", "mic_queue_ms"} <= set(heartbeat)


def test_an_old_grc_iq_format_on_float_input_is_taken_as_audio(hub):
    x = np.linspace(-1, 1, 640, dtype=np.float32)
    stream_audio(hub, x, sample_format="cs16", buffer_size=320)
    assert hub.wait_for(lambda s: s.binary_bytes() == len(x) * 2, WAIT)
    assert b"".join(hub.binary()) == audio.to_bytes(x, "s16")
    assert hub.texts("stream_info")[0]["sample_format"] == "s16"


def test_a_spoken_sentence_through_opus_reaches_the_hub_intact(hub, tmp_path):
    x = sentence(tmp_path)
    sink = stream_audio(hub, x, sample_format="opus", bitrate=32000, buffer_size=1000)  # buffer_size ignored
    packets_due = -(-len(x) // FRAME)
    assert hub.wait_for(lambda s: len(s.binary()) == packets_due, WAIT)
    info = hub.texts("stream_info")[0]
    assert info["sample_format"] == "opus" and info["frame_samples"] == FRAME and info["bitrate"] == 32000
    assert info["media"] == "audio" and info["channels"] == 1
    dec = opus.Decoder(RATE)
    frames = [dec.decode(p) for p in hub.binary()]
    assert all(len(f) == FRAME for f in frames)  # one 20 ms packet per binary frame
    y = np.concatenate(frames)
    lag, corr, snr = aligned_snr(x, y)
    # Opus at 32 kbit/s keeps the waveform of speech, not just its sound: measured 0.97 and 12.6 dB at a lag of
    # 104 samples (its 6.5 ms look-ahead); a broken framing (a lost or doubled packet) falls far below both
    assert lag < 200 and corr > 0.95 and snr > 10, (lag, corr, snr)
    assert sink.stats()["audio_frames_sent"] == packets_due


def test_opus_drops_are_gaps_of_whole_frames(flowgraphs):
    slow = HubServer(token=TOKEN, read_delay=0.01).start()
    try:
        tb = gr.top_block()
        rate = 48000
        sink = ria.websocket_iq_sink(url=slow.url(), token=TOKEN, input_type="float", sample_format="opus",
                                     autostart=True, app_id="mic", overflow="drop", sample_rate=rate,
                                     queue_seconds=0.04, hardware_names="mic")
        noise = np.random.default_rng(1).uniform(-0.5, 0.5, rate).astype(np.float32)
        tb.connect(blocks.vector_source_f(noise.tolist(), True), sink)  # far faster than real time
        flowgraphs(tb)
        assert slow.wait_for(lambda s: len(s.texts("gap")) >= 2, WAIT)
        sink._post(pmt.intern("cmd"), pmt.to_pmt({"stream": False}))
        assert wait_until(lambda: not sink.streaming() and sink.queue_depth() == 0, WAIT)
        tb.stop()
        tb.wait()
        frame = audio.frame_samples(rate)
        dropped = sink.samples_dropped()
        assert slow.wait_for(lambda s: len(s.binary()) == sink.frames_sent()
                             and sum(g["dropped_samples"] for g in s.texts("gap")) == dropped, WAIT)
        gaps = slow.texts("gap")
        assert all(g["dropped_samples"] % frame == 0 and g["dropped_samples"] > 0 for g in gaps)
        assert sum(g["dropped_samples"] for g in gaps) == sink.samples_dropped() == sink.frames_dropped() * frame
        stats = sink.stats()
        assert stats["audio_frames_dropped"] == sink.frames_dropped() > 0
        index = 0
        for kind, item in slow.received:
            if kind == "binary":
                index += frame
            elif item["type"] == "gap":
                assert item["sample_index"] == index
                index += item["dropped_samples"]
    finally:
        slow.stop()


def test_opus_at_a_rate_it_cannot_take_is_refused_naming_it(hub):
    with pytest.raises(ValueError, match="opus needs a sample rate"):
        ria.websocket_iq_sink(url=hub.url(), token=TOKEN, input_type="float", sample_format="opus",
                              sample_rate=44100, hardware_names="mic")
    with pytest.raises(ValueError, match="bitrate"):
        ria.websocket_iq_sink(url=hub.url(), token=TOKEN, input_type="float", sample_format="opus",
                              sample_rate=RATE, bitrate=500, hardware_names="mic")
    with pytest.raises(ValueError, match="sample_format must be one of cf32"):
        ria.websocket_iq_sink(url=hub.url(), token=TOKEN, input_type="complex", sample_format="opus",
                              hardware_names="mic")


# ------------------------------------------------------------------ speaker: websocket_source, float output


class Speaker:
    """websocket_source (float) -> throttle (the sound card's pace) -> the speaker and the canceller's reference."""

    def __init__(self, hub, flowgraphs, underrun_timeout=0.02, **kwargs):
        self.tb = gr.top_block()
        self.src = ria.websocket_source(url=hub.url(), token=TOKEN, output_type="float", queue_seconds=2.0,
                                        sample_rate=RATE, underrun_timeout=underrun_timeout, **kwargs)
        self.pace = blocks.throttle(gr.sizeof_float, RATE)
        self.speaker = blocks.vector_sink_f()
        self.reference = blocks.vector_sink_f()
        self.status = ria.message_collector()
        self.tb.connect(self.src, self.pace, self.speaker)
        self.tb.connect(self.pace, self.reference)
        self.tb.msg_connect(self.src, "status", self.status, "in")
        self.tb.keep = (self.src, self.status)
        flowgraphs(self.tb)
        assert hub.wait_for(lambda s: s.connections >= 1, WAIT)

    def cmd(self, **cmd):
        self.src._post(pmt.intern("cmd"), pmt.to_pmt(cmd))

    def play(self, hub, seq, fmt, volume=0.0, policy="zero", frames=()):
        """A play session; `frames` go before the arm, so the whole of them is queued when it starts to play
        (the test then never sees an underrun that a slow machine made between two frames)."""
        seen(hub, {"type": "tx_start", "app_id": "say", "radio_config": {
            "media": "audio", "tx_sample_rate": RATE, "sample_format": fmt}})
        for f in frames:
            hub.send_bytes(f)
        if frames:
            synced(hub)
        self.cmd(arm=seq, app_id="say", sample_rate=float(RATE), underrun_policy=policy, sample_format=fmt,
                 volume=volume)
        return self.status.wait_for(lambda m: m.get("event") == "armed" and m.get("seq") == seq, WAIT)

    def out(self):
        return np.array(self.speaker.data(), dtype=np.float32)

    def sob(self, k=0):
        return sorted(t.offset for t in self.speaker.tags() if pmt.symbol_to_string(t.key) == "tx_sob")[k]

    def stats(self):
        return self.src.stats()


def synced(hub):
    """Returns once the agent's transport has handled everything the hub sent so far (a ping's ack behind it)."""
    marker = f"sync-{len(hub.received)}"
    hub.send({"type": "ping", "id": marker})
    assert hub.wait_for(lambda s: any(a.get("id") == marker for a in s.texts("ack")), WAIT)


def tone(n, hz=440.0, amp=0.4):
    return (amp * np.sin(2 * np.pi * hz * np.arange(n) / RATE)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["f32", "s16"])
def test_raw_audio_sessions_play_what_was_sent_at_the_sessions_volume(hub, flowgraphs, fmt):
    sp = Speaker(hub, flowgraphs)
    x = tone(3200)
    sp.play(hub, 1, fmt, volume=-6.0, frames=[audio.to_bytes(x[k:k + FRAME], fmt) for k in range(0, len(x), FRAME)])
    assert wait_until(lambda: sp.stats()["audio_frames_played"] == 10, WAIT)
    assert wait_until(lambda: len(sp.out()) > sp.sob() + len(x), WAIT)
    start = sp.sob()
    sent = audio.from_bytes(audio.to_bytes(x, fmt), fmt)
    gain = np.float32(10 ** (-6.0 / 20))
    assert np.allclose(sp.out()[start:start + len(x)], sent * gain, rtol=1e-6, atol=1e-7)
    assert not sp.out()[:start].any()  # idle silence before the session
    stats = sp.stats()
    assert stats["audio_frames_received"] == 10 and stats["speaker_latency_ms"] >= 0
    assert 0 <= stats["speaker_queue_ms"] <= 2000


def test_opus_session_plays_what_the_hubs_decoder_makes_and_conceals_an_underrun(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs)
    x = tone(FRAME * 25, hz=300)
    packets = opus.Encoder(RATE, 32000).encode_all(x)
    sp.play(hub, 1, "opus", frames=packets)
    assert wait_until(lambda: sp.stats()["audio_frames_played"] == 25, WAIT)
    reference = opus.Decoder(RATE)
    expected = np.concatenate([reference.decode(p) for p in packets])
    # the queue ran dry: 100 ms of Opus concealment (5 frames), then silence, and the session goes on
    assert wait_until(lambda: len(sp.out()) > sp.sob() + len(expected) + 8 * FRAME, WAIT)
    start = sp.sob()
    out = sp.out()
    assert np.allclose(out[start:start + len(expected)], expected, atol=1e-6)
    stats = sp.stats()
    assert stats["audio_frames_concealed"] == 5 and stats["underruns"] == 1
    after = out[start + len(expected):]
    plc = np.concatenate([reference.decode(None) for _ in range(5)])
    assert np.allclose(after[:5 * FRAME], plc, atol=1e-6) and np.abs(after[:FRAME]).max() > 0.01
    assert not after[5 * FRAME:8 * FRAME].any()
    assert sp.src.state() == "transmitting"
    # the hub's audio comes back, after the concealment, and plays
    more = opus.Encoder(RATE, 32000).encode_all(tone(FRAME * 3, hz=500))
    for p in more:
        hub.send_bytes(p)
    assert wait_until(lambda: sp.stats()["audio_frames_played"] == 28, WAIT)
    assert sp.stats()["audio_frames_received"] == 28


def test_a_corrupt_opus_packet_is_dropped_counted_and_reported(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs)
    enc = opus.Encoder(RATE, 32000)
    packets = enc.encode_all(tone(FRAME * 4))
    bad = b"\x03\x00"  # code 3 with no frames: libopus says "corrupted stream"
    with pytest.raises(opus.OpusError):
        opus.Decoder(RATE).decode(bad)
    sp.play(hub, 1, "opus", frames=packets[:2] + [bad] + packets[2:])
    error = hub.wait_text("error")
    assert "audio frame of 2 bytes dropped" in error["message"] and "opus_decode" in error["message"]
    assert wait_until(lambda: sp.stats()["audio_frames_played"] == 4, WAIT)
    stats = sp.stats()
    assert stats["audio_frames_bad"] == 1 and stats["audio_frames_received"] == 4 and stats["bad_frames"] == 1
    assert sp.src.state() == "transmitting"


def test_idle_silence_flows_before_between_and_after_sessions_sample_aligned(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs)
    assert wait_until(lambda: len(sp.out()) >= RATE // 4, WAIT)  # no session yet: silence flows
    x = tone(1600)
    sp.play(hub, 1, "f32")
    hub.send_bytes(audio.to_bytes(x, "f32"))
    assert wait_until(lambda: sp.stats()["played"] == len(x), WAIT)
    seen(hub, {"type": "tx_stop", "app_id": "say"})
    sp.cmd(stop=True)
    sp.status.wait_for(lambda m: m.get("event") == "ended", WAIT)
    between = len(sp.out())
    assert wait_until(lambda: len(sp.out()) >= between + RATE // 4, WAIT)  # between sessions
    y = tone(1600, hz=880)
    sp.play(hub, 3, "s16")
    hub.send_bytes(audio.to_bytes(y, "s16"))
    assert wait_until(lambda: sp.stats()["played"] == 2 * len(x), WAIT)
    end = len(sp.out())
    assert wait_until(lambda: len(sp.out()) >= end + RATE // 4, WAIT)  # after
    sp.tb.stop()
    sp.tb.wait()
    out, ref = sp.out(), np.array(sp.reference.data(), dtype=np.float32)
    assert np.array_equal(out, ref)  # the canceller's reference is exactly what the speaker played
    first, second = sp.sob(0), sp.sob(1)
    assert np.array_equal(out[first:first + len(x)], x)
    assert np.allclose(out[second:second + len(y)], audio.from_bytes(audio.to_bytes(y, "s16"), "s16"))
    assert np.count_nonzero(out) <= 2 * len(x)  # everything else is silence (a session's zero tx_eob included)
    assert not out[:first].any() and not out[first + len(x):second].any() and not out[second + len(y):].any()


def test_complex_output_still_outputs_nothing_without_a_session(hub, flowgraphs):
    tb = gr.top_block()
    src = ria.websocket_source(url=hub.url(), token=TOKEN, output_type="complex", sample_rate=1e5)
    sink = blocks.vector_sink_c()
    tb.connect(src, blocks.throttle(gr.sizeof_gr_complex, 1e5), sink)
    flowgraphs(tb)
    assert hub.wait_for(lambda s: s.connections >= 1, WAIT)
    silent = ria.websocket_source(url=hub.url(), token=TOKEN, output_type="complex", idle_output="silence")
    assert silent is not None
    with pytest.raises(ValueError, match="idle_output"):
        ria.websocket_source(url=hub.url(), token=TOKEN, output_type="float", idle_output="noise")
    assert not wait_until(lambda: len(sink.data()) > 0, 0.3)


def test_speaker_counters_are_in_the_heartbeat(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs, heartbeat_interval=0.5)
    sp.play(hub, 1, "f32")
    for k in range(2):
        hub.send_bytes(audio.to_bytes(tone(FRAME), "f32"))
    assert wait_until(lambda: sp.stats()["audio_frames_played"] == 2, WAIT)
    assert hub.wait_for(lambda s: any(h.get("stats", {}).get("audio_frames_played") == 2
                                      for h in s.texts("heartbeat")), WAIT)
    hb = [h for h in hub.texts("heartbeat") if h.get("stats", {}).get("audio_frames_played") == 2][-1]
    assert {"audio_frames_received", "audio_frames_concealed", "speaker_queue_ms",
            "speaker_latency_ms"} <= set(hb["stats"])


def test_an_arm_with_a_bad_volume_or_format_changes_nothing(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs)
    seen(hub, {"type": "tx_start", "app_id": "say", "radio_config": {"media": "audio", "tx_sample_rate": RATE}})
    sp.cmd(arm=1, app_id="say", sample_rate=float(RATE), underrun_policy="zero", sample_format="f32", volume=40.0)
    assert "volume must be -60 to 20 dB" in sp.status.wait_for(lambda m: m.get("event") == "error", WAIT)["message"]
    sp.cmd(arm=1, app_id="say", sample_rate=float(RATE), underrun_policy="zero", sample_format="mp3")
    assert wait_until(lambda: len(sp.status.events("error")) == 2, WAIT)
    assert "f32, s16, opus" in sp.status.events("error")[1]["message"]
    sp.cmd(arm=1, app_id="say", sample_rate=float(RATE), underrun_policy="zero", sample_format="opus")
    assert wait_until(lambda: len(sp.status.events("error")) == 3, WAIT)
    assert "sample_format opus is not the tx_start's (f32)" in sp.status.events("error")[2]["message"]
    assert sp.src.state() == "idle"


def test_an_s16_frame_of_an_odd_length_is_dropped_counted_and_reported(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs)
    sp.play(hub, 1, "s16")
    hub.send_bytes(b"\x01\x02\x03")
    x = tone(FRAME)
    hub.send_bytes(audio.to_bytes(x, "s16"))
    assert "not a whole number of samples" in hub.wait_text("error")["message"]
    assert wait_until(lambda: sp.stats()["audio_frames_played"] == 1, WAIT)
    assert sp.stats()["audio_frames_bad"] == 1


def test_the_speaker_keeps_playing_silence_through_a_lost_connection(hub, flowgraphs):
    sp = Speaker(hub, flowgraphs)
    sp.play(hub, 1, "f32")
    x = tone(FRAME * 4)
    hub.send_bytes(audio.to_bytes(x, "f32"))
    assert wait_until(lambda: sp.stats()["played"] == len(x), WAIT)
    hub.drop_connection()
    ended = sp.status.wait_for(lambda m: m.get("event") == "ended", WAIT)
    assert ended["reason"] == "hub connection lost"
    at = len(sp.out())
    assert wait_until(lambda: len(sp.out()) >= at + RATE // 4, WAIT)  # the speaker never stops
    start = sp.sob()
    assert np.array_equal(sp.out()[start:start + len(x)], x) and not sp.out()[start + len(x):].any()
    assert sp.src.state() == "idle"
