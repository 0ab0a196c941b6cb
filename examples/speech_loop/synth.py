"""Synthesises test utterances at 16 kHz (used by the demo, tests and bench).

Usage: ``python synth.py OUT_DIR < job.json`` where the job is
``{"items": [{"text": "...", "voice": "espeak" | "piper"}, ...]}``. Writes
``OUT_DIR/<i>.f32`` (raw little-endian float32, 16 kHz mono, leading and
trailing silence trimmed) and prints one JSON line ``{"files": [...],
"samples": [...]}``. Nothing is downloaded: eSpeak NG is the Debian command,
Piper's voice comes from its package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import speech_models as models


def trim(audio: models.Audio, threshold: float = 0.01) -> models.Audio:
    """Drops leading and trailing silence (10 ms blocks below ``threshold`` peak)."""
    block = models.RATE // 100
    n = audio.size // block
    if n == 0:
        return audio
    peaks = np.abs(audio[: n * block]).reshape(n, block).max(axis=1)
    loud = np.nonzero(peaks >= threshold)[0]
    if loud.size == 0:
        return audio
    return audio[loud[0] * block : (loud[-1] + 1) * block].copy()


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    job = json.load(sys.stdin)
    engines: dict[str, models.PiperTts | models.EspeakTts] = {}
    files: list[str] = []
    lengths: list[int] = []
    for i, item in enumerate(job["items"]):
        voice = str(item.get("voice", "espeak"))
        if voice not in engines:
            engines[voice] = (
                models.PiperTts()
                if voice == "piper"
                else models.EspeakTts(voice=str(item.get("espeak_voice", "en-us")))
            )
        audio = trim(np.concatenate(list(engines[voice].synthesize(str(item["text"])))))
        path = out / f"{i}.f32"
        audio.astype("<f4").tofile(path)
        files.append(str(path))
        lengths.append(int(audio.size))
    print(json.dumps({"files": files, "samples": lengths}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
