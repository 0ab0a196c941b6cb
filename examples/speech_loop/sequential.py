"""The single-process baseline of ``deno task bench:speech``.

The same models as the pipeline (``speech_models.py``), in one Python process
that runs them in turn on the same 20 ms frames streamed in real time: each
frame goes to the VAD when it is due (or as soon as the process gets to it);
at the end of an utterance the process recognises it, picks the reply and
synthesises its first phrase (first reply audio), then synthesises one more
phrase per frame until the reply is done; speech that starts meanwhile drops
the rest of the reply. Nothing runs in parallel, so frames wait while
recognition runs.

Usage: ``python sequential.py STREAM.f32 CONFIG.json``; the config is
``{"utterance_end_samples": [...], "vad": {...}, "asr": {...},
"responder": {...}, "tts": {...}}`` (node config as in pipeline.toml). Prints
progress lines, then one JSON line with ``first_audio_ms`` (one per
utterance, null when none), ``max_frame_lag_ms``, ``cpu_s``,
``transcripts`` and ``replies``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import speech_models as models


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _opt(c: dict[str, Any], key: str) -> str | None:
    v = c.get(key)
    return None if v in (None, "") else str(v)


def main() -> int:
    samples = np.fromfile(sys.argv[1], dtype="<f4")
    cfg = json.loads(Path(sys.argv[2]).read_text())
    ends = [int(e) for e in cfg["utterance_end_samples"]]
    vc, ac, rc, tc = (cfg.get(k, {}) for k in ("vad", "asr", "responder", "tts"))
    t_load = time.monotonic()
    vad = models.SileroVad(
        model_path=_opt(vc, "model_path"),
        threshold=float(vc.get("threshold", 0.5)),
        hangover_ms=float(vc.get("hangover_ms", 300)),
        speculative_ms=float(vc.get("speculative_ms", 160)),
        preroll_ms=float(vc.get("preroll_ms", 200)),
        min_speech_ms=float(vc.get("min_speech_ms", 120)),
    )
    asr = models.WhisperAsr(
        model=_opt(ac, "model"),
        cpu_threads=int(ac.get("cpu_threads", 2)),
        beam_size=int(ac.get("beam_size", 1)),
    )
    asr.transcribe(np.zeros(models.RATE // 2, dtype=np.float32))
    responder = models.IntentResponder(
        model_path=_opt(rc, "model_path"),
        tokenizer_path=_opt(rc, "tokenizer_path"),
        intents_path=_opt(rc, "intents_path"),
        min_score=float(rc.get("min_score", 0.35)),
    )
    tts = models.load_tts(str(tc.get("engine", "piper")), _opt(tc, "model_path"))
    for _ in tts.synthesize("Ready."):
        pass
    print(f"models loaded in {(time.monotonic() - t_load) * 1000:.0f} ms", flush=True)

    first_audio: list[float | None] = [None] * len(ends)
    transcripts: list[str | None] = [None] * len(ends)
    replies: list[str | None] = [None] * len(ends)
    segments: dict[int, models.Audio] = {}
    speaking: Iterator[models.Audio] | None = None
    max_lag = 0.0
    n = samples.size // models.FRAME
    cpu0 = _cpu_s()
    t0 = time.monotonic() + 0.05
    for i in range(n):
        due = t0 + i * 0.02
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        max_lag = max(max_lag, (time.monotonic() - due) * 1000)
        frame = samples[i * models.FRAME : (i + 1) * models.FRAME]
        for ev in vad.feed(frame):
            if ev.kind == "speech_start":
                speaking = None  # barge-in: drop the rest of the reply
            elif ev.kind == "segment" and ev.audio is not None:
                segments = {ev.segment: ev.audio}
            elif ev.kind == "speech_end" and ev.segment in segments:
                stream_ms = ev.stream_ms
                k = max(
                    (j for j, e in enumerate(ends) if e * 1000 / models.RATE <= stream_ms),
                    default=-1,
                    key=lambda j: ends[j],
                )
                text = asr.transcribe(segments.pop(ev.segment))
                reply, _intent, _score = responder.respond(text)
                speaking = tts.synthesize(reply)
                first = next(speaking, None)
                if k >= 0 and first is not None and first_audio[k] is None:
                    end_at = t0 + ends[k] / models.RATE
                    first_audio[k] = (time.monotonic() - end_at) * 1000
                    transcripts[k] = text
                    replies[k] = reply
                continue
        if speaking is not None and next(speaking, None) is None:
            speaking = None
    cpu_s = _cpu_s() - cpu0
    print(
        json.dumps(
            {
                "first_audio_ms": first_audio,
                "max_frame_lag_ms": max_lag,
                "cpu_s": cpu_s,
                "transcripts": transcripts,
                "replies": replies,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
