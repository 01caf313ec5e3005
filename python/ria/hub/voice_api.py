"""Play sessions to a voice agent's speaker (docs/protocol.md §8), with the TX API's token rules (teacher):

  POST /api/agents/{id}/say    {text, voice?, sample_format?, sample_rate?, volume_db?, bitrate?, app_id?}:
                               espeak-ng speaks the text on the hub
  POST /api/agents/{id}/play   a PCM WAV file as the body; ?sample_format=&sample_rate=&volume_db=&bitrate=&app_id=
                               &name=

Both answer once the agent armed (or refused), as POST /tx does; the session is a TX session (GET /api/agents/{id}
shows it under tx, POST /tx/stop stops it). The audio goes as Opus at 16 kHz unless asked otherwise (or at the rate
of the agent's microphone stream), paced by the agent's tx_progress credits. Only an agent whose heartbeat lists
`audio_out` gets one (409 otherwise); nothing reaches the agent when a request is refused.
"""

import asyncio
import itertools

from aiohttp import web

from ..wire import audio
from . import limits
from .admin_api import _body, _error, _failure, _needs
from .audio_sources import MAX_WAV_BYTES, AudioPlay, read_wav, resample, speak
from .tx_api import TxApi
from .tx_session import TxSession
from .tx_sources import SourceError

SAY_KEYS = ("text", "voice", "sample_format", "sample_rate", "volume_db", "bitrate", "app_id")
PLAY_PARAMS = ("sample_format", "sample_rate", "volume_db", "bitrate", "app_id", "name")
DEFAULT_FORMAT, DEFAULT_RATE = "opus", 16000
_numbers = itertools.count(1)


def add_routes(app, hub):
    api = VoiceApi(hub)
    app.router.add_post("/api/agents/{agent_id}/say", api.say)
    app.router.add_post("/api/agents/{agent_id}/play", api.play)


def _bad(message):
    return _failure(web.HTTPBadRequest, message)


def _query_number(query, key, kind):
    if key not in query:
        return None
    try:
        return kind(query[key])
    except ValueError:
        raise _bad(f"{key} must be {'a whole number' if kind is int else 'a number'}, got "
                   f"{limits.printable(repr(query[key]), 40)}") from None


