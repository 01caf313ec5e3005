"""The hub's half of a voice loop, for tests and benches: play a signal on a voice agent's speaker (a §8 play
session with tx_progress credit) and read back its microphone stream, over tests/hub_server.HubServer."""

import numpy as np

from gnuradio.ria.wire import audio

WAIT = 10.0


def tx_states(hub, app_id):
    return [m["state"] for m in hub.texts("tx_status") if m.get("app_id") == app_id]


def wait_state(hub, state, app_id, timeout=WAIT):
    if not hub.wait_for(lambda s: state in tx_states(s, app_id), timeout):
        raise AssertionError(f"no tx_status {state} for {app_id}: {hub.texts('tx_status')}")
    return [m for m in hub.texts("tx_status") if m["app_id"] == app_id and m["state"] == state][-1]


def start_play(hub, app_id, rate, sample_format="f32", **rc):
    hub.send({"type": "tx_start", "app_id": app_id,
              "radio_config": {"media": "audio", "tx_sample_rate": rate, "sample_format": sample_format, **rc}})
    return wait_state(hub, "armed", app_id)


class Encoder:
    """One 20 ms frame at a time as the play session's sample_format says."""

    def __init__(self, rate, sample_format, bitrate=audio.DEFAULT_OPUS_BITRATE):
        self.format = sample_format
        self.frame = audio.frame_samples(rate)
        self.opus = None
        if sample_format == "opus":
            from gnuradio.ria.wire import opus
            self.opus = opus.Encoder(rate, bitrate)

    def frames(self, signal):
        for k in range(0, len(signal), self.frame):
            piece = signal[k:k + self.frame]
            if len(piece) < self.frame:
                piece = np.pad(piece, (0, self.frame - len(piece)))
            yield len(piece), (self.opus.encode(piece) if self.opus else audio.to_bytes(piece, self.format))


def play(hub, app_id, signal, armed, encoder, stop_when=None):
    """Sends `signal` like a hub that honours tx_progress: never more than queue_samples unplayed. Returns the
    samples sent (fewer when the session ended or stop_when() said so)."""
    sent = 0
    for count, payload in encoder.frames(signal):
        while True:
            if {"done", "underrun", "error"} & set(tx_states(hub, app_id)) or (stop_when and stop_when()):
                return sent
            played = max([m["played"] for m in hub.texts("tx_progress") if m.get("app_id") == app_id] or [0])
            if sent - played + count <= armed["queue_samples"]:
                break
            if not hub.wait_for(lambda s: max([m["played"] for m in s.texts("tx_progress")
                                               if m.get("app_id") == app_id] or [0]) > played, WAIT):
                raise AssertionError(f"the speaker played nothing for {WAIT} s (played {played} of {sent} sent)")
        try:
            hub.send_bytes(payload)
        except (AssertionError, RuntimeError, OSError, TimeoutError):
            return sent  # the connection went (a hub restart)
        sent += count
    return sent


def mic_stream(hub, app_id="voice"):
    """What the hub heard from the microphone: (samples by sample_index with gaps as NaN, stream_infos)."""
    with hub._cond:
        items = list(hub.received)
    infos, pieces, index = [], [], 0
    decoder, sample_format = None, None
    for kind, item in items:
        if kind == "text":
            if item.get("type") == "stream_info" and item.get("app_id") == app_id:
                infos.append(item)
                index = int(item.get("sample_index", index))
                sample_format = item.get("sample_format")
                if sample_format == "opus" and decoder is None:
                    from gnuradio.ria.wire import opus
                    decoder = opus.Decoder(int(item["sample_rate"]))
            elif item.get("type") == "gap" and item.get("app_id") == app_id:
                index += int(item.get("dropped_samples", 0))
            continue
        if sample_format is None:
            continue
        if sample_format == "opus":
            x = decoder.decode(item)
        elif sample_format in ("f32", "cf32"):  # (cf32 of a float input: the same little-endian float32)
            x = np.frombuffer(item, "<f4")
        else:
            x = audio.from_bytes(item, "s16" if sample_format in ("s16", "cs16") else sample_format)
        pieces.append((index, np.asarray(x, np.float32)))
        index += len(x)
    out = np.full(index, np.nan, np.float32)
    for start, x in pieces:
        out[start:start + len(x)] = x
    return out, infos


def first_heartbeat_with(hub, capability, timeout=WAIT):
    ok = hub.wait_for(lambda s: any(capability in h.get("capabilities", []) for h in s.texts("heartbeat")), timeout)
    return ok