class VoiceApi(TxApi):
    def _radio_config(self, link, fmt, rate, volume, bitrate):
        """The play session's radio_config (§8), checked with wire.audio; 400 naming the value."""
        fmt = DEFAULT_FORMAT if fmt is None else fmt
        if rate is None:
            s = link.stream
            rate = DEFAULT_RATE
            if s and s.audio and (fmt != "opus" or s.audio.rate in audio.OPUS_RATES):
                rate = s.audio.rate  # the agent's own microphone rate
        rc = {"media": audio.MEDIA_AUDIO, "sample_format": fmt, "tx_sample_rate": rate,
              "tx_gain": 0.0 if volume is None else volume, "underrun_policy": "zero"}
        if bitrate is not None or fmt == "opus":
            rc["bitrate"] = audio.DEFAULT_OPUS_BITRATE if bitrate is None else bitrate
        clean, errors = audio.normalize_play(rc)
        if errors:
            raise _bad("; ".join(e.replace("tx_gain (speaker volume)", "volume_db (speaker volume)")
                                 .replace("tx_gain must", "volume_db must").replace("audio sample rate", "sample_rate")
                                 for e in errors))
        clean["buffer_size"] = audio.frame_samples(clean["tx_sample_rate"])
        return clean

    def _refusal(self, link):
        """Why this agent cannot take a play session now (409), or None."""
        if audio.CAPABILITY_OUT not in link.capabilities:
            caps = ", ".join(link.capabilities) or "none"
            return f"agent {link.agent_id} has no speaker: its heartbeat does not list {audio.CAPABILITY_OUT} " \
                   f"(its capabilities: {caps}); say and play need a voice agent"
        if link.tx is not None:
            return f"agent {link.agent_id} has TX session {link.tx.app_id} ({link.tx.state}); stop it first " \
                   f"(ria_hub.py tx-stop {link.agent_id})"
        return None

    def _app_id(self, link, app_id, kind):
        app_id = app_id or f"{kind}-{next(_numbers)}"
        if not limits.is_printable_name(app_id):
            raise _bad(f"app_id must be printable text of 1 to {limits.MAX_NAME_CHARS} characters")
        if link.stream and link.stream.app_id == app_id:
            raise _bad(f"app_id {app_id} is the agent's stream; a play session needs an app_id of its own")
        return app_id

    async def _open(self, link, app_id, rc, samples, rate, description):
        """Resampled, checked once more (a session may have begun meanwhile), then started."""
        samples = await asyncio.to_thread(resample, samples, rate, rc["tx_sample_rate"])
        source = AudioPlay(samples, rc["tx_sample_rate"], rc["sample_format"], description,
                           rc.get("bitrate", audio.DEFAULT_OPUS_BITRATE))
        refusal = self._refusal(link)
        if refusal:
            return _error(409, refusal)
        self.hub.counters["commands"] += 1
        link.tx = TxSession(link, app_id, rc, source, self.timeout_s)
        return await self._started(link.tx)

    def _refused(self, link, given, known, what):
        """The 400 for unknown keys or the 409 for an agent that cannot play now; None when neither."""
        unknown = sorted(limits.printable(k, 40) for k in given if k not in known)[:10]
        if unknown:
            return _error(400, f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
        refusal = self._refusal(link)
        return _error(409, refusal) if refusal else None

    @_needs("teacher")
    async def say(self, request):
        link = self._link(request)
        body = await _body(request)
        refused = self._refused(link, body, SAY_KEYS, "body keys")
        if refused:
            return refused
        rc = self._radio_config(link, body.get("sample_format"), body.get("sample_rate"), body.get("volume_db"),
                                body.get("bitrate"))
        app_id = self._app_id(link, body.get("app_id"), "say")
        text, voice = body.get("text"), body.get("voice")
        try:
            samples, rate = await speak(text, voice)  # (checks the text and the voice first)
        except SourceError as e:
            return _error(400, str(e))
        words = limits.printable(text, 60)
        return await self._open(link, app_id, rc, samples, rate,
                                {"kind": "say", "text": words, **({"voice": voice} if voice else {})})

    @_needs("teacher")
    async def play(self, request):
        link = self._link(request)
        query = request.query
        refused = self._refused(link, query, PLAY_PARAMS, "query parameters")
        if refused:
            return refused
        rc = self._radio_config(link, query.get("sample_format"), _query_number(query, "sample_rate", int),
                                _query_number(query, "volume_db", float), _query_number(query, "bitrate", int))
        app_id = self._app_id(link, query.get("app_id"), "play")
        name = query.get("name", "upload.wav")
        if not limits.is_printable_name(name, 200):
            return _error(400, "name must be printable text of 1 to 200 characters")
        if request.content_length is not None and request.content_length > MAX_WAV_BYTES:
            return _error(413, f"the WAV file is {request.content_length} bytes; the hub plays WAV files of at most "
                               f"{MAX_WAV_BYTES} bytes")
        data = await _read_body(request, MAX_WAV_BYTES)
        if data is None:
            return _error(413, f"the WAV file is over {MAX_WAV_BYTES} bytes; the hub plays WAV files of at most "
                               f"{MAX_WAV_BYTES} bytes")
        try:
            samples, rate = await asyncio.to_thread(read_wav, data, f"the WAV file {name}")
        except SourceError as e:
            return _error(400, str(e))
        return await self._open(link, app_id, rc, samples, rate, {"kind": "play", "name": name, "source_rate": rate})


async def _read_body(request, limit):
    """The body, or None past `limit` bytes; 400 when it stalls or breaks."""
    chunks, size = [], 0
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.readany(), limits.BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise _bad(f"the upload stalled for {limits.BODY_TIMEOUT_S:g} s") from None
        except Exception as e:  # noqa: BLE001 - the client went away, or sent a broken chunked body
            raise _bad(f"the upload failed: {limits.printable(e, 120)}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
